"Property-based tests (hypothesis) for the analysis maths: S_ratio bounds, low-pass and singular-value identity limits, interpolation endpoints."
import math
import torch
from torch import nn
from hypothesis import given, settings, strategies as st
torch.set_num_threads(1)  # the test machine is shared; one thread avoids oversubscription

from weightnb.spectral import s_ratio, s_ratios, lowpass, LOWPASS_VARIANTS, modulate_singular_values
from weightnb.landscape import lerp_state, interpolate
from weightnb.train import evaluate

FAST = settings(max_examples=40, deadline=None)

@st.composite
def weights(draw, min_dim=2, max_dim=4):
    "A random weight (c_out, c_in[, k, k]) from a hypothesis-chosen shape and seed, with a random scale."
    c_out, c_in = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    k = draw(st.sampled_from([1, 3])) if draw(st.integers(min_dim, max_dim)) == 4 else None
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    w = torch.randn((c_out, c_in) + ((k, k) if k else ()), generator=g, dtype=torch.float64)
    return w * draw(st.sampled_from([1e-3, 1., 1e3]))

def _k(w): return min(w.shape[0], w[0].numel())

# --- S_ratio ---------------------------------------------------------------------------------------------------------
@FAST
@given(weights())
def test_s_ratio_bounds(w):
    "For k singular values, floor(k/2)/k <= S_ratio <= 1: the top half of sorted energies holds at least its share."
    k = _k(w); r = float(s_ratio(w))
    assert (k // 2) / k - 1e-12 <= r <= 1 + 1e-12

@FAST
@given(st.integers(1, 12), st.integers(1, 12), st.floats(1e-3, 1e3))
def test_s_ratio_lower_bound_reached_by_equal_singular_values(n, m, scale):
    "All singular values equal (orthonormal rows or columns, scaled): S_ratio = floor(k/2)/k exactly."
    q, _ = torch.linalg.qr(torch.randn(max(n, m), max(n, m), generator=torch.Generator().manual_seed(n * 13 + m), dtype=torch.float64))
    w = scale * q[:n, :m]                       # n x m with min(n, m) singular values all equal to `scale`
    k = min(n, m)
    assert math.isclose(float(s_ratio(w)), (k // 2) / k, abs_tol=1e-10)

@FAST
@given(st.integers(2, 12), st.integers(2, 12), st.data())
def test_s_ratio_upper_bound_reached_by_low_rank(n, m, data):
    "Rank <= floor(k/2): all energy in the first half, S_ratio = 1."
    k = min(n, m); r = data.draw(st.integers(1, k // 2))
    g = torch.Generator().manual_seed(n * 100 + m * 7 + r)
    w = torch.randn(n, r, generator=g, dtype=torch.float64) @ torch.randn(r, m, generator=g, dtype=torch.float64)
    assert math.isclose(float(s_ratio(w)), 1., abs_tol=1e-9)

@FAST
@given(st.lists(weights(), min_size=1, max_size=5))
def test_s_ratios_batched_equals_one_by_one(ws):
    "The batched per-shape SVD gives each weight's own S_ratio."
    got = s_ratios(ws)
    for w, r in zip(ws, got): assert math.isclose(float(r), float(s_ratio(w)), rel_tol=1e-9, abs_tol=1e-12)

@FAST
@given(weights(), st.floats(1e-3, 1e3))
def test_s_ratio_scale_invariant(w, c):
    assert math.isclose(float(s_ratio(c * w)), float(s_ratio(w)), rel_tol=1e-9, abs_tol=1e-12)

# --- low-pass: identity in the limit D0 -> inf ---------------------------------------------------------------------------
@FAST
@given(weights(min_dim=4), st.sampled_from(LOWPASS_VARIANTS), st.booleans())
def test_lowpass_identity_limit(w, variant, centered):
    "D0 = inf is the identity (H = 1); a huge finite D0 is the identity to rounding; a constant kernel is kept at any D0."
    w = w.float()
    assert torch.allclose(lowpass(w, float('inf'), variant, centered), w, rtol=1e-5, atol=1e-6 * float(w.abs().max()))
    assert torch.allclose(lowpass(w, 1e9, variant, centered), w, rtol=1e-5, atol=1e-6 * float(w.abs().max()))
    const = torch.full_like(w, 0.7)
    assert torch.allclose(lowpass(const, 0.3, variant), const, atol=1e-6)

@FAST
@given(weights(min_dim=4), st.floats(0.05, 5.))
def test_lowpass_does_not_add_energy(w, d0):
    "|H| <= 1 with a Hermitian-symmetric index: filtering never increases the Frobenius norm (Parseval)."
    for v in LOWPASS_VARIANTS: assert float(lowpass(w, d0, v).norm()) <= float(w.norm()) * (1 + 1e-9)

# --- singular-value modulation: factor 1 (or n_last 0) is the identity ---------------------------------------------------
@FAST
@given(weights(), st.integers(0, 20))
def test_modulation_identity(w, n_last):
    atol = 1e-9 * float(w.abs().max())
    assert torch.allclose(modulate_singular_values(w, n_last, 1.), w, rtol=1e-9, atol=atol)
    assert torch.allclose(modulate_singular_values(w, 0, 0.3), w, rtol=1e-9, atol=atol)

@FAST
@given(weights(), st.integers(1, 20), st.floats(0., 1.))
def test_modulation_scales_exactly_the_last_singular_values(w, n_last, factor):
    s0 = torch.linalg.svdvals(w.flatten(1)); s1 = torch.linalg.svdvals(modulate_singular_values(w, n_last, factor).flatten(1))
    k = len(s0); cut = max(k - n_last, 0)
    expect = torch.cat([s0[:cut], factor * s0[cut:]]).sort(descending=True).values
    assert torch.allclose(s1, expect, rtol=1e-7, atol=1e-9 * float(s0[0]))

# --- interpolation endpoints -------------------------------------------------------------------------------------------------
def _net(seed):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 16, 4)).eval()
    with torch.no_grad(): m[1].running_mean.normal_(0, .3); m[1].running_var.uniform_(.1, 3)
    return m

@FAST
@given(st.integers(0, 10**6), st.integers(0, 10**6), st.floats(-3., 4.))
def test_lerp_state_endpoints_exact(sa_seed, sb_seed, alpha):
    "alpha = 0 and 1 give the end points bit for bit; any alpha keeps running variances >= the smaller end point's."
    a, b = _net(sa_seed).state_dict(), _net(sb_seed).state_dict()
    for k in a:
        assert torch.equal(lerp_state(a, b, 0.)[k], a[k]) and torch.equal(lerp_state(a, b, 1.)[k], b[k])
    v = lerp_state(a, b, alpha)['1.running_var']
    assert (v >= torch.minimum(a['1.running_var'], b['1.running_var'])).all()

@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_interpolate_endpoints_reproduce_models(sa_seed, sb_seed):
    a, b = _net(sa_seed), _net(sb_seed)
    g = torch.Generator().manual_seed(sa_seed ^ sb_seed)
    data = [(torch.randn(8, 1, 4, 4, generator=g), torch.randint(0, 4, (8,), generator=g))]
    df = interpolate(a, b, [0., 1.], data)
    ea, eb = evaluate(a, data), evaluate(b, data)
    assert (df.loss[0], df.acc[0]) == (ea['loss'], ea['acc']) and (df.loss[1], df.acc[1]) == (eb['loss'], eb['acc'])
    assert df.recon_error[0] == 0.

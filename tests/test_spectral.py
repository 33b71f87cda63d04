"Property and error tests for weightnb.spectral (fast: random models, no data files)."
import copy
import numpy as np, pytest, torch
from torch import nn
torch.set_num_threads(1)  # the test machine is shared; one thread avoids oversubscription
from hypothesis import given, settings, strategies as st

from weightnb.core import NoConvLayerError, UnsupportedLayerError, NonFiniteWeightsError, ConfigError, ShapeMismatchError
from weightnb.models import resnet20, resnet56, zoo_cnn_small
from weightnb.spectral import (s_ratio, s_ratio_per_layer, s_ratio_diff, s_ratio_late_mean, lowpass,
                               LOWPASS_VARIANTS, lowpass_model, modulate_singular_values, modulate_model,
                               layer_groups, frequency_sweep, sv_sweep)

def _np_sratio(w):
    s = np.linalg.svd(w.reshape(w.shape[0], -1).astype(np.float64), compute_uv=False)
    k = len(s); return (s[:k // 2] ** 2).sum() / (s ** 2).sum()

@settings(max_examples=25, deadline=None)
@given(st.integers(1, 12), st.integers(1, 6), st.sampled_from([1, 3, 5]), st.integers(0, 1000))
def test_s_ratio_matches_numpy(c_out, c_in, k, seed):
    w = torch.randn(c_out, c_in, k, k, generator=torch.Generator().manual_seed(seed))
    assert abs(s_ratio(w).item() - _np_sratio(w.numpy())) < 1e-10

@settings(max_examples=15, deadline=None)
@given(st.integers(2, 10), st.integers(0, 1000), st.floats(0.01, 100))
def test_s_ratio_invariances(n, seed, scale):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, 3, 3, 3, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    r = s_ratio(w)
    assert torch.allclose(s_ratio(w * scale), r) and torch.allclose(s_ratio((q @ w.flatten(1)).view_as(w)), r)

def test_batched_equals_per_layer_and_float32_close():
    m = resnet56(10, in_chans=3)
    r = s_ratio_per_layer(m)
    assert len(r) == 55
    ref = [_np_sratio(mod.weight.detach().numpy()) for _, mod in [(n, mm) for n, mm in m.named_modules() if isinstance(mm, nn.Conv2d)]]
    assert np.allclose(list(r.values()), ref, atol=1e-10)
    r32 = s_ratio_per_layer(m, dtype=torch.float32)
    assert np.allclose(list(r32.values()), ref, atol=1e-4)

def test_late_mean_is_mean_over_last_half():
    a, b = resnet20(), resnet20()
    d = list(s_ratio_diff(a, b).values())
    assert abs(s_ratio_late_mean(a, b) - np.mean(d[len(d) // 2:])) < 1e-12
    assert abs(s_ratio_late_mean(a, b) + s_ratio_late_mean(b, a)) < 1e-12

def test_errors_name_the_layer():
    m = resnet20()
    with pytest.raises(UnsupportedLayerError, match="'fc'"): s_ratio_per_layer(m, layers=['fc'])
    with pytest.raises(UnsupportedLayerError, match="layer1.0.bn2"): lowpass_model(m, 1., layers='layer1.0.bn2')
    with pytest.raises(NoConvLayerError): s_ratio_per_layer(nn.Sequential(nn.Linear(4, 4)))
    with pytest.raises(NoConvLayerError): s_ratio_per_layer({'fc.weight': torch.randn(3, 3)})
    bad = copy.deepcopy(m); bad.layer3[2].conv2.weight.data[0, 0, 0, 0] = float('inf')
    with pytest.raises(NonFiniteWeightsError, match='layer3.2.conv2.weight'): s_ratio_per_layer(bad)
    with pytest.raises(NonFiniteWeightsError): modulate_model(bad, 0.5)
    with pytest.raises(ShapeMismatchError): s_ratio_diff(resnet20(), zoo_cnn_small())
    with pytest.raises(ConfigError): frequency_sweep(m, [1.], eval_fn=lambda m: dict(acc=0, loss=0), variant='x')

@pytest.mark.parametrize('variant', LOWPASS_VARIANTS)
def test_lowpass_keeps_dc_and_shrinks_energy(variant):
    w = torch.randn(8, 16, 3, 3, dtype=torch.float64)
    axes = {'spatial2d': (2, 3), 'flat1d': (2, 3), 'in_channel': (1,)}[variant]
    out = lowpass(w, 0.7, variant)
    assert torch.allclose(out.mean(axes), w.mean(axes))
    assert out.dtype == w.dtype and out.norm() < w.norm()
    outs = [lowpass(w, d, variant).norm() for d in (0.3, 1., 3., 30.)]
    assert all(a <= b + 1e-12 for a, b in zip(outs, outs[1:]))

def test_in_channel_variant_filters_at_paper_cutoffs():
    "Only the input-channel reading still changes 3x3 kernels at D0 ~ 20 (64 input channels)."
    w = torch.randn(64, 64, 3, 3)
    rel = {v: ((lowpass(w, 20., v) - w).norm() / w.norm()).item() for v in LOWPASS_VARIANTS}
    assert rel['in_channel'] > 0.1 and rel['spatial2d'] < 0.005 and rel['flat1d'] < 0.03

def test_modulate_model_batched_matches_single():
    m = resnet20(); mm = modulate_model(m, 0.3, n_last=5)
    for n, mod in m.named_modules():
        if isinstance(mod, nn.Conv2d):
            ref = modulate_singular_values(mod.weight.detach(), 5, 0.3)
            assert torch.allclose(dict(mm.named_modules())[n].weight, ref, atol=1e-5)

def test_groups_from_structure():
    assert list(layer_groups(resnet56())) == ['layer1', 'layer2', 'layer3']
    assert len(layer_groups(resnet56(), 'block')) == 27
    assert sum(len(v) for v in layer_groups(resnet56(), 'stage', stem=True).values()) == 55

def test_sweep_restores_model_and_uses_one_copy(monkeypatch):
    torch.manual_seed(0)
    m = resnet20(10, in_chans=1).eval(); x = torch.randn(32, 1, 16, 16); y = torch.randint(0, 10, (32,))
    before = {k: v.clone() for k, v in m.state_dict().items()}
    n_copies = []; orig = copy.deepcopy
    monkeypatch.setattr(copy, 'deepcopy', lambda o, *a, **k: (isinstance(o, nn.Module) and n_copies.append(1), orig(o, *a, **k))[1])
    df = sv_sweep(m, [1.0, 0.5, 0.0], eval_fn=[(x, y)])
    assert len(n_copies) == 1
    assert df.group.tolist() == ['baseline'] + [g for g in ('layer1', 'layer2', 'layer3') for _ in range(3)]
    assert np.allclose(df.loss[df.factor == 1.0], df.loss[0], atol=1e-5)
    for k, v in m.state_dict().items(): assert torch.equal(v, before[k])

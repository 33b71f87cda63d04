"Issue 19 for the analysis modules (spectral, landscape, robustness): hostile and careless inputs give the right result or a specific error."
import copy, math
import numpy as np, pytest, torch
from torch import nn
torch.set_num_threads(1)  # the test machine is shared; one thread avoids oversubscription

from weightnb.core import ConfigError, NonFiniteWeightsError, ShapeMismatchError, WeightnbError
from weightnb.models import resnet20, CifarResNet
from weightnb.train import evaluate
from weightnb.landscape import interpolate, plane, random_plane, lerp_state, evaluate_states
from weightnb.spectral import (frequency_sweep, sv_sweep, lowpass, modulate_singular_values, s_ratio, lowpass_model,
                               modulate_model, s_ratio_per_layer)
from weightnb.robustness import ood_accuracy, adversarial_accuracy, fgsm, ifgsm, corrupt

def _bn_models(n=3, spread=(.2, 5.)):
    "Small ResNet-20s whose BN running variances differ a lot between models (so extrapolation drives some negative)."
    out = []
    for s in range(n):
        torch.manual_seed(s); m = CifarResNet(3, 10, 1, width=4)
        for bn in m.modules():
            if isinstance(bn, nn.BatchNorm2d): bn.running_mean.normal_(0, .1); bn.running_var.uniform_(*spread)
        out.append(m.eval())
    return out

@pytest.fixture(scope='module')
def data():
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)) for _ in range(2)]

def _naive(a, b, alpha):
    m = copy.deepcopy(a); sb = b.state_dict()
    with torch.no_grad():
        for k, v in m.state_dict().items():
            if v.is_floating_point(): v.copy_(torch.lerp(v, sb[k], alpha))
    return m

# --- 2. one BatchNorm-aware lerp for interpolate and plane --------------------------------------------------------
def test_interpolate_extrapolation_is_finite_with_bn(data):
    a, b, _ = _bn_models()
    naive = [_naive(a, b, t) for t in (-0.5, 1.5)]
    assert any((v < 0).any() for m in naive for k, v in m.state_dict().items() if k.endswith('running_var'))
    assert any(math.isnan(evaluate(m, data)['loss']) for m in naive)          # the silent NaN the issue reports
    df = interpolate(a, b, [-0.5, 0., 0.5, 1., 1.5], data)
    assert np.isfinite(df.loss).all() and df.acc.between(0, 1).all()
    assert df.loss[1] == evaluate(a, data)['loss'] and df.loss[3] == evaluate(b, data)['loss']
    assert abs(df.loss[2] - evaluate(_naive(a, b, .5), data)['loss']) < 1e-5  # inside [0, 1] unchanged

def test_lerp_state_variance_floor_and_integer_buffers():
    a, b, c = (m.state_dict() for m in _bn_models())
    for t in (-3., -0.5, 1.5, 4.):
        p = lerp_state(a, b, t)
        for k in a:
            if k.endswith('running_var'): assert (p[k] >= torch.minimum(a[k], b[k])).all() and (p[k] > 0).all()
            if k.endswith('num_batches_tracked'): assert p[k].dtype == a[k].dtype
    p = lerp_state(a, b, -1., c, 2.)
    assert all((p[k] >= torch.minimum(torch.minimum(a[k], b[k]), c[k])).all() for k in a if k.endswith('running_var'))
    for k in a: assert torch.equal(lerp_state(a, b, 0.)[k], a[k]) and torch.equal(lerp_state(a, b, 1.)[k], b[k])
    with pytest.raises(ShapeMismatchError, match='fc.weight'): lerp_state(a, {k: v for k, v in b.items() if k != 'fc.weight'}, .5)

def test_plane_uses_the_same_rule_outside_the_triangle(data):
    a, b, c = _bn_models()
    df, co = plane(a, b, c, 3, data, margin=1.)
    assert np.isfinite(df.loss).all()
    (bx, _), (cx, cy) = co['b'], co['c']
    x, y = df.x[0], df.y[0]; t = y / cy; s = (x - t * cx) / bx    # the grid's corner, outside the triangle
    m = copy.deepcopy(a); lerp_state(a.state_dict(), b.state_dict(), s, c.state_dict(), t, out=m.state_dict())
    assert abs(evaluate(m, data)['loss'] - df.loss[0]) < 1e-5

# --- state dicts instead of models -----------------------------------------------------------------------------------
def test_state_dicts_with_template(data):
    a, b, c = _bn_models(); tmpl = CifarResNet(3, 10, 1, width=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    ref = interpolate(a, b, [0., .5, 1.], data)
    assert interpolate(sa, sb, [0., .5, 1.], data, template=tmpl).equals(ref)
    assert interpolate(a, sb, [0., .5, 1.], data).equals(ref)                 # the model is the template
    assert plane(sa, sb, sc, 2, data, template=tmpl)[0].equals(plane(a, b, c, 2, data)[0])
    assert random_plane(sa, .1, 2, eval_fn=data, template=tmpl).equals(random_plane(a, .1, 2, eval_fn=data))
    for call in (lambda: interpolate(sa, sb, [0.], data), lambda: plane(sa, sb, sc, 2, data),
                 lambda: random_plane(sa, .1, 2, eval_fn=data)):
        with pytest.raises(ConfigError, match='template='): call()
    with pytest.raises(ConfigError, match='model_b is a str'): interpolate(a, 'b.safetensors', [0.], data)
    with pytest.raises(ShapeMismatchError, match='template'): interpolate(sa, sb, [0.], data, template=resnet20(10, in_chans=1))
    with pytest.raises(WeightnbError): random_plane({'x': torch.zeros(2)}, .1, 2, eval_fn=data, template=tmpl)

# --- float64 follows the model's dtype -------------------------------------------------------------------------------
def test_float64_models_in_interpolation_and_planes(data):
    a, b, c = _bn_models()
    a64, b64, c64 = (copy.deepcopy(m).double() for m in (a, b, c))
    ref = interpolate(a, b, [0., .5, 1.], data)
    for df in (interpolate(a64, b64, [0., .5, 1.], data), interpolate(a64, b, [0., .5, 1.], data),
               interpolate(a64.state_dict(), b64.state_dict(), [0., .5, 1.], data, template=a64)):
        assert np.allclose(df.loss, ref.loss, atol=1e-4)
    assert np.allclose(plane(a64, b64, c64, 2, data)[0].loss, plane(a, b, c, 2, data)[0].loss, atol=1e-4)
    assert np.allclose(random_plane(a64, .1, 2, eval_fn=data).loss, random_plane(a, .1, 2, eval_fn=data).loss, atol=1e-4)
    es = evaluate_states(a64, [a64.state_dict(), b.state_dict()], data, chunk=2)
    assert abs(es[0]['loss'] - ref.loss[0]) < 1e-4 and abs(es[1]['loss'] - ref.loss[2]) < 1e-4

def test_float64_models_in_sweeps_and_robustness(data):
    a = _bn_models(1)[0]; a64 = copy.deepcopy(a).double()
    for sweep, s in ((frequency_sweep, [1.]), (sv_sweep, [.5])):
        d32, d64 = sweep(a, s, 'stage', data), sweep(a64, s, 'stage', data)
        assert np.allclose(d32.loss, d64.loss, atol=1e-4)
    assert lowpass_model(a64, 1.).conv1.weight.dtype == torch.float64 and modulate_model(a64, .5).conv1.weight.dtype == torch.float64
    o32, o64 = ood_accuracy(a, data, ['contrast'], (3,)), ood_accuracy(a64, data, ['contrast'], (3,))
    assert np.allclose(o32.loss, o64.loss, atol=1e-4)
    assert adversarial_accuracy(a64, data, 'fgsm', 0.)['adv_acc'] == adversarial_accuracy(a, data, 'fgsm', 0.)['adv_acc']

# --- empty and invalid arguments -------------------------------------------------------------------------------------
def test_empty_arguments_are_specific_errors(data):
    a, b, c = _bn_models()
    cases = [(lambda: interpolate(a, b, [], data), 'alphas is empty'),
             (lambda: plane(a, b, c, ([], [0.]), data), 'empty axis'),
             (lambda: plane(a, b, c, ([float('inf')], [0.]), data), 'non-finite'),
             (lambda: interpolate(a, b, [0., float('nan')], data), 'alphas must be finite'),
             (lambda: plane(a, b, c, 0, data), 'grid must be'),
             (lambda: random_plane(a, .1, 0, eval_fn=data), 'steps must be'),
             (lambda: random_plane(a, float('nan'), 2, eval_fn=data), 'distance must be'),
             (lambda: interpolate(a, b, [0.], []), 'empty'),
             (lambda: frequency_sweep(a, [], 'stage', data), 'd0s is empty'),
             (lambda: frequency_sweep(a, [0.], 'stage', data), 'cutoffs > 0'),
             (lambda: sv_sweep(a, [], 'stage', data), 'factors is empty'),
             (lambda: sv_sweep(a, [float('nan')], 'stage', data), 'finite'),
             (lambda: sv_sweep(a, [.5], [], data), 'selects no conv layer'),
             (lambda: sv_sweep(a, [.5], {}, data), 'selects no conv layer'),
             (lambda: ood_accuracy(a, data, severities=()), 'severities is empty'),
             (lambda: ood_accuracy(a, data, kinds=[]), 'kinds is empty'),
             (lambda: ood_accuracy(a, data, severities=(0, 6)), 'from 1 to 5'),
             (lambda: ood_accuracy(a, [], ['contrast'], (1,)), 'empty loader'),
             (lambda: adversarial_accuracy(a, [], 'fgsm'), 'empty loader'),
             (lambda: evaluate_states(a, [a.state_dict()], data, chunk=0), 'chunk must be'),
             (lambda: interpolate(a, b, [0., 1.], data, bn='reestimate', points_per_pass=2, bn_data=data), "needs bn='interpolate'"),
             (lambda: modulate_singular_values(torch.randn(4, 4), 2, float('inf')), 'factor must be')]
    for call, msg in cases:
        with pytest.raises(WeightnbError, match=msg): call()

# --- NaN / Inf weights --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
def test_nonfinite_weights(data, bad):
    a, b, c = _bn_models()
    m = copy.deepcopy(a)
    with torch.no_grad(): m.layer2[0].conv1.weight[0, 0, 0, 0] = bad
    x, y = data[0]
    calls = [lambda: interpolate(a, m, [0.], data), lambda: interpolate(a.state_dict(), m.state_dict(), [0.], data, template=a),
             lambda: plane(a, b, m, 2, data), lambda: random_plane(m, .1, 2, eval_fn=data),
             lambda: random_plane(m.state_dict(), .1, 2, eval_fn=data, template=a),
             lambda: evaluate_states(a, [a.state_dict(), m.state_dict()], data),
             lambda: frequency_sweep(m, [1.], 'stage', data), lambda: sv_sweep(m, [.5], 'stage', data),
             lambda: lowpass_model(m, 1.), lambda: modulate_model(m, .5), lambda: s_ratio_per_layer(m),
             lambda: lowpass(m.layer2[0].conv1.weight.detach(), 1.),
             lambda: modulate_singular_values(m.layer2[0].conv1.weight.detach()),
             lambda: s_ratio(m.layer2[0].conv1.weight.detach()),
             lambda: fgsm(m, x, y, .1), lambda: ifgsm(m, x, y, .1, 2),
             lambda: adversarial_accuracy(m, data), lambda: ood_accuracy(m, data, ['contrast'], (1,))]
    for call in calls:
        with pytest.raises(NonFiniteWeightsError): call()

def test_corrupt_keeps_float64(data):
    x = data[0][0].double()
    assert corrupt(x, 'gaussian_noise', 3).dtype == torch.float64

"Tests for weightnb.landscape on small random ResNets (no data files)."
import copy, math
import numpy as np, pytest, torch
from torch import nn
torch.set_num_threads(1)  # the test machine is shared; one thread avoids oversubscription

from weightnb.core import ShapeMismatchError, ConfigError, NonFiniteWeightsError
from weightnb.models import resnet20
from weightnb.train import evaluate
from weightnb.landscape import interpolate, plane, random_plane, random_directions

def _models(n=3):
    out = []
    for s in range(n):
        torch.manual_seed(s); m = resnet20(10, in_chans=1)
        for bn in m.modules():   # non-trivial BN statistics, different per model
            if isinstance(bn, nn.BatchNorm2d): bn.running_mean.normal_(0, .1); bn.running_var.uniform_(.5, 2)
        out.append(m.eval())
    return out

@pytest.fixture(scope='module')
def data():
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(32, 1, 8, 8, generator=g), torch.randint(0, 10, (32,), generator=g)) for _ in range(2)]

def test_interpolate_endpoints_exact_and_linear_error(data):
    a, b, _ = _models()
    df = interpolate(a, b, np.linspace(0, 1, 5), data)
    ea, eb = evaluate(a, data), evaluate(b, data)
    assert (df.loss.iloc[0], df.acc.iloc[0]) == (ea['loss'], ea['acc'])
    assert (df.loss.iloc[-1], df.acc.iloc[-1]) == (eb['loss'], eb['acc'])
    assert df.recon_error.iloc[0] == 0 and np.allclose(np.diff(df.recon_error), df.recon_error.iloc[1], rtol=1e-5)
    ref = math.sqrt(sum(((p.weight - q.weight) ** 2).sum().item() for p, q in zip(a.modules(), b.modules()) if isinstance(p, nn.Conv2d))
                    / sum(p.weight.numel() for p in a.modules() if isinstance(p, nn.Conv2d)))
    assert abs(df.recon_error.iloc[-1] - ref) < 1e-6

def test_interpolate_midpoint_matches_manual_average(data):
    a, b, _ = _models()
    mid = copy.deepcopy(a); sb = b.state_dict()
    with torch.no_grad():
        for k, v in mid.state_dict().items():
            if v.is_floating_point(): v.copy_((v + sb[k]) / 2)
    df = interpolate(a, b, [0.5], data)
    assert abs(df.loss[0] - evaluate(mid, data)['loss']) < 1e-5

def test_interpolate_one_copy_and_models_untouched(data, monkeypatch):
    a, b, _ = _models(); sa = {k: v.clone() for k, v in a.state_dict().items()}
    calls = []; orig = copy.deepcopy
    monkeypatch.setattr(copy, 'deepcopy', lambda o, *x, **k: (isinstance(o, nn.Module) and calls.append(1), orig(o, *x, **k))[1])
    interpolate(a, b, np.linspace(0, 1, 7), data)
    assert len(calls) == 1
    for k, v in a.state_dict().items(): assert torch.equal(v, sa[k])

def test_interpolate_reestimate_changes_stats(data):
    a, b, _ = _models()
    df = interpolate(a, b, [0., 1.], data, bn='reestimate', bn_data=data)
    assert df.loss[0] != evaluate(a, data)['loss']

def test_errors(data):
    a, _, _ = _models(1) * 3
    with pytest.raises(ShapeMismatchError, match="layer2.0.shortcut.0.weight"): interpolate(a, resnet20(10, 1, shortcut='B'), [0.], data)
    with pytest.raises(ShapeMismatchError, match="conv1.weight"): interpolate(a, resnet20(10, 3), [0.], data)
    bad = copy.deepcopy(a); bad.fc.bias.data[0] = float('nan')
    with pytest.raises(NonFiniteWeightsError, match='fc.bias'): interpolate(a, bad, [0.], data)
    with pytest.raises(ConfigError): interpolate(a, a, [0.], data, bn='x')
    with pytest.raises(ConfigError, match='collinear'): plane(a, a, a, eval_fn=data)

def test_plane_coordinates_and_vertices(data):
    a, b, c = _models()
    _, co = plane(a, b, c, ([0.], [0.]), data)
    dist = lambda m1, m2: math.sqrt(sum(((p - q) ** 2).sum().item() for p, q in zip(m1.parameters(), m2.parameters())))
    assert abs(co['b'][0] - dist(a, b)) < 1e-3 and abs(math.dist(co['a'], co['c']) - dist(a, c)) < 1e-3
    df, _ = plane(a, b, c, ([co['c'][0]], [co['c'][1]]), data)
    assert abs(df.loss[0] - evaluate(c, data)['loss']) < 1e-4

def test_random_directions_filter_norm_and_device():
    a = _models(1)[0]
    d, = random_directions(a, 1, 'filter')
    for k, p in a.named_parameters():
        assert d[k].device == p.device
        if p.dim() >= 2: assert torch.allclose(d[k].flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1), rtol=1e-4)
        else: assert d[k].abs().sum() == 0
    d2, = random_directions(a, 1, 'filter', seed=0); d3, = random_directions(a, 1, 'filter', seed=1)
    assert torch.equal(d['conv1.weight'], d2['conv1.weight']) and not torch.equal(d['conv1.weight'], d3['conv1.weight'])

def test_random_plane_centre_is_model(data):
    a = _models(1)[0]
    df = random_plane(a, 0.1, 3, eval_fn=data)
    assert df.loss[4] == evaluate(a, data)['loss'] and len(df) == 9

@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_follows_cuda_device(data):
    a, b, _ = [m.cuda() for m in _models()]
    d, = random_directions(a, 1)
    assert all(v.device.type == 'cuda' for v in d.values())
    cpu_batches = data   # batches on the CPU are moved to the model's device once
    df = interpolate(a, b, [0., 1.], cpu_batches)
    assert abs(df.loss[0] - evaluate(a, [(x.cuda(), y.cuda()) for x, y in data])['loss']) < 1e-6
    assert len(random_plane(a, 0.1, 2, eval_fn=cpu_batches)) == 4

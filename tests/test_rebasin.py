"Property tests for weightnb.rebasin: derived specs preserve the function, weight matching undoes random permutations."
import copy
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from hypothesis import given, settings, HealthCheck, strategies as st
from sklearn.datasets import load_digits

from weightnb.core import UnsupportedLayerError, ShapeMismatchError, ConfigError, save_weights
from weightnb.models import zoo_cnn_small, zoo_cnn_large, resnet20, resnet18, ZooCNN
from weightnb.rebasin import (PermutationSpec, permutation_spec, apply_permutation, random_permutation,
                              weight_matching, align, align_zoo)

torch.set_num_threads(1)
DIGITS = torch.tensor(load_digits().data[:32], dtype=torch.float32).view(-1, 1, 8, 8) / 16
HYP = settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))


def randomise_bn(m, seed=0):
    "Non-trivial BN statistics and affine parameters, so that a wrong BN permutation shows in the outputs."
    g = torch.Generator().manual_seed(seed)
    for bn in m.modules():
        if isinstance(bn, nn.modules.batchnorm._BatchNorm):
            for t in (bn.weight.data, bn.bias.data, bn.running_mean): t.copy_(torch.randn(t.shape, generator=g) * 0.5)
            bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=g) + 0.5)
    return m.eval()


# (name, model factory, input) -- real digits where the architecture takes them, random tensors otherwise
ARCHS = {
    'zoo_cnn_small': (lambda: zoo_cnn_small(), lambda: F.interpolate(DIGITS, size=28, mode='bilinear')),
    'zoo_cnn_large': (lambda: zoo_cnn_large(), lambda: torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))),
    'resnet20_A': (lambda: randomise_bn(resnet20(10, in_chans=1, shortcut='A')), lambda: DIGITS),
    'resnet20_B': (lambda: randomise_bn(resnet20(10, in_chans=1, shortcut='B')), lambda: DIGITS),
    'resnet18_small': (lambda: randomise_bn(resnet18(10, in_chans=1, small_input=True)), lambda: DIGITS[:4]),
}
SPECS = {}

def model_and_spec(name):
    make, inp = ARCHS[name]
    torch.manual_seed(0); m, x = make(), inp()
    if name not in SPECS: SPECS[name] = permutation_spec(m, tuple(x.shape[1:]))
    return m, SPECS[name], x

def outputs(m, x, train):
    m.train(train)
    with torch.no_grad(): y = m(x)
    m.eval(); return y


def check_preserves(name, seed):
    m, spec, x = model_and_spec(name)
    perm = random_permutation(spec, m, torch.Generator().manual_seed(seed))
    other = copy.deepcopy(m); other.load_state_dict(apply_permutation(spec, perm, m))
    assert any(not torch.equal(a, b) for a, b in zip(m.state_dict().values(), other.state_dict().values()))
    for train in (False, True):   # eval: running statistics; train: batch statistics
        torch.testing.assert_close(outputs(other, x, train), outputs(m, x, train), atol=1e-5, rtol=1e-4)

@pytest.mark.parametrize('name', [n for n in ARCHS if n != 'resnet18_small'])
@given(seed=st.integers(0, 2**31 - 1))
@HYP
def test_random_permutation_preserves_function(name, seed): check_preserves(name, seed)

def test_random_permutation_preserves_function_resnet18():   # 11M parameters: one seed keeps the suite fast
    check_preserves('resnet18_small', 2024)


def check_matching_undoes(name, seed):
    m, spec, _ = model_and_spec(name)
    sd = m.state_dict()
    shuffled = apply_permutation(spec, random_permutation(spec, sd, torch.Generator().manual_seed(seed)), sd)
    res = weight_matching(spec, sd, shuffled, seed=seed % 7)
    back = apply_permutation(spec, res.perm, shuffled)
    assert res.converged
    for k, v in sd.items(): assert torch.equal(back[k], v), k

@pytest.mark.parametrize('name', [n for n in ARCHS if n != 'resnet18_small'])
@given(seed=st.integers(0, 2**31 - 1))
@HYP
def test_weight_matching_undoes_random_permutation(name, seed): check_matching_undoes(name, seed)

def test_weight_matching_undoes_random_permutation_resnet18():   # 11M parameters: one seed keeps the suite fast
    check_matching_undoes('resnet18_small', 12345)


@given(seed=st.integers(0, 1000))
@HYP
def test_permutation_then_inverse_is_identity(seed):
    m, spec, _ = model_and_spec('resnet20_A')
    sd = m.state_dict()
    perm = random_permutation(spec, sd, torch.Generator().manual_seed(seed))
    inv = {f: torch.argsort(p) for f, p in perm.items()}
    back = apply_permutation(spec, inv, apply_permutation(spec, perm, sd))
    for k, v in sd.items(): assert torch.equal(back[k], v), k


def test_spec_structure():
    spec = permutation_spec(zoo_cnn_large())
    assert spec.axes['fc1.weight'] == (('P_fc1', 1), ('P_conv3', 4))    # 15 channels of 2x2 after three pools
    spec_a = permutation_spec(resnet20(shortcut='A'))
    # every BN tensor follows its conv; num_batches_tracked is never permuted
    for k, axes in spec_a.axes.items():
        if k.endswith('num_batches_tracked'): assert axes == ()
        if '.bn' in k and not k.endswith('num_batches_tracked'):
            conv = k.rsplit('.', 1)[0].replace('bn', 'conv') + '.weight'
            assert axes[0] == spec_a.axes[conv][0], k
    # option A: 3 stream permutations are P_conv1 + the zero channels of stages 2 and 3, plus 9 inner-block ones
    assert len(spec_a.perms) == 12 and len(spec_a.composites) == 2
    sizes = spec_a.sizes(resnet20(shortcut='A').state_dict())
    assert sum(n for f, n in sizes.items() if f.endswith('.zeros')) == 16 + 32


def test_option_a_needs_the_composite():
    "Permuting stage streams independently (ignoring the zero-padding) would change the function."
    m, spec, x = model_and_spec('resnet20_A')
    naive = PermutationSpec({k: tuple(None if e is None else ('naive_' + e[0] if e[0] in spec.composites else e[0], e[1])
                                      for e in es) for k, es in spec.axes.items()})
    other = copy.deepcopy(m); other.load_state_dict(apply_permutation(naive, random_permutation(naive, m, torch.Generator().manual_seed(0)), m))
    assert (outputs(other, x, False) - outputs(m, x, False)).abs().max() > 1e-2


def test_concatenated_branches():
    "torch.cat over channels gives a composite axis; the derived spec still preserves the function."
    class Branches(nn.Module):
        def __init__(self):
            super().__init__(); self.a = nn.Conv2d(1, 3, 3, padding=1); self.b = nn.Conv2d(1, 5, 3, padding=1)
            self.bn = nn.BatchNorm2d(8); self.fc = nn.Linear(8 * 4, 10)
        def forward(self, x):
            h = F.relu(self.bn(torch.cat([self.a(x), self.b(x)], dim=1)))
            return self.fc(F.avg_pool2d(h, 4).flatten(1))
    m = randomise_bn(Branches()); spec = permutation_spec(m, (1, 8, 8))
    assert spec.axes['fc.weight'][1][1] == 4 and len(spec.composites) == 1
    perm = random_permutation(spec, m, torch.Generator().manual_seed(0))
    other = copy.deepcopy(m); other.load_state_dict(apply_permutation(spec, perm, m))
    torch.testing.assert_close(outputs(other, DIGITS, False), outputs(m, DIGITS, False), atol=1e-5, rtol=1e-4)


class Grouped(nn.Module):
    def __init__(self): super().__init__(); self.conv = nn.Conv2d(4, 8, 3, groups=2); self.fc = nn.Linear(8, 2)
    def forward(self, x): return self.fc(self.conv(x).mean((2, 3)))

class WithAttention(nn.Module):
    def __init__(self): super().__init__(); self.attn = nn.MultiheadAttention(8, 2, batch_first=True); self.fc = nn.Linear(8, 2)
    def forward(self, x): return self.fc(self.attn(x, x, x)[0].mean(1))

class WithLayerNorm(nn.Module):
    def __init__(self): super().__init__(); self.fc1 = nn.Linear(4, 8); self.ln = nn.LayerNorm(8); self.fc2 = nn.Linear(8, 2)
    def forward(self, x): return self.fc2(self.ln(self.fc1(x)))

class WithRawWeight(nn.Module):
    def __init__(self): super().__init__(); self.fc = nn.Linear(4, 4)
    def forward(self, x): return self.fc(x) @ self.fc.weight

class WithCumsum(nn.Module):
    def __init__(self): super().__init__(); self.fc1 = nn.Linear(4, 8); self.fc2 = nn.Linear(8, 2)
    def forward(self, x): return self.fc2(torch.cumsum(self.fc1(x), 1))

@pytest.mark.parametrize('model,shape,name', [(Grouped, (4, 8, 8), "Conv2d module 'conv', a grouped convolution"),
                                              (WithAttention, (3, 8), "MultiheadAttention module 'attn'"),
                                              (WithLayerNorm, (4,), "LayerNorm module 'ln'"),
                                              (WithRawWeight, (4,), "tensor attribute 'fc.weight'"),
                                              (WithCumsum, (4,), "cumsum")])
def test_unsupported_layers_are_named(model, shape, name):
    with pytest.raises(UnsupportedLayerError) as e: permutation_spec(model(), shape)
    assert name in str(e.value) and 'explicit PermutationSpec' in str(e.value)


def test_explicit_spec_for_an_unsupported_model():
    "The error tells users to pass a spec: it works for a model the tracer refuses."
    m = WithLayerNorm()
    spec = PermutationSpec({'fc1.weight': ('P', None), 'fc1.bias': ('P',), 'ln.weight': ('P',), 'ln.bias': ('P',),
                            'fc2.weight': (None, 'P'), 'fc2.bias': (None,)})
    x = torch.randn(5, 4)
    other = copy.deepcopy(m); other.load_state_dict(apply_permutation(spec, random_permutation(spec, m), m))
    torch.testing.assert_close(other(x), m(x), atol=1e-6, rtol=1e-5)
    back = align(other.state_dict(), m.state_dict(), spec=spec)
    for k, v in m.state_dict().items(): assert torch.equal(back[k], v)


def test_matching_independent_models_brings_them_closer():
    torch.manual_seed(1); a, b = zoo_cnn_large(), zoo_cnn_large()
    spec = permutation_spec(a)
    res = weight_matching(spec, a, b)
    ident = weight_matching(spec, a, b, max_iter=1)
    dist = lambda p, q: sum(((p[k] - q[k]) ** 2).sum() for k in p).item()
    b_al = apply_permutation(spec, res.perm, b)
    assert dist(b_al, a.state_dict()) < dist(b.state_dict(), a.state_dict())
    assert res.similarity >= ident.similarity - 1e-9 and res.converged and res.sweeps >= 2


def test_errors():
    spec = permutation_spec(zoo_cnn_small())
    with pytest.raises(ShapeMismatchError): weight_matching(spec, zoo_cnn_small(), ZooCNN('small', hidden=30))
    with pytest.raises(ShapeMismatchError): apply_permutation(spec, {}, zoo_cnn_large())
    with pytest.raises(ConfigError): weight_matching(spec, zoo_cnn_small(), zoo_cnn_small(), max_iter=0)
    with pytest.raises(ConfigError): apply_permutation(spec, {'P_conv1': torch.arange(7)}, zoo_cnn_small())
    with pytest.raises(ConfigError): PermutationSpec({'w': ('P', 'Q')}, composites={'P': (('P', (0, 1)),)})
    with pytest.raises(ConfigError): PermutationSpec({'w': ('P',)}, composites={'P': (('Q', (0, 1)), ('R', (1, 2)))})


def test_align_zoo_from_checkpoint_reference(tmp_path):
    "align_zoo with a checkpoint file as reference and the spec derived from the members' config."
    import json
    from weightnb.zoo import Zoo
    src = tmp_path / 'zoo'
    for i in range(2):
        d = src / f'model_{i:04d}'; d.mkdir(parents=True)
        (d / 'config.json').write_text(json.dumps(dict(arch='zoo_cnn_small', arch_kwargs={})))
        torch.manual_seed(i); m = zoo_cnn_small()
        for ep in (1, 2):
            save_weights(m, d / f'epoch_{ep:03d}.safetensors')
            with torch.no_grad(): m.fc1.weight.mul_(1.1)
        (d / 'done').write_text('{}')
    torch.manual_seed(9); ref = zoo_cnn_small(); save_weights(ref, tmp_path / 'ref.safetensors')
    res = align_zoo(src, tmp_path / 'ref.safetensors', tmp_path / 'out', progress=False)
    out = Zoo(tmp_path / 'out')
    assert out.names == ['model_0000', 'model_0001'] and all(r.converged for r in res.values())
    spec = permutation_spec(zoo_cnn_small())
    for name, r in res.items():   # the permutation found on the last epoch is the one applied to every epoch
        for ep in (1, 2):
            want = apply_permutation(spec, r.perm, Zoo(src)[name].state_dict(ep))
            got = out[name].state_dict(ep)
            assert all(torch.equal(got[k], want[k]) for k in want)
    with pytest.raises(ConfigError): align_zoo(src, ref, src)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs cuda')
def test_weight_matching_on_cuda():
    m, spec, _ = model_and_spec('resnet20_A')
    sd = {k: v.cuda() for k, v in m.state_dict().items()}
    shuffled = apply_permutation(spec, random_permutation(spec, sd, torch.Generator().manual_seed(0)), sd)
    back = apply_permutation(spec, weight_matching(spec, sd, shuffled).perm, shuffled)
    assert all(torch.equal(back[k], v) for k, v in sd.items())

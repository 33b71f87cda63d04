"""Determinism (issue 17): the same seed on the same device gives identical weights and metrics for `fit`,
`train_predictor`, `generate_zoo` and `weight_matching` (CPU, tiny inputs), and a different seed does not."""
import json
import pytest
import torch

from weightnb.core import seed_everything, tensor_hash
from weightnb.data import dataloaders
from weightnb.models import create_model
from weightnb.train import fit
from weightnb.predictors import train_predictor
from weightnb.zoo import ZooSpec, generate_zoo
from weightnb.rebasin import permutation_spec, weight_matching

torch.set_num_threads(1)
_no_time = lambda rows: [{k: v for k, v in r.items() if k != 'seconds'} for r in rows]


@pytest.fixture
def dls():
    "Fresh loaders per run: a shuffling loader's generator advances as it is iterated, so a second run needs new ones."
    return lambda: dataloaders('digits', batch_size=50, n_train=200, n_val=100, n_test=100, seed=0)


def _fit(dls, seed):
    dls = dls(); seed_everything(seed); model = create_model('resnet20', num_classes=10, in_chans=1)
    hist = fit(model, dls.train, epochs=2, opt='sgd', lr=0.05, schedule='onecycle', val_dl=dls.val, progress=False, device='cpu')
    return tensor_hash(model), _no_time(hist)


def test_fit(dls):
    a, b, c = _fit(dls, 0), _fit(dls, 0), _fit(dls, 1)
    assert a == b and a[0] != c[0]


def _predictor(dls, seed):
    dls = dls(); seed_everything(0); target = create_model('resnet20', num_classes=10, in_chans=1)
    res = train_predictor(target, 8, 'recon', dls, steps=40, batch_size=512, seed=seed, device='cpu')
    return tensor_hash(res.predictor), tensor_hash(res.model), {k: v for k, v in res.metrics['recon'].items() if k != 'seconds'}, _no_time(res.history)


def test_train_predictor(dls):
    a, b, c = _predictor(dls, 0), _predictor(dls, 0), _predictor(dls, 1)
    assert a == b and a[0] != c[0]


def _zoo(tmp_path, name, seed):
    spec = ZooSpec(arch='resnet20', dataset='digits', lr={'loguniform': [1e-3, 1e-2]}, wd=0., opt=['adam', 'sgd'], batch_size=50,
                   epochs=1, checkpoints=[0, 1], n_train=200, n_val=100, n_test=100, seed=seed)
    zoo = generate_zoo(spec, tmp_path / name, 2, device='cpu', progress=False)
    return {m.name: ([tensor_hash(sd) for _, sd in m.checkpoints()], m.metrics, m.config) for m in zoo}


def test_generate_zoo(tmp_path):
    a, b, c = _zoo(tmp_path, 'a', 5), _zoo(tmp_path, 'b', 5), _zoo(tmp_path, 'c', 6)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a['model_0000'][0] != c['model_0000'][0]


@pytest.mark.parametrize('arch,kw', [('zoo_cnn_small', {}), ('resnet20', dict(in_chans=1))])
def test_weight_matching(arch, kw):
    seed_everything(0); a = create_model(arch, **kw); b = create_model(arch, **kw)
    spec = permutation_spec(a)
    r1 = weight_matching(spec, a, b, seed=0)
    torch.manual_seed(123); torch.rand(7)                  # global RNG state must not matter
    r2 = weight_matching(spec, a, b, seed=0)
    assert r1.perm.keys() == r2.perm.keys() and all(torch.equal(r1.perm[k], r2.perm[k]) for k in r1.perm)
    assert (r1.sweeps, r1.converged, r1.similarity) == (r2.sweeps, r2.converged, r2.similarity)
    assert any(not torch.equal(p, torch.arange(len(p))) for p in r1.perm.values())   # it did permute something

"Sampling: KDE statistics, BN conditioning, sample_models paths, fine-tuning curves."
import pytest, torch
from weightnb.core import ConfigError
from weightnb.models import zoo_cnn_small, resnet20
from weightnb.sane import SANE, SANEConfig
from weightnb.tokens import tokenize, Standardizer
from weightnb.sampling import kde_sample, kde_bandwidth, condition_bn, sample_models, decode_models, finetune_curve

def _sane():
    torch.manual_seed(0); s = SANE(32, 16, 2, 1, 4).eval(); s.config = SANEConfig(token_size=32, window=8, halo=2)
    s.standardizer = Standardizer().fit([tokenize(zoo_cnn_small().state_dict(), 32) for _ in range(3)]); return s

def test_kde_sample_shapes_and_bandwidth():
    z = torch.randn(5, 7, 3)
    s = kde_sample(z, 11, generator=torch.Generator().manual_seed(0)); assert s.shape == (11, 7, 3)
    assert torch.allclose(kde_bandwidth(z), z.std(0).mean(-1) * 5 ** (-1 / 7))
    s0 = kde_sample(z, 4, bandwidth=0.)                       # zero bandwidth: copies of prompt tokens
    assert all(any(torch.equal(s0[i, n], z[e, n]) for e in range(5)) for i in range(4) for n in range(7))
    with pytest.raises(ConfigError): kde_sample(torch.randn(3, 4), 2)

def test_condition_bn_keeps_weights():
    m = resnet20(in_chans=1); before = {k: v.clone() for k, v in m.state_dict().items()}
    condition_bn(m, [(torch.randn(4, 1, 28, 28) + 2, None)], 1)
    after = m.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if 'running' not in k and 'num_batches' not in k)
    assert not torch.equal(before['bn1.running_mean'], after['bn1.running_mean'])

def test_sample_models_methods_rank_by_metric():
    s = _sane(); prompts = [zoo_cnn_small().state_dict() for _ in range(3)]
    metric = lambda m: -m.fc2.bias.abs().sum().item()
    for method in ('subsample', 'bootstrap', 'gauss'):
        ms, sc = sample_models(s, prompts, 2, zoo_cnn_small(), method, metric=metric, n_candidates=5, iterations=2, return_scores=True)
        assert len(ms) == 2 and sc[0] >= sc[1] and sc[0] == pytest.approx(metric(ms[0]))
    assert len(sample_models(s, prompts, 3, zoo_cnn_small())) == 3
    with pytest.raises(ConfigError, match='metric_dl'): sample_models(s, prompts, 2, zoo_cnn_small(), 'subsample')
    with pytest.raises(ConfigError, match='method'): sample_models(s, prompts, 2, zoo_cnn_small(), 'best')

def test_decoded_models_load_and_run():
    s = _sane(); z = torch.randn(2, len(tokenize(zoo_cnn_small().state_dict(), 32)), 4)
    ms = decode_models(s, z, zoo_cnn_small())
    assert ms[0](torch.randn(2, 1, 28, 28)).shape == (2, 10)

def test_finetune_curve_epoch_zero_is_plain_accuracy():
    x = torch.randn(64, 1, 28, 28); y = torch.randint(0, 10, (64,)); dl = [(x[:32], y[:32]), (x[32:], y[32:])]
    m = zoo_cnn_small(); c = finetune_curve([m], dl, dl, epochs=(0, 2))
    assert c.shape == (1, 2) and c[0, 0] == pytest.approx((m(x).argmax(1) == y).float().mean().item())

def test_bandwidth_scale_multiplies_the_bandwidth():
    z = torch.randn(4, 6, 3)
    a = kde_sample(z, 5, 0.3, torch.Generator().manual_seed(2), bandwidth_scale=0.5)
    b = kde_sample(z, 5, 0.15, torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b)
    c = kde_sample(z, 50, None, torch.Generator().manual_seed(2), per_token=False, bandwidth_scale=0.)   # whole prompts, no noise
    assert all(any(torch.equal(ci, zi) for zi in z) for ci in c)

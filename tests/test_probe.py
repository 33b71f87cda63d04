"Probe features and the validated ridge probe."
import numpy as np, pytest, torch
from weightnb.core import ConfigError, ShapeMismatchError
from weightnb.models import zoo_cnn_small, resnet20
from weightnb.probe import flat_weights, layer_stats, linear_probe, STAT_NAMES

def test_flat_weights_skips_integer_buffers():
    sds = [resnet20(num_classes=10, in_chans=1).state_dict() for _ in range(2)]
    W = flat_weights(sds)
    n = sum(v.numel() for v in sds[0].values() if v.is_floating_point())
    assert W.shape == (2, n) and W.dtype == np.float32

def test_layer_stats_matches_numpy():
    torch.manual_seed(0); sds = [zoo_cnn_small().state_dict() for _ in range(4)]
    S, names = layer_stats(sds, names=True)
    assert S.shape == (4, 7 * len(sds[0])) and names[1].endswith('.var')
    for i, k in enumerate(sds[0]):
        x = sds[3][k].flatten().double().numpy()
        ref = [x.mean(), x.var(), *np.percentile(x, [1, 25, 50, 75, 99])]
        np.testing.assert_allclose(S[3, 7*i:7*i+7], ref, rtol=1e-4, atol=1e-6)
    assert len(STAT_NAMES) == 7

def test_bad_inputs():
    with pytest.raises(ConfigError): flat_weights([])
    with pytest.raises(ShapeMismatchError): layer_stats([zoo_cnn_small().state_dict(), zoo_cnn_small(num_classes=3).state_dict()])
    with pytest.raises(ShapeMismatchError): linear_probe(np.ones((5, 2)), np.ones(5), np.ones((5, 3)), np.ones(5), np.ones((5, 2)), np.ones(5))

def test_probe_picks_lambda_on_validation():
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.preprocessing import StandardScaler
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 200)); y = X @ rng.normal(size=200) * 0.1 + rng.normal(size=300)
    tr, va, te = slice(0, 150), slice(150, 220), slice(220, 300)
    r = linear_probe(X[tr], y[tr], X[va], y[va], X[te], y[te], alphas=(1e-3, 1., 1e3))
    sc = StandardScaler().fit(X[tr])
    val = {a: r2_score(y[va], Ridge(alpha=a).fit(sc.transform(X[tr]), y[tr]).predict(sc.transform(X[va]))) for a in (1e-3, 1., 1e3)}
    assert r['alpha'] == max(val, key=val.get) and abs(r['val_r2'] - max(val.values())) < 1e-9

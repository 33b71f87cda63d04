"SANE: permutation views, masking, resumable training (SIGKILL), embeddings of any length, decoding."
import signal, subprocess, sys, json, textwrap
import numpy as np, pytest, torch
from weightnb.core import ConfigError, CheckpointError
from weightnb.models import zoo_cnn_small, resnet20
from weightnb.rebasin import permutation_spec
from weightnb.tokens import tokenize, detokenize
from weightnb.sane import (SANE, SANEConfig, train_sane, load_sane, embed, model_embedding, layer_spread, reconstruct, permutation_gathers, masked_mse, sane_features)

SCRIPT = textwrap.dedent('''
    import os, signal, sys, torch; torch.set_num_threads(1)
    from weightnb.models import zoo_cnn_small
    from weightnb.sane import SANEConfig, train_sane
    torch.manual_seed(0); sds = [zoo_cnn_small().state_dict() for _ in range(20)]
    cfg = SANEConfig(token_size=32, d_model=16, n_heads=2, n_layers=1, latent_dim=4, window=8, epochs=4, batch_size=8, n_perm=3)
    kill_after = int(sys.argv[2])
    def on_epoch(e, row):
        if e + 1 == kill_after: os.kill(os.getpid(), signal.SIGKILL)
    train_sane({'train': sds[:14], 'val': sds[14:]}, cfg, sys.argv[1], model=zoo_cnn_small(), progress=False, on_epoch=on_epoch)
''')

def _run(out, kill_after, script):
    return subprocess.run([sys.executable, str(script), str(out), str(kill_after)], capture_output=True, text=True, timeout=600)

def test_resume_after_sigkill_equals_uninterrupted(tmp_path):
    script = tmp_path / 'run.py'; script.write_text(SCRIPT)
    r = _run(tmp_path / 'a', 2, script); assert r.returncode == -signal.SIGKILL, r.stderr
    hist = json.loads((tmp_path / 'a' / 'history.json').read_text()); assert len(hist) == 2
    early = load_sane(tmp_path / 'a' / 'sane_best.safetensors')              # a stopped run leaves its best model so far
    best = torch.load(tmp_path / 'a' / 'sane_resume.pt', weights_only=True)['best']
    assert early.standardizer is not None and all(torch.equal(v, best[k]) for k, v in early.state_dict().items())
    r = _run(tmp_path / 'a', 0, script); assert r.returncode == 0, r.stderr
    r = _run(tmp_path / 'b', 0, script); assert r.returncode == 0, r.stderr
    a, b = load_sane(tmp_path / 'a' / 'sane_best.safetensors'), load_sane(tmp_path / 'b' / 'sane_best.safetensors')
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert json.loads((tmp_path / 'a' / 'history.json').read_text())[-1]['val_loss'] == json.loads((tmp_path / 'b' / 'history.json').read_text())[-1]['val_loss']

def test_resume_refuses_other_config(tmp_path):
    torch.manual_seed(0); sds = [zoo_cnn_small().state_dict() for _ in range(6)]
    cfg = SANEConfig(token_size=32, d_model=16, n_heads=2, n_layers=1, latent_dim=4, window=8, epochs=1, batch_size=4, n_perm=0)
    train_sane({'train': sds[:4], 'val': sds[4:]}, cfg, tmp_path, progress=False)
    with pytest.raises(ConfigError, match='another config'):
        train_sane({'train': sds[:4], 'val': sds[4:]}, SANEConfig(**{**cfg.__dict__, 'lr': 0.5}), tmp_path, progress=False)
    (tmp_path / 'x.safetensors').write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError): load_sane(tmp_path / 'x.safetensors')

@pytest.mark.parametrize('make,ignore_bn', [(zoo_cnn_small, True), (lambda: resnet20(in_chans=1), False), (lambda: resnet20(in_chans=1), True)])
def test_permutation_views_preserve_function(make, ignore_bn):
    torch.manual_seed(1); m = make().eval()
    if any(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules()):        # non-trivial BN statistics
        m.train(); m(torch.randn(16, 1, 28, 28)); m.eval()
    t = tokenize(m.state_dict(), 40, ignore_bn=ignore_bn)
    if ignore_bn: return _check_bn_ignored(m, t, make)
    g = permutation_gathers(t, permutation_spec(m), 3, torch.Generator().manual_seed(0))
    x = torch.randn(4, 1, 28, 28)
    for gi in g:
        m2 = make().eval(); m2.load_state_dict(detokenize(t.with_tokens(t.tokens.reshape(-1)[gi].reshape(t.tokens.shape))))
        torch.testing.assert_close(m2(x), m(x), atol=1e-4, rtol=1e-4)

def _check_bn_ignored(m, t, make):
    "With BN left out of the tokens, a permutation view permutes conv weights consistently (BN stats would need the same permutation)."
    g = permutation_gathers(t, permutation_spec(m), 2, torch.Generator().manual_seed(0))
    for gi in g:
        assert sorted(gi.tolist()) == list(range(t.tokens.numel()))          # a permutation of the entries
        sd = detokenize(t.with_tokens(t.tokens.reshape(-1)[gi].reshape(t.tokens.shape)))
        assert not torch.equal(sd['conv1.weight'], m.state_dict()['conv1.weight'])
        assert torch.equal(sd['conv1.weight'].flatten().sort().values, m.state_dict()['conv1.weight'].flatten().sort().values)

def test_padding_does_not_change_real_outputs():
    torch.manual_seed(0); s = SANE(16, 16, 2, 1, 4).eval()
    x = torch.randn(1, 6, 16); pos = torch.arange(6)[None, :, None].repeat(1, 1, 3)
    real = torch.tensor([[1, 1, 1, 1, 0, 0]]).bool(); x2 = x.clone(); x2[0, 4:] = 50
    torch.testing.assert_close(s.encode(x, pos, real)[0, :4], s.encode(x2, pos, real)[0, :4])
    m = torch.zeros(2, 3, dtype=torch.bool); assert masked_mse(torch.ones(2, 3), torch.zeros(2, 3), m) == 0

def test_embed_any_length_and_halo():
    torch.manual_seed(0); s = SANE(288, 16, 2, 1, 4, max_positions=(4096, 128, 1024)).eval()
    s.config = SANEConfig(token_size=288, window=16, halo=4)
    sd = resnet20(in_chans=1).state_dict(); t = tokenize(sd, 288)
    z = embed(s, sd); assert z.shape == (len(t), 4) and len(t) > 16
    assert torch.isfinite(z).all()
    z_big = embed(s, sd, window=len(t))                # one chunk: no stitching
    zw = embed(s, sd, window=16, halo=0)
    assert not torch.allclose(z_big, zw)               # context matters
    assert layer_spread(z, t.positions).shape == (len(t.layers), 4)
    assert model_embedding(z).shape == (4,)
    rec = reconstruct(s, z, t, standardizer=None); assert set(rec) == set(sd)
    assert sane_features(s, [sd, sd]).shape == (2, 4)

def test_layer_summaries_batched_and_features():
    torch.manual_seed(0); s = SANE(32, 16, 2, 1, 4).eval(); s.config = SANEConfig(token_size=32, window=8, halo=2)
    sds = [zoo_cnn_small().state_dict() for _ in range(3)]; t = tokenize(sds[0], 32)
    z = embed(s, sds); L = len(t.layers)
    from weightnb.sane import layer_mean
    for i in range(3):                                                   # a stack gives each model's own summaries
        torch.testing.assert_close(layer_spread(z, t.positions)[i], layer_spread(z[i], t.positions))
        for l in range(L):
            zl = z[i][t.positions[:, 1] == l]
            torch.testing.assert_close(layer_mean(z[i], t.positions)[l], zl.mean(0))
            if len(zl) > 1: torch.testing.assert_close(layer_spread(z[i], t.positions)[l], zl.std(0), atol=1e-5, rtol=1e-4)
    f = sane_features(s, sds, agg='layers'); assert f.shape == (3, (1 + 2 * L) * 4)
    np.testing.assert_allclose(f[:, :4], sane_features(s, sds), rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match='agg'): sane_features(s, sds, agg='median')

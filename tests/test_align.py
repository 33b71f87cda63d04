"Tests of weightnb.align: encoders' round trips and invariances, dataset/results encoders, aligner, sampling, errors."
import json, math
import pytest
import torch
from torch import nn

from weightnb.core import WeightnbError, ConfigError
from weightnb.models import create_model
from weightnb.data import load_dataset, class_subset, ImageTensors
from weightnb.align import (WeightLayout, NotFittedError, PCAAutoencoder, WeightAutoencoder, pca_modes, functional_logits,
                            DatasetEncoder, feature_backbone, clip_backbone, ResultsEncoder, nt_xent, Aligner,
                            conditional_sample, reconstruction_fidelity, retrieval_topk, similarity_matrix,
                            as_state_dicts, weight_embedding)

torch.set_num_threads(1)

def population(n=24, k=3, scale=0.05, seed=0, make=lambda: create_model('zoo_cnn_small', num_classes=3)):
    g = torch.Generator().manual_seed(seed); base = make()
    lay = WeightLayout(base.state_dict()); X0 = lay.flatten([base.state_dict()])
    X = X0 + scale * torch.randn(n, k, generator=g) @ torch.randn(k, lay.n_params, generator=g)
    return lay.unflatten(X), lay, base


def test_layout_round_trip_keeps_buffers_and_order():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    lay = WeightLayout(m.state_dict())
    assert 'num_batches_tracked' not in ' '.join(lay.keys)
    sd = lay.unflatten(lay.flatten([m.state_dict()]))[0]
    assert list(sd) == list(m.state_dict())
    for k, v in m.state_dict().items(): assert torch.equal(sd[k], v)


def test_errors_are_weightnb_errors_with_advice():
    sds, lay, base = population(4)
    with pytest.raises(NotFittedError, match='fit'): PCAAutoencoder().encode(sds)
    with pytest.raises(ConfigError, match='architecture'): lay.flatten([create_model('zoo_cnn_small', num_classes=5).state_dict()])
    with pytest.raises(ConfigError, match='non-empty'): as_state_dicts([])
    with pytest.raises(ConfigError, match='binning'): ResultsEncoder.from_losses([0.1, 0.2], binning='log')
    with pytest.raises(ConfigError, match='features'): DatasetEncoder(nn.Linear(2, 2))
    assert issubclass(NotFittedError, WeightnbError)


def test_pca_modes_follow_algorithm_3_1():
    sds, lay, _ = population(10)
    X = lay.flatten(sds); X[:, lay.offsets[lay.keys.index('conv1.bias')]:lay.offsets[lay.keys.index('conv1.bias') + 1]] = 0.3
    modes = pca_modes(X, lay, var_threshold=1e-8, dim_limit=4)
    assert modes['conv1.bias'] == 'mean'          # constant across the zoo
    assert modes['fc2.bias'] == 'centre'          # 3 numbers
    assert modes['fc1.weight'] == 'pca'


def test_pca_autoencoder_reconstructs_low_rank_population():
    sds, lay, base = population(30, k=3)
    pa = PCAAutoencoder(latent_dim=6, n_components=3, epochs=300, lr=1e-2, model=base).fit(sds[:24], sds[24:])
    X, X0 = lay.flatten(sds[24:]), lay.flatten(sds[:24]).mean(0)
    rel = ((lay.flatten(pa.reconstruct(sds[24:])) - X).norm() / (X - X0).norm()).item()
    assert rel < 0.15
    assert pa.history[-1]['val'] < pa.history[0]['val']
    assert len(pa.decode(torch.zeros(2, 6))) == 2


def test_weight_autoencoder_is_permutation_invariant_and_behaviour_loss_runs():
    from weightnb.rebasin import permutation_spec, random_permutation, apply_permutation
    sds, lay, base = population(20)
    wa = WeightAutoencoder(base, latent_dim=6, hidden=(32,), epochs=20, lr=3e-3, probe_x=torch.randn(8, 1, 28, 28)).fit(sds)
    spec = permutation_spec(base)
    perm = random_permutation(spec, sds[3], generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(wa.encode([sds[3]]), wa.encode([apply_permutation(spec, perm, sds[3])]), atol=1e-4, rtol=0)
    x = torch.randn(4, 1, 28, 28)
    W = lay.flatten(sds[:2]).requires_grad_()
    out = functional_logits(base, lay, W, x); out.sum().backward()
    assert W.grad is not None and out.shape == (2, 4, 3)


def test_results_encoder_bins_and_nt_xent():
    re_ = ResultsEncoder.from_losses(torch.rand(1000), n_bins=10, dim=4)
    counts = torch.bincount(re_.bins(torch.rand(5000, generator=torch.Generator().manual_seed(0))), minlength=10)
    assert counts.min() > 300                    # quantile bins are populated
    a, b = torch.randn(16, 8), torch.randn(16, 8)
    torch.testing.assert_close(nt_xent(a, b), nt_xent(b, a))
    assert abs(nt_xent(torch.ones(16, 8), torch.ones(16, 8), 1.) - math.log(16)) < 1e-4   # chance level


def test_retrieval_chance_and_perfect():
    q = torch.randn(50, 8)
    r = retrieval_topk(q, q); assert r['top1'] == 1 and r['chance_top5'] == 0.1
    r = retrieval_topk(torch.randn(2000, 8), torch.randn(2000, 8), ks=(100,)); assert 0.02 < r['top100'] < 0.08


def test_clip_backbone_random_init_tiny_config(tmp_path):
    open_clip = pytest.importorskip('open_clip')
    cfg = dict(embed_dim=16, vision_cfg=dict(image_size=32, layers=1, width=64, patch_size=16),
               text_cfg=dict(context_length=16, vocab_size=100, width=64, heads=1, layers=1))
    (tmp_path / 'weightnb-tiny-clip.json').write_text(json.dumps(cfg)); open_clip.add_model_config(tmp_path)
    bb = clip_backbone('weightnb-tiny-clip', pretrained=None)
    ds = ImageTensors(torch.rand(12, 1, 28, 28), torch.arange(12) % 3, classes=['a', 'b', 'c'])
    z = DatasetEncoder(bb).encode(ds)
    assert z.shape == (48,) and torch.isfinite(z).all()
    with pytest.raises(ConfigError, match='pretrained'): clip_backbone('weightnb-tiny-clip', pretrained='/nonexistent/weights.bin')


class TinyBN(nn.Module):
    def __init__(self):
        super().__init__(); self.conv = nn.Conv2d(1, 4, 3); self.bn = nn.BatchNorm2d(4); self.fc = nn.Linear(4, 3)
    def forward(self, x): return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


def test_conditional_sample_end_to_end_with_bn_conditioning():
    sds, lay, base = population(40, make=TinyBN)
    enc = WeightAutoencoder(base, latent_dim=4, hidden=(16,), align=False, epochs=30, lr=3e-3).fit(sds)
    d = torch.randn(40, 6); losses = torch.rand(40)
    al = Aligner(6, 4, ResultsEncoder.from_losses(losses, 4, 4), hidden=(16,), weight_encoder=enc)
    h = al.fit(enc.encode(sds), d, losses, val=(enc.encode(sds[:10]), d[:10], losses[:10]), epochs=3, batch_size=16)
    assert len(h) == 3 and 'val' in h[0]
    bn_data = [(torch.randn(8, 1, 6, 6) * 3 + 2, None)]
    models = conditional_sample(al, d[0], 0.5, n=3, noise=0.5, bn_data=bn_data)
    assert len(models) == 3 and all(isinstance(m, TinyBN) and not m.training for m in models)
    assert (models[0].bn.running_mean != models[0].bn.running_mean.new_zeros(4)).any()
    assert not torch.equal(models[0].fc.weight, models[1].fc.weight)       # noise gives distinct samples
    S = similarity_matrix(al, enc.encode(sds[:5]), d[:5], losses[:5]); assert S.shape == (5, 5)
    assert weight_embedding(al)(sds[:3]).shape == (3, 4)
    from weightnb.align import similarity_embedding
    assert similarity_embedding(al, d[:4], losses[:4])(sds[:3]).shape == (3, 4)
    with pytest.raises(ConfigError, match='needs a Zoo'): similarity_embedding(al)(sds[:3])
    with pytest.raises(ConfigError, match='n must'): conditional_sample(al, d[0], 0.5, n=0)
    with pytest.raises(ConfigError, match='weight_encoder'): conditional_sample(Aligner(6, 4, al.results), d[0], 0.5)


def test_reconstruction_fidelity_identity_encoder():
    sds, lay, base = population(6)
    class Identity(PCAAutoencoder):
        def encode(self, w): return self.layout.flatten(as_state_dicts(w))
        def decode(self, z): return self.layout.unflatten(z)
    enc = Identity(model=base); enc.layout = lay
    r = reconstruction_fidelity(enc, sds, [torch.randn(16, 1, 28, 28) for _ in sds])
    assert r['agreement'] == 1 and abs(r['correlation'] - 1) < 1e-5 and len(r['rows']) == 6


def test_feature_backbone_cache_is_safetensors(tmp_path, monkeypatch):
    monkeypatch.setenv('WEIGHTNB_CACHE', str(tmp_path))
    a = feature_backbone('digits', feature_dim=8, epochs=1)
    files = list(tmp_path.rglob('backbone_*'))
    assert len(files) == 1 and files[0].suffix == '.safetensors'
    b = feature_backbone('digits', feature_dim=8, epochs=1)          # loaded from the cache: identical
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()): assert torch.equal(v, w), k
    enc = DatasetEncoder(a)
    torch.testing.assert_close(enc.encode_classes('digits', [2, 5]), enc.encode(class_subset(load_dataset('digits'), [2, 5])), atol=1e-4, rtol=0)


def _fitted_aligner(enc, sds, d, losses, dataset_encoder=None):
    al = Aligner(d.shape[1], enc.encode(sds[:1]).shape[1], ResultsEncoder.from_losses(losses, 4, 4), hidden=(16,),
                 weight_encoder=enc, dataset_encoder=dataset_encoder)
    al.fit(enc.encode(sds), d, losses, epochs=2, batch_size=8); return al


@pytest.mark.parametrize('kind', ['pca', 'wae', 'sane', 'func'])
def test_save_load_aligner_round_trip(tmp_path, kind):
    from weightnb.align import save_aligner, load_aligner, AlignerFileError, SANEEncoder, FeatureNet, FunctionalEncoder
    from weightnb.sane import SANEConfig
    from weightnb.core import CheckpointError
    sds, lay, base = population(16)
    if kind == 'pca': enc = PCAAutoencoder(latent_dim=4, n_components=3, hidden=(8,), epochs=3, model=base).fit(sds)
    elif kind == 'wae': enc = WeightAutoencoder(base, latent_dim=4, hidden=(8,), epochs=3).fit(sds)
    elif kind == 'func': enc = FunctionalEncoder(base, torch.randn(8, 1, 28, 28), latent_dim=5, steps=3).fit(sds)
    else: enc = SANEEncoder(base, SANEConfig(token_size=32, d_model=16, n_heads=2, n_layers=1, latent_dim=4, window=8, halo=2, epochs=1,
                                              windows_per_model=1, batch_size=8, n_perm=4)).fit(sds)
    fenc = DatasetEncoder(FeatureNet(1, 10, 8).eval()); fenc._cache[('toy', 'train')] = torch.randn(10, 8)
    d, losses = torch.randn(16, 24), torch.rand(16)
    al = _fitted_aligner(enc, sds, d, losses, fenc)
    save_aligner(tmp_path / 'a', al, metadata=dict(zoo='toy'))
    al2 = load_aligner(tmp_path / 'a')
    assert al2.metadata == dict(zoo='toy') and len(al2.history) == 2 and type(al2.weight_encoder) is type(enc)
    torch.testing.assert_close(al2.weight_encoder.encode(sds[:3]), enc.encode(sds[:3]))
    a = conditional_sample(al, d[0], 0.4, n=2, noise=0.5); b = conditional_sample(al2, d[0], 0.4, n=2, noise=0.5)
    for ma, mb in zip(a, b):
        for (k, v), w in zip(ma.state_dict().items(), mb.state_dict().values()): torch.testing.assert_close(v, w, msg=k)
    torch.testing.assert_close(al2.dataset_encoder.encode_classes('toy', [1, 3]), fenc.encode_classes('toy', [1, 3]))
    assert issubclass(AlignerFileError, CheckpointError)


def test_load_aligner_refuses_missing_corrupt_and_mismatched_files(tmp_path):
    from weightnb.align import save_aligner, load_aligner, AlignerFileError
    sds, lay, base = population(12)
    enc = WeightAutoencoder(base, latent_dim=3, hidden=(8,), epochs=2).fit(sds)
    d, losses = torch.randn(12, 5), torch.rand(12)
    save_aligner(tmp_path / 'a', _fitted_aligner(enc, sds, d, losses)); save_aligner(tmp_path / 'b', _fitted_aligner(enc, sds, d * 2, losses))
    assert load_aligner(tmp_path / 'a').dataset_encoder is None
    with pytest.raises(AlignerFileError, match='missing'): load_aligner(tmp_path / 'nowhere')
    (tmp_path / 'b' / 'aligner.safetensors').replace(tmp_path / 'a' / 'aligner.safetensors')      # files of two saves
    with pytest.raises(AlignerFileError, match='checksum'): load_aligner(tmp_path / 'a')
    (tmp_path / 'a' / 'aligner.json').write_text('{not json')
    with pytest.raises(AlignerFileError, match='JSON'): load_aligner(tmp_path / 'a')
    save_aligner(tmp_path / 'c', _fitted_aligner(enc, sds, d, losses))
    cfg = json.loads((tmp_path / 'c' / 'aligner.json').read_text()); cfg['aligner']['latent_dim'] = 7    # config and tensors disagree
    (tmp_path / 'c' / 'aligner.json').write_text(json.dumps(cfg))
    with pytest.raises(AlignerFileError, match='consistent'): load_aligner(tmp_path / 'c')
    with pytest.raises(NotFittedError): save_aligner(tmp_path / 'd', Aligner(5, 3, ResultsEncoder.from_losses(losses), weight_encoder=WeightAutoencoder(base)))


def test_functional_encoder_is_invariant_and_decodes_the_function():
    from weightnb.align import FunctionalEncoder, fit_aligner
    from weightnb.rebasin import permutation_spec, random_permutation, apply_permutation
    sds, lay, base = population(24, k=8)
    x = torch.randn(80, 1, 28, 28)
    fe = FunctionalEncoder(base, x[:48], latent_dim=12, steps=120, lr=3e-3).fit(sds[:20])
    assert fe.encode(sds[:2]).shape == (2, 12) and 0 < fe.history[0]['explained_variance'] <= 1
    spec = permutation_spec(base); perm = random_permutation(spec, sds[21], generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(fe.encode([sds[21]]), fe.encode([apply_permutation(spec, perm, sds[21])]), atol=1e-4, rtol=1e-5)
    X = lay.flatten(sds[20:]); start = fe.memory[torch.cdist(fe.encode(sds[20:]), fe.memory_z).argmin(1)]
    out = lambda W: functional_logits(base, lay, W, x[48:]).detach()
    err = lambda W: torch.nn.functional.mse_loss(out(W), out(X)).item()
    assert err(lay.flatten(fe.reconstruct(sds[20:]))) < 0.5 * err(start)        # better than the start, on unseen inputs
    with pytest.raises(ConfigError, match='latent_dim'): FunctionalEncoder(base, x[:4], latent_dim=50).fit(sds[:20])
    d, losses = torch.randn(20, 6), torch.rand(20)
    al = fit_aligner(dict(state_dicts=sds[:20], datasets=d, losses=losses), fe, epochs=3, batch_size=8, hidden=(16,), n_bins=4, results_dim=4)
    assert len(al.history) == 3 and al.weight_encoder is fe
    with pytest.raises(ConfigError, match='dataset_encoder'): fit_aligner(dict(state_dicts=sds, datasets=None, losses=losses), fe)

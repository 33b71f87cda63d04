"Tests of weightnb.predictors that need many cases, a cache directory or a (small) training run."
import copy, math
import pytest, torch
import torch.nn.functional as F
from torch import nn

torch.set_num_threads(1)

from weightnb import predictors as P
from weightnb.core import (ConfigError, NoConvLayerError, UnsupportedLayerError, NonFiniteWeightsError,
                           ShapeMismatchError, WeightnbError)
from weightnb.models import resnet20, resnet56, zoo_cnn_small


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch): monkeypatch.setenv('WEIGHTNB_CACHE', str(tmp_path / 'cache'))


@pytest.fixture(scope='module')
def digits():
    from weightnb.data import dataloaders
    return dataloaders('digits', batch_size=64)


PAPER = [(resnet20, h, cr) for h, cr in {120: .27, 140: .35, 180: .53, 300: 1.28}.items()] + \
        [(resnet56, h, cr) for h, cr in {220: .24, 280: .36, 320: .46, 360: .57, 510: 1.06, 680: 1.83, 750: 2.20}.items()]

@pytest.mark.parametrize('arch,hidden,cr', PAPER)
def test_compression_ratio_matches_appendix_e(arch, hidden, cr):
    target = arch(10, in_chans=3, shortcut='B')
    assert abs(P.compression_ratio(P.KernelPredictor(240, hidden), target) - cr) <= 0.01
    assert abs(P.compression_ratio(P.KernelPredictor(240, hidden), target, 'all') - cr) <= 0.01


def test_compression_ratio_counts_shortcuts():
    a, b = resnet20(10, 3, 'A'), resnet20(10, 3, 'B')
    assert P.predicted_param_count(b) - P.predicted_param_count(a) == 16 * 32 + 32 * 64


def test_encoding_formula():
    coords = torch.tensor([[1., 2., 3.]])
    enc = P.positional_encoding(coords, levels=4, base=0.5)
    assert enc.shape == (1, 24)
    for i, x in enumerate([1., 2., 3.]):
        for l in range(4):
            assert math.isclose(enc[0, i * 8 + l].item(), math.sin(x * 0.5 ** l * math.pi), abs_tol=1e-5)
            assert math.isclose(enc[0, i * 8 + 4 + l].item(), math.cos(x * 0.5 ** l * math.pi), abs_tol=1e-5)
    with pytest.raises(ConfigError): P.positional_encoding(coords, kind='wavelet')


@pytest.mark.parametrize('mode', ['in_filter', 'cross_filter'])
def test_permutation_is_a_permutation_and_cached(mode, monkeypatch):
    m = resnet20(10, 1)
    perms = P.smoothness_permutation(m, mode)
    for name, conv in P.predicted_layers(m):
        n = conv.weight.shape[0] * conv.weight.shape[1]
        assert torch.equal(perms[name].sort().values, torch.arange(n))
    monkeypatch.setattr(P, 'layer_permutation', lambda *a, **k: pytest.fail('not served from the cache'))
    again = P.smoothness_permutation(m, mode)
    assert all(torch.equal(again[k], perms[k]) for k in perms)
    # other weights -> other cache key -> recomputed
    m2 = resnet20(10, 1)
    with pytest.raises(pytest.fail.Exception): P.smoothness_permutation(m2, mode)


def test_cross_filter_chain_follows_nearest_neighbours():
    torch.manual_seed(0)
    base = torch.randn(1, 9)
    # kernels along a path in weight space, stored shuffled: the chain must recover the path order
    path = torch.cat([base + 0.3 * i * torch.ones(1, 9) * torch.linspace(-1, 1, 9) for i in range(8)])
    shuffle = torch.tensor([0, 5, 2, 7, 1, 6, 3, 4])
    w = path[shuffle].reshape(2, 4, 3, 3)
    pos = P.layer_permutation(w, 'cross_filter')
    assert torch.equal(pos, shuffle)            # kernel i (path step shuffle[i]) lands at coordinate shuffle[i]


def test_in_filter_permutation_groups_filters():
    w = torch.randn(3, 5, 3, 3)
    pos = P.layer_permutation(w, 'in_filter').reshape(3, 5)
    assert all(len(set((pos[f] // 5).tolist())) == 1 for f in range(3))   # a filter's kernels stay in one coordinate row


def test_permutation_only_reorders_inputs():
    m = resnet20(10, 1)
    torch.manual_seed(0); pred = P.KernelPredictor(240, 16)
    a = P.PredictedModel(m, pred, permutation=None); b = P.PredictedModel(m, pred, permutation='cross_filter')
    assert torch.equal(a.target_kernels, b.target_kernels)              # same kernel order
    assert not torch.equal(a.enc, b.enc)
    sl = slice(a.offsets[1], a.offsets[2])       # one layer (layer1.0.conv1): its encodings are permuted among themselves
    ra = {tuple(r.tolist()) for r in a.enc[sl].round(decimals=4)}; rb = {tuple(r.tolist()) for r in b.enc[sl].round(decimals=4)}
    assert ra == rb


def test_compression_ratio_of_the_reference():
    "The reference's hidden-140 predictor over ResNet-20-B with the stem predicted: CR 0.3487 (0.3492 without the stem)."
    target, pred = resnet20(10, 3, 'B'), P.KernelPredictor(240, 140)
    assert round(P.compression_ratio(pred, target), 4) == 0.3487
    assert round(P.compression_ratio(pred, target, 'no_stem'), 4) == 0.3492
    pm = P.PredictedModel(target, pred, permutation=None)
    assert pm.layer_names[0] == 'conv1' and round(P.compression_ratio(pred, pm), 4) == 0.3487


def test_recon_only_step_predicts_only_the_batch():
    m = resnet20(10, 1); pm = P.PredictedModel(m, P.KernelPredictor(240, 16))
    rows = []
    h = pm.predictor[0].register_forward_hook(lambda mod, i, o: rows.append(i[0].shape[0]))
    idx = P.kernel_batch(pm.kernel_norms, 512)
    P.recon_loss(pm.predict(idx), pm.target_kernels[idx], pm.mask[idx]).backward()
    h.remove()
    assert rows == [512] and pm.n_kernels > 512


def test_functional_call_gradients_and_materialize():
    m = resnet20(10, 1, shortcut='B').eval(); pm = P.PredictedModel(m, P.KernelPredictor(240, 16))
    x = torch.randn(3, 1, 8, 8)
    pm(x).logsumexp(1).sum().backward()
    assert all(p.grad is not None for p in pm.predictor.parameters())
    mat = pm.materialize().eval()
    with torch.no_grad(): assert torch.allclose(mat(x), pm(x), atol=1e-5)
    assert isinstance(mat, type(m)) and all(p.requires_grad for p in mat.parameters())
    # 1x1 shortcut = centre of the 3x3 prediction
    kern = pm.predict().detach(); l = pm.layer_names.index('layer3.0.shortcut.0')
    assert torch.allclose(mat.layer3[0].shortcut[0].weight.flatten(), kern[pm.offsets[l]:pm.offsets[l + 1], 4])


def test_losses():
    s, t = torch.randn(8, 10), torch.randn(8, 10)
    kl = (torch.softmax(t, 1) * (torch.log_softmax(t, 1) - torch.log_softmax(s, 1))).sum(1).mean()
    assert torch.allclose(P.kd_loss(s, t), kl, atol=1e-6)
    assert torch.allclose(P.kd_loss(s, t, 2.), 4 * (torch.softmax(t / 2, 1) * (torch.log_softmax(t / 2, 1) - torch.log_softmax(s / 2, 1))).sum(1).mean(), atol=1e-6)
    f = torch.randn(4, 3, 5, 5)
    assert P.fmd_loss([f], [3 * f], squared=False, eps=0.).item() < 1e-5
    assert P.fmd_loss([f], [-f], squared=False, eps=0.).item() == pytest.approx(2., abs=1e-5)
    assert P.fmd_loss([f], [-f]).item() == pytest.approx(4., abs=1e-3)     # squared, summed per sample, / batch
    with pytest.raises(ShapeMismatchError): P.kd_loss(s, t[:, :5])


def test_weighted_batches_follow_norms():
    g = torch.Generator().manual_seed(0)
    norms = torch.tensor([1., 3., 0.])
    idx = torch.cat([P.kernel_batch(norms, 1000, p_uniform=0., generator=g) for _ in range(4)])
    frac = (idx == 1).float().mean().item()
    assert 0.7 < frac < 0.8 and (idx == 2).sum() == 0


def test_bad_inputs(digits):
    with pytest.raises(NoConvLayerError): P.PredictedModel(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), P.KernelPredictor(240, 8))
    with pytest.raises(UnsupportedLayerError, match="'conv1'"): P.PredictedModel(zoo_cnn_small(), P.KernelPredictor(240, 8), 'all')
    with pytest.raises(UnsupportedLayerError, match=r"predictor=KernelPredictor\(kernel_size=5\)"): P.PredictedModel(zoo_cnn_small(), P.KernelPredictor(240, 8))
    with pytest.raises(ConfigError, match='permutation'): P.PredictedModel(resnet20(10, 1), P.KernelPredictor(240, 8), permutation='in-filter')
    perm = P.smoothness_permutation(resnet20(10, 1), 'in_filter', 'no_stem')
    with pytest.raises(ConfigError, match='conv1'): P.PredictedModel(resnet20(10, 1), P.KernelPredictor(240, 8), permutation=perm)
    with pytest.raises(ConfigError, match='seed'): P.progressive(resnet20(10, 1), 8, rounds=1, seeds=0, dls=digits, robustness=False, steps=1)
    P.PredictedModel(zoo_cnn_small(), P.KernelPredictor(240, 8, kernel_size=5), 'all')   # a 5x5 predictor covers 5x5 and 2x2
    bad = resnet20(10, 1)
    with torch.no_grad(): bad.layer2[0].conv2.weight[0, 0, 1, 1] = float('nan')
    with pytest.raises(NonFiniteWeightsError, match='layer2.0.conv2'): P.train_predictor(bad, 8, steps=1)
    for h in (0, -3):
        with pytest.raises(ConfigError): P.train_predictor(resnet20(10, 1), h, steps=1)
        with pytest.raises(ConfigError): P.KernelPredictor(240, h)
    with pytest.raises(ShapeMismatchError, match='7 classes'):
        P.train_predictor(resnet20(10, 1), 8, 'decoupled', digits, steps=1, phase2_steps=1, teacher=resnet20(7, 1))
    with pytest.raises(ConfigError): P.train_predictor(resnet20(10, 1), 8, 'nern', None, steps=1)
    with pytest.raises(ConfigError): P.train_predictor(resnet20(10, 1), 8, 'joint', steps=1)
    assert issubclass(UnsupportedLayerError, WeightnbError)


def test_decoupled_noise_with_foreign_teacher_selects_by_validation(digits):
    torch.manual_seed(0)
    target = resnet20(10, 1)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))     # another architecture, same classes
    res = P.train_predictor(target, 16, 'decoupled', digits, steps=6, phase2_steps=4, batch_size=512, inputs='noise',
                            teacher=teacher, eval_every=2, permutation=None)
    assert set(res.metrics) == {'phase1', 'phase2'}
    for ph in ('phase1', 'phase2'):
        scores = [r['score'] for r in res.history if r['phase'] == ph and 'score' in r]
        assert res.metrics[ph]['val_acc'] >= max(scores) - 1e-9        # best-by-validation checkpoint is kept
    assert any('kd' in r for r in res.history) and not any('recon' in r for r in res.history if r['phase'] == 'phase2')
    assert 0 < res.metrics['phase2']['cr'] and 0 <= res.metrics['phase2']['test_acc'] <= 1


def test_nern_mode_uses_all_three_losses(digits):
    res = P.train_predictor(resnet20(10, 1), 16, 'nern', digits, steps=3, batch_size=512, eval_every=3, permutation=None)
    r = res.history[-1]
    assert {'recon', 'kd', 'fmd'} <= set(r) and math.isclose(r['loss'], r['recon'] + 1e-4 * r['kd'] + 1e-4 * r['fmd'], rel_tol=1e-4)


def test_reconstruction_learns_a_layer():
    torch.manual_seed(0)
    m = resnet20(10, 1)
    res = P.train_predictor(m, 64, 'recon', steps=400, batch_size=256, layers=['layer1.0.conv1'], opt='adam', lr=3e-3)
    zero = P.recon_loss(torch.zeros_like(res.predicted.target_kernels), res.predicted.target_kernels).item()
    assert res.metrics['recon']['recon'] < 0.5 * zero


def test_quantize_sizes_and_error():
    pred = P.KernelPredictor(240, 32)
    lins = [l for l in pred if isinstance(l, nn.Linear)]
    n_w = sum(l.weight.numel() for l in lins); n_b = sum(l.bias.numel() for l in lins); n_rows = sum(l.out_features for l in lins)
    q, qt = P.quantize_predictor(pred), P.quantize_predictor(pred, per_channel=False)
    assert q.fp32_bytes == qt.fp32_bytes == 4 * (n_w + n_b)
    assert q.size_bytes == n_w + 4 * n_rows + 4 * n_b and qt.size_bytes == n_w + 4 * 5 + 4 * n_b
    linear = lambda m: [l for l in m if isinstance(l, nn.Linear)]
    for l, a, b in zip(lins, linear(q.module), linear(qt.module)):
        w = l.weight
        assert ((w - a.weight).abs() <= w.abs().amax(1, keepdim=True) / 254 + 1e-7).all()
        assert (w - b.weight).abs().max() <= w.abs().max() / 254 + 1e-7
        assert torch.equal(l.bias, a.bias)                     # biases stay fp32
    vals, scale = P.quantize_tensor(torch.randn(8, 4, 3, 3))
    assert vals.dtype == torch.int8 and scale.shape == (8, 1, 1, 1)
    qm = P.quantize_model(resnet20(10, 1))
    assert qm.size_bytes < qm.fp32_bytes / 3


# ---- NeRN's reference (maorash/NeRN), re-typed from its code to check weightnb against it ----

def nern_feature_maps(model, x):
    "NeRN's cifar_resnet forward: stem BN output, per block conv1's BN output, conv2's BN output *then* `+=` shortcut."
    acts = []
    out = model.bn1(model.conv1(x)); acts.append(out); out = F.relu(out)
    for layer in (model.layer1, model.layer2, model.layer3):
        for b in layer:
            o = b.bn1(b.conv1(out)); acts.append(o); o = F.relu(o)
            o = b.bn2(b.conv2(o)); acts.append(o)
            o += b.shortcut(out); acts.append(o)          # in place: the previous entry becomes the sum too
            out = F.relu(o)
    return model.fc(F.adaptive_avg_pool2d(out, 1).flatten(1)), acts


def nern_l2_batched_attention(rec, orig, eps=1e-3):
    "NeRN's L2BatchedAttentionLoss."
    B = orig[0].size(0); loss = torch.tensor(0.)
    norm = lambda m: m / (torch.norm(m.view(B, -1), p=2, dim=1).view(B, 1, 1, 1) + eps)
    for o, r in zip(orig, rec): loss += torch.sum((norm(o) - norm(r)) ** 2)
    return loss / B


def nern_stable_kl(s, t):
    "NeRN's StableKLDivLoss."
    return nn.KLDivLoss(reduction='batchmean')(torch.log(F.softmax(s, dim=1) + 1e-4), F.softmax(t, dim=1))


def _perturbed(m, scale=0.05, seed=1):
    g = torch.Generator().manual_seed(seed); p = copy.deepcopy(m)
    with torch.no_grad():
        for _, c in P.predicted_layers(p): c.weight.add_(scale * torch.randn(c.weight.shape, generator=g))
    return p


@pytest.mark.parametrize('shortcut', ['A', 'B'])
def test_fmd_and_kd_equal_the_reference(shortcut):
    torch.manual_seed(0)
    m = resnet20(10, 3, shortcut).eval(); s = _perturbed(m).eval(); x = torch.randn(5, 3, 16, 16)
    with torch.no_grad():
        ref_out, ref_t = nern_feature_maps(m, x); rec_out, ref_s = nern_feature_maps(s, x)
        assert len(ref_t) == 28
        with P.capture_features(m) as ct: t_out = m(x)
        with P.capture_features(s) as cs: s_out = s(x)
    assert torch.allclose(ref_out, t_out, atol=1e-5) and torch.allclose(rec_out, s_out, atol=1e-5)
    ours = P.fmd_loss(cs.feats, ct.feats, weights=cs.weights)
    assert sum(cs.weights) == 28
    assert ours.item() == pytest.approx(nern_l2_batched_attention(ref_s, ref_t).item(), rel=1e-5)
    assert P.kd_loss(s_out, t_out, eps=1e-4).item() == pytest.approx(nern_stable_kl(s_out, t_out).item(), rel=1e-5)


def nern_kernels(pm, idx):
    "NeRN's `_predict_all_by_random_batches`: zeros, the batch with gradients, the rest under no_grad."
    rest = torch.tensor(sorted(set(range(pm.n_kernels)) - set(idx.tolist())))
    pred = torch.zeros(pm.n_kernels, pm.K * pm.K)
    pred[idx] = pm.predict(idx)
    with torch.no_grad(): pred[rest] = pm.predict(rest)
    return pred


def test_nern_step_gradients_equal_the_reference():
    "One NeRN step: loss and predictor gradients equal the reference's construction (batch-only gradients)."
    torch.manual_seed(0)
    m = resnet20(10, 1, 'B').eval(); pm = P.PredictedModel(m, P.KernelPredictor(240, 16), permutation=None)
    nern, = P.mode_phases('nern'); x = torch.randn(4, 1, 12, 12)
    idx = torch.cat([torch.randperm(pm.n_kernels)[:300], torch.tensor([7, 7])])    # duplicates, as weighted batches have
    params = list(pm.predictor.parameters())
    loss, parts = P.phase_loss(pm, nern, idx, x)
    ours = torch.autograd.grad(loss, params)
    kern = nern_kernels(pm, idx)
    w = pm.weights(kern)
    out = torch.func.functional_call(pm.target, w, (x,), strict=False)
    with torch.no_grad(): t_out, t_maps = nern_feature_maps(pm.target, x)
    s_out, s_maps = nern_feature_maps(_with_weights(pm.target, w), x)
    ref = P.recon_loss(kern, pm.target_kernels, pm.mask) + 1e-4 * nern_stable_kl(out, t_out) + 1e-4 * nern_l2_batched_attention(s_maps, t_maps)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    theirs = torch.autograd.grad(ref, params)
    for a, b in zip(ours, theirs): assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)
    full = torch.autograd.grad(P.phase_loss(pm, P.replace(nern, grads='all'), idx, x)[0], params)
    assert not torch.allclose(full[0], ours[0], rtol=1e-2)          # 'all' is a different gradient


class _with_weights(nn.Module):
    "A model that runs `model` through functional_call with `weights` (for the re-typed reference forward)."
    def __init__(self, model, weights): super().__init__(); self.model, self.w = model, weights
    def __getattr__(self, name):
        if name in ('model', 'w') or name.startswith('_') or name in ('training',): return super().__getattr__(name)
        return _Sub(self.model, self.w, name)


class _Sub:
    def __init__(self, model, w, prefix): self.model, self.w, self.prefix = model, w, prefix
    def _mod(self): return self.model.get_submodule(self.prefix)
    def __getattr__(self, name): return _Sub(self.model, self.w, f'{self.prefix}.{name}')
    def __iter__(self): return iter(_Sub(self.model, self.w, f'{self.prefix}.{i}') for i in range(len(self._mod())))
    def __call__(self, x):
        mod = self._mod(); p = self.prefix + '.'
        local = {k[len(p):]: v for k, v in self.w.items() if k.startswith(p)}
        return torch.func.functional_call(mod, local, (x,), strict=False) if local else mod(x)


def test_nern_defaults_follow_the_reference(digits, monkeypatch):
    seen = []
    real = P.make_optimizer
    monkeypatch.setattr(P, 'make_optimizer', lambda params, opt, **kw: seen.append((opt, kw)) or real(params, opt, **kw))
    res = P.train_predictor(resnet20(10, 1), 16, 'nern', digits, steps=2, batch_size=256, eval_every=2, permutation=None)
    assert seen == [('ranger', dict(lr=5e-3, wd=1e-3, betas=(0.5, 0.999)))]
    assert res.predicted.layer_names[0] == 'conv1'                     # the stem is predicted
    nern, = P.mode_phases('nern')
    assert (nern.kd, nern.fmd, nern.kd_eps, nern.clip, nern.grads, nern.fmd_kind, nern.warmup, nern.min_lr) == \
           (1e-4, 1e-4, 1e-4, None, 'batch', 'reference', 0, 1e-6)
    seen.clear()
    P.train_predictor(resnet20(10, 1), 16, 'decoupled', digits, steps=1, phase2_steps=1, batch_size=256, permutation=None)
    assert seen == [('ranger', dict(lr=5e-3, wd=0., betas=None)), ('ranger', dict(lr=5e-4, wd=0., betas=None))]


def test_fast_variants_and_warmup(digits):
    fast = P.train_predictor(resnet20(10, 1), 16, 'nern', digits, steps=2, batch_size=256, fmd='blocks', grads='all', permutation=None)
    r = fast.history[-1]
    assert math.isclose(r['loss'], r['recon'] + 1e-4 * r['kd'] + 1e-4 * r['fmd'], rel_tol=1e-4)
    ph = [P.replace(P.mode_phases('nern', steps=3)[0], warmup=2, batch_size=256)]
    res = P.train_predictor(resnet20(10, 1), 16, dls=digits, phases=ph, permutation=None)
    assert [set(h) & {'kd', 'fmd'} for h in res.history] == [set(), set(), {'kd', 'fmd'}]
    with pytest.raises(ConfigError, match='grads'): P.train_predictor(resnet20(10, 1), 16, 'nern', digits, steps=1, grads='some')


def test_train_phase_resumes_bit_exactly(tmp_path, monkeypatch):
    "A phase interrupted after a checkpoint and restarted ends where an uninterrupted run ends (recon: no data order)."
    m = resnet20(10, 1)
    ph = P.Phase('recon', steps=6, batch_size=256)
    def run(**kw):
        torch.manual_seed(0); pm = P.PredictedModel(m, P.KernelPredictor(240, 16), permutation=None)
        metrics, hist = P.train_phase(pm, ph, generator=torch.Generator().manual_seed(0), eval_every=3, **kw)
        return pm.predictor.state_dict(), metrics, hist
    ref_sd, ref_m, ref_h = run()
    ck = tmp_path / 'recon.pt'; real, calls = P.phase_loss, []
    def failing(*a, **k):
        calls.append(1)
        if len(calls) == 5: raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(P, 'phase_loss', failing)
    with pytest.raises(KeyboardInterrupt): run(checkpoint=ck, checkpoint_every=2)
    assert torch.load(ck, weights_only=True)['step'] == 4
    monkeypatch.setattr(P, 'phase_loss', real)
    sd, metrics, hist = run(checkpoint=ck, checkpoint_every=2)
    assert all(torch.equal(sd[k], ref_sd[k]) for k in sd)
    assert [h['loss'] for h in hist] == [h['loss'] for h in ref_h] and metrics['recon'] == ref_m['recon']
    with pytest.raises(P.CheckpointError, match='another phase'):
        P.train_phase(P.PredictedModel(m, P.KernelPredictor(240, 16), permutation=None), P.replace(ph, lr=1e-3), checkpoint=ck)


def test_train_predictor_checkpoint_folder(tmp_path, digits):
    kw = dict(steps=4, phase2_steps=2, batch_size=256, permutation=None, checkpoint=tmp_path / 'ck')
    a = P.train_predictor(resnet20(10, 1), 16, 'decoupled', digits, **kw)
    assert sorted(p.name for p in (tmp_path / 'ck').iterdir()) == ['phase1.pt', 'phase2.pt']
    b = P.train_predictor(resnet20(10, 1), 16, 'decoupled', digits, **kw)      # both phases finished: nothing retrained
    assert [h['loss'] for h in a.history] == [h['loss'] for h in b.history]
    assert all(torch.equal(x, y) for x, y in zip(a.predictor.state_dict().values(), b.predictor.state_dict().values()))


def _bench(name):
    "Import bench/NAME.py (bench scripts are not a package; they import bench/_common.py as `_common`)."
    import importlib, sys
    from pathlib import Path
    d = str(Path(__file__).resolve().parents[1] / 'bench')
    if d not in sys.path: sys.path.insert(0, d)
    return importlib.import_module(name)


def test_bench_cache_reads_runs_without_layers_as_no_stem(tmp_path):
    import json
    B = _bench('predictors_long')
    (tmp_path / 'old.json').write_text(json.dumps(dict(acc=0.5)))            # stored before configs held `layers`
    c = B.Cache(tmp_path, command='python bench/x.py')
    assert c.get('old')['config']['layers'] == 'no_stem'
    assert c.run('old', lambda: dict(acc=0.9), dict(hidden=1, layers='no_stem'))['acc'] == 0.5
    with pytest.raises(ConfigError, match="layers='no_stem'"): c.run('old', lambda: dict(acc=0.9), dict(hidden=1, layers='all'))
    c.run('new', lambda: dict(acc=0.7), dict(hidden=1, layers='all'))
    assert c.run('new', lambda: dict(acc=0.1), dict(hidden=1, layers='all'))['acc'] == 0.7
    with pytest.raises(ConfigError): c.run('new', lambda: dict(acc=0.1), dict(hidden=2, layers='all'))


def test_bench_budget_rule_uses_the_validation_spread():
    B = _bench('predictors_long')
    pilots = {2500: {140: [0.3, 0.5, 0.4]}, 10000: {140: [0.88, 0.87, 0.885], 120: [0.8, 0.84, 0.81]}, 20000: {140: [0.91, 0.905]}}
    assert B.choose_budget(pilots)['chosen'] == 20000                     # h120 sd at 10,000 is 2.1 points > 2
    assert B.choose_budget(pilots, sd_max=0.025)['chosen'] == 10000
    assert B.choose_budget({2500: {140: [0.1, 0.9]}})['chosen'] is None
    r = dict(history=[dict(phase='recon', step=1, score=0.2), dict(phase='recon', step=2, score=0.6), dict(phase='recon', step=3, score=0.5)])
    assert B.best_val(r) == 0.6


def test_ensemble_teacher_returns_log_probabilities():
    B = _bench('predictors_long')
    torch.manual_seed(0); ms = [nn.Linear(4, 3), nn.Linear(4, 3)]; x = torch.randn(5, 4)
    out = B.Ensemble(ms)(x)
    torch.testing.assert_close(out.exp(), (ms[0](x).softmax(1) + ms[1](x).softmax(1)) / 2)


def test_long_budget_verdicts_follow_the_json(tmp_path):
    B = _bench('predictors_long')
    c = dict(B.PROFILES['full'], hidden=[140], seeds=[0, 1])
    run = lambda acc, **kw: dict(metrics={'phase': dict(test_acc=acc, val_acc=acc)}, **kw)
    F = {f'{m}_h140_s{s}': run(a + 0.01 * s) for m, a in (('recon', 0.88), ('decoupled', 0.93)) for s in (0, 1)}
    V = B.verdicts(F, c, tmp_path)
    assert '**reproduces** in direction (+5.00 points, n = 2 / 2)' in V[0]
    assert '**not tested** (0 finished faithful NeRN run(s)' in V[1] and 'Table 3' in V[-1] and '**not tested**' in V[-1]
    F.update({f'nern_h140_s{s}': run(0.95) for s in (0, 1)})            # NeRN above decoupled: the order does not hold
    assert '**does not reproduce** (test means recon-only 88.50, NeRN 95.00, decoupled 93.50 %, n = 2 / 2 / 2)' in B.verdicts(F, c, tmp_path)[1]
    curve = lambda a, b: [dict(step=8000, score=a), dict(step=10000, score=b)]   # a NeRN still rising at the end of the budget
    F.update({f'nern_h140_s{s}': run(0.60, history=curve(0.40, 0.60)) for s in (0, 1)})
    assert "NeRN's validation still rose +20.0 points over its last 2,000 steps" in B.verdicts(F, c, tmp_path)[1]
    noise = lambda p1, p2: dict(metrics=dict(phase1=dict(test_acc=0.88, val_acc=p1), phase2=dict(test_acc=0.885, val_acc=p2)), history=[])
    F.update(noise150_h140_s0=noise(0.88, 0.89), noise150_h140_s1=noise(0.88, 0.87))
    assert any('(150 steps): **mixed** (noise phase 2 beat phase 1 on validation in 1 of 2 seeds' in v for v in B.verdicts(F, c, tmp_path))


def test_unfinished_progressive_rounds_render_from_a_committed_snapshot(tmp_path):
    B = _bench('predictors_long'); c = B.PROFILES['full']; k = f"t1_progressive_h{c['t1_hidden']}"
    live = tmp_path / '_resume' / k / 'rounds.json'; live.parent.mkdir(parents=True)
    B.write_json(live, dict(key=dict(hidden=300, seeds=[0, 1]), rounds={'0': dict(round=0), '1': dict(round=1)}))
    got = B.t1_so_far(tmp_path, c, {})
    assert got[k]['partial'] and [r['round'] for r in got[k]['rounds']] == [0, 1] and got[k]['config']['seeds'] == [0, 1]
    live.unlink(); assert B.t1_so_far(tmp_path, c, {})[k]['rounds'] == got[k]['rounds']   # a clean clone: the snapshot alone
    assert B.t1_so_far(tmp_path, c, {k: {}}) == {} and not (tmp_path / f'{k}.partial.json').exists()   # the finished run replaces it

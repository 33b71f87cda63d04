"""SANE in miniature on the zoos of bench/zoos.py: linear probing (Table 1), sampling + fine-tuning (Table 3),
transfer to the wider zoo (Tables 13/15), ablations (alignment, haloing, BN conditioning, inference window).

    python bench/sane.py --n-models 100          # full profile on the first 100 finished models of the main zoo
    python bench/sane.py --quick                 # minutes: the --quick zoos of bench/zoos.py, tiny SANE
    python bench/sane.py --render-only           # rebuild bench/results/sane.md from bench/results/sane/*.json

Every run is cached as one JSON in <out>/sane/ (rerun to resume); SANE checkpoints go to git-ignored
bench/results/_zoo_sane_runs/. CPU, one thread unless --threads.
"""
import copy, json, math, statistics, time
from pathlib import Path

import numpy as np
import torch

from _common import bench_parser, parse, RunCache, write_results, md_table, mean_sd, sd_note, ROOT
from weightnb.zoo import Zoo
from weightnb.rebasin import align_zoo
from weightnb.models import zoo_cnn_small, zoo_cnn_large
from weightnb.data import dataloaders
from weightnb.tokens import tokenize, Standardizer
from weightnb.probe import flat_weights, layer_stats, linear_probe, zoo_checkpoints
from weightnb.sane import SANEConfig, train_sane, load_sane, embed, sane_features, decode_tokens, masked_mse
from weightnb.sampling import sample_models, finetune_curve
from weightnb.train import evaluate

RES = ROOT / 'bench' / 'results'
RUNS = RES / '_zoo_sane_runs'
TARGETS = ('test_acc', 'epoch', 'ggap')
NEAR = 'subsample, one prompt per sample, bandwidth x 0.1 (not the paper)'
HALO_WINDOW = 16     # inference window of the halo ablation: shorter than a model, so halos matter

def profile(quick:bool, epochs:int|None=None)->dict:
    if quick: return dict(zoo='_zoo_sane_quick', large='_zoo_sane_quick_large', n_samples=3, n_candidates=6, boot_rounds=2,
                          finetune=(0, 1), n_prompts=6,
                          cfg=dict(token_size=64, d_model=32, n_heads=2, n_layers=1, latent_dim=8, window=16, halo=4, epochs=4,
                                   batch_size=16, lr=2e-3, n_perm=8, windows_per_model=1))
    return dict(zoo='_zoo_sane_fmnist', large='_zoo_sane_fmnist_large', n_samples=10, n_candidates=100, boot_rounds=3,
                finetune=(0, 1, 5), n_prompts=30,
                cfg=dict(token_size=289, d_model=128, n_heads=4, n_layers=2, latent_dim=128, window=48, halo=4, epochs=epochs or 12,
                         batch_size=16, lr=1e-3, wd=1e-4, gamma=0.05, tau=0.1, n_perm=64, windows_per_model=1))

def snapshot(name:str, n:int|None)->tuple[Path, Path, list[str]]:
    "The first n finished members of zoo `name`, aligned to its first member into a folder of their own."
    src = RES / name; z = Zoo(src); names = z.names[:n] if n else z.names
    if n and len(names) < n: raise SystemExit(f'{name} has only {len(names)} finished models; wait for bench/zoos.py or lower --n-models')
    full = RES / f'{name}_aligned'                      # written by bench/zoos.py once the zoo is complete
    if len(names) == len(z) and (full / 'align.json').exists() and len(Zoo(full)) == len(names): return src, full, names
    dst = RES / f'{name}_snap{len(names)}_aligned'
    if not (dst / 'index.json').exists() or len(Zoo(dst)) != len(names):
        import shutil
        if dst.exists(): shutil.rmtree(dst)
        t0 = time.perf_counter(); align_zoo(Zoo(src, names), names[0], dst, progress=False)
        (dst / 'align.json').write_text(json.dumps(dict(seconds=time.perf_counter() - t0, reference=names[0])))
    return src, dst, names

def split_sds(zoo_dir:Path, aligned:Path, split:str, epochs=None):
    "State dicts + frame of one split, from the aligned snapshot or (same members, same split) from the raw zoo."
    sds, df = zoo_checkpoints(Zoo(aligned), split, epochs)
    if zoo_dir == aligned: return sds, df
    from weightnb.core import load_weights
    raw = Zoo(zoo_dir)
    return [load_weights(raw[m].checkpoint_path(int(e))) for m, e in zip(df.model, df.epoch)], df

def train_run(key:str, src:Path, aligned:Path, cfg:SANEConfig, use_aligned:bool=True):
    out = RUNS / key
    data = {s: split_sds(aligned if use_aligned else src, aligned, s)[0] for s in ('train', 'val')}
    t0 = time.perf_counter()
    sane, hist = train_sane(data, cfg, out, model=zoo_cnn_small(), progress=False)
    return sane, hist, time.perf_counter() - t0

def probe_rows(sane, src:Path, aligned:Path, use_aligned:bool=True)->dict:
    data = {s: split_sds(aligned if use_aligned else src, aligned, s) for s in ('train', 'val', 'test')}
    X = {s: sane_features(sane, d[0]) for s, d in data.items()}
    return {t: linear_probe(X['train'], data['train'][1][t], X['val'], data['val'][1][t], X['test'], data['test'][1][t])['r2'] for t in TARGETS}

def main():
    ap = bench_parser(__doc__.split('\n')[0], 'sane', seeds=(0, 1, 2))
    ap.add_argument('--n-models', type=int, default=None, help='use the first N finished models of the main zoo (default: all)')
    ap.add_argument('--epochs', type=int, default=None, help='SANE training epochs of the full profile (default 12)')
    ap.add_argument('--part', default='all', choices=('all', 'table1', 'unaligned', 'rest', 'memory', 'partial', 'probe_extra', 'recon', 'kde_diag', 'diag'),
                    help="run only Table 1's SANE seeds, only the unaligned ablation, or everything but it (parallel processes)")
    a = parse(ap); P = profile(a.quick, a.epochs)
    cache = RunCache(a.out / 'sane', a.device, a.command)
    if not a.render_only: run_all(a, P, cache)
    render(a, P, cache)

MEMORY_SCRIPT = '''
import resource, sys, torch; torch.set_num_threads(1)
from weightnb.models import zoo_cnn_small, resnet20
from weightnb.rebasin import permutation_spec
from weightnb.sane import SANEConfig, token_set, build_sane, sane_step, permutation_gathers
arch, window = sys.argv[1], int(sys.argv[2])
make = (lambda: zoo_cnn_small()) if arch == 'zoo_cnn_small' else (lambda: resnet20(in_chans=1))
torch.manual_seed(0); sds = [make().state_dict() for _ in range(4)]
cfg = SANEConfig(token_size=64, d_model=128, n_heads=4, n_layers=2, latent_dim=32, window=window, batch_size=64,
                 max_positions=[8192, 64, 1024], n_perm=4)
ts = token_set(sds, 64); g = permutation_gathers(ts.template, permutation_spec(make()), 4, torch.Generator().manual_seed(0))
sane = build_sane(cfg); opt = torch.optim.AdamW(sane.parameters()); gen = torch.Generator().manual_seed(0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for _ in range(3):
    loss, _ = sane_step(sane, ts, torch.arange(4).repeat(16), cfg, g, gen, torch.device('cpu')); opt.zero_grad(); loss.backward(); opt.step()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(ts.template), before, after)
'''

def memory()->dict:
    "Peak resident memory of SANE training steps (batch 64) for a zoo-CNN window and a ResNet-20 window of the same size."
    import subprocess, sys
    out = {}
    for arch in ('zoo_cnn_small', 'resnet20'):
        for w in (16, 64):
            r = subprocess.run([sys.executable, '-c', MEMORY_SCRIPT, arch, str(w)], capture_output=True, text=True, check=True)
            n, before, after = map(int, r.stdout.split()[-3:])
            out[f'{arch}/{w}'] = dict(n_tokens=n, rss_before_kib=before, rss_after_kib=after)
    return out

def diagnostics(sane, aligned, spec, P)->dict:
    "Round trip, reconstruction error by layer and epoch against a linear code of the same width, raw-weight mixing, bandwidth."
    from weightnb.tokens import detokenize
    from weightnb.sane import reconstruct
    from weightnb.sampling import kde_sample, decode_models
    st, d_t, k = sane.standardizer, sane.token_size, sane.latent_dim; out = {}
    sds, df = split_sds(aligned, aligned, 'test'); t = tokenize(sds[0], d_t); mask = t.mask
    back = [detokenize(st.inverse_transform(st.transform(tokenize(sd, d_t)))) for sd in sds]
    out['roundtrip_plain_bit_exact'] = all(torch.equal(detokenize(tokenize(sd, d_t))[n], sd[n]) for sd in sds for n in sd)
    out['roundtrip_standardised_max_abs'] = max((b[n] - sd[n]).abs().max().item() for b, sd in zip(back, sds) for n in sd)
    x = torch.stack([st.transform(tokenize(sd, d_t)).tokens for sd in sds]).float()
    rec = decode_tokens(sane, embed(sane, sds), t.positions); err = (rec - x) ** 2 * mask
    df = df.assign(mse=(err.sum((1, 2)) / mask.sum()).numpy())
    out['mse_by_epoch'] = {int(e): float(v) for e, v in df.groupby('epoch').mse.mean().items()}
    xt = torch.stack([st.transform(tokenize(sd, d_t)).tokens for sd in split_sds(aligned, aligned, 'train')[0]]).float()
    layers = {}
    for L in t.layers:                                    # per-layer PCA with latent_dim components: the best linear per-token code
        sl = slice(L.start, L.start + L.n_tokens); m = mask[sl].repeat(len(x), 1)
        A, B = xt[:, sl].reshape(-1, d_t), x[:, sl].reshape(-1, d_t); mu = A.mean(0)
        V = torch.linalg.svd(A - mu, full_matrices=False).Vh[:k]; Bh = (B - mu) @ V.T @ V + mu
        layers[L.name] = dict(real_per_token=int(L.row_len if L.per_row == 1 else d_t), n_tokens=L.n_tokens, entries=int(mask[sl].sum()),
                              sane=float(err[:, sl].sum() / m.sum()), pca=float((((Bh - B) ** 2) * m).sum() / m.sum()))
    out['mse_by_layer'] = layers
    out['pca_total'] = sum(v['pca'] * v['entries'] for v in layers.values()) / sum(v['entries'] for v in layers.values())
    dls = dataloaders(spec.dataset, batch_size=500, n_train=spec.n_train, n_val=spec.n_val, n_test=spec.n_test, seed=spec.seed)
    last, dl_ = split_sds(aligned, aligned, 'test', [spec.epochs]); z_ = Zoo(aligned); rows = []
    for sd, name in zip(last, dl_.model):                 # every held-out model at its last epoch, with its own activation
        m = z_[name].model(); m.load_state_dict(sd); a0 = evaluate(m, dls.test)['acc']
        m.load_state_dict(reconstruct(sane, embed(sane, sd), tokenize(sd, d_t))); rows.append([a0, evaluate(m, dls.test)['acc']])
    out['recon_acc_test_all'] = rows
    tr, tdf = split_sds(aligned, aligned, 'train', [spec.epochs]); relu = [i for i, act in enumerate(tdf.activation) if act == 'relu']
    P_ = [tokenize(tr[i], d_t) for i in relu]; T = torch.stack([q.tokens for q in P_]); E, N, _ = T.shape
    g = torch.Generator().manual_seed(0); lid = P_[0].positions[:, 1]; nL = int(lid.max()) + 1
    def acc(tok):
        m = zoo_cnn_small(activation='relu'); m.load_state_dict(detokenize(P_[0].with_tokens(tok))); return evaluate(m, dls.test)['acc']
    out['raw_mixing'] = {'prompts': [float(tdf.test_acc[i]) for i in relu],
                         'per token': [acc(T[torch.randint(0, E, (N,), generator=g), torch.arange(N)]) for _ in range(10)],
                         'per layer': [acc(T[torch.randint(0, E, (nL,), generator=g)[lid], torch.arange(N)]) for _ in range(10)],
                         'midpoint of two': [acc((T[i] + T[(i + 1) % E]) / 2) for i in range(min(E, 10))]}
    zp = embed(sane, [tr[i] for i in relu]); bw = {}
    for per_token in (True, False):
        for scale in (0., 0.1, 0.3, 1.):
            ms = decode_models(sane, kde_sample(zp, P['n_samples'], None, torch.Generator().manual_seed(0), per_token, scale), zoo_cnn_small(activation='relu'))
            bw[f'{"per token" if per_token else "one prompt per sample"}, bandwidth x {scale:g}'] = [evaluate(m, dls.test)['acc'] for m in ms]
    out['bandwidth'] = bw
    return out

def run_all(a, P, cache):
    if a.part == 'memory': cache.run('memory', memory); return
    if a.part == 'probe_extra':  # other read-outs of the seed-0 SANE (Appendix D's 'full sequence' comparison)
        src, aligned, names = snapshot(P['zoo'], a.n_models)
        sane = load_sane(RUNS / f'sane_{"quick_" if a.quick else ""}n{len(names)}_s{a.seeds[0]}' / 'sane_best.safetensors')
        def extra():
            data = {s_: split_sds(aligned, aligned, s_) for s_ in ('train', 'val', 'test')}
            feats = {'SANE mean + per-layer means and spreads (agg=layers)': {k: sane_features(sane, d[0], agg='layers') for k, d in data.items()}}
            if len(data['train'][0]) * sane.latent_dim < 2e5:   # the flattened latents: cheap only on small zoos (ridge on N * d_z columns)
                Z = {s_: embed(sane, d[0]) for s_, d in data.items()}
                feats['SANE all token latents (flattened)'] = {k: z.flatten(1).numpy() for k, z in Z.items()}
            return {name: {t: linear_probe(X['train'], data['train'][1][t], X['val'], data['val'][1][t], X['test'], data['test'][1][t])['r2']
                           for t in TARGETS} for name, X in feats.items()}
        cache.run(f'probe_extra_s{a.seeds[0]}', extra); return
    if a.part == 'recon':        # how much accuracy survives encode -> decode (bounds what sampling can reach)
        src, aligned, names = snapshot(P['zoo'], a.n_models); spec = Zoo(src).spec
        sane = load_sane(RUNS / f'sane_{"quick_" if a.quick else ""}n{len(names)}_s{a.seeds[0]}' / 'sane_best.safetensors')
        def recon():
            from weightnb.sane import reconstruct
            dls = dataloaders(spec.dataset, batch_size=64, n_train=spec.n_train, n_val=spec.n_val, n_test=spec.n_test, seed=spec.seed)
            out = {}
            for split in ('train', 'test'):
                sds, df = split_sds(aligned, aligned, split, [spec.epochs]); keep = [i for i, act in enumerate(df.activation) if act == 'relu']
                orig, rec = [], []
                for i in keep:
                    m = zoo_cnn_small(activation='relu'); m.load_state_dict(sds[i]); orig.append(evaluate(m, dls.test)['acc'])
                    t = tokenize(sds[i], sane.token_size); m.load_state_dict(reconstruct(sane, embed(sane, sds[i]), t)); rec.append(evaluate(m, dls.test)['acc'])
                out[split] = dict(original=orig, reconstructed=rec)
            return out
        cache.run(f'recon_s{a.seeds[0]}', recon); return
    if a.part == 'kde_diag':     # why KDE samples fail here: per-token mixing vs bandwidth
        src, aligned, names = snapshot(P['zoo'], a.n_models); spec = Zoo(src).spec
        sane = load_sane(RUNS / f'sane_{"quick_" if a.quick else ""}n{len(names)}_s{a.seeds[0]}' / 'sane_best.safetensors')
        def diag():
            dls = dataloaders(spec.dataset, batch_size=64, n_train=spec.n_train, n_val=spec.n_val, n_test=spec.n_test, seed=spec.seed)
            sds, df = split_sds(aligned, aligned, 'train', [spec.epochs]); keep = [i for i, act in enumerate(df.activation) if act == 'relu']
            rng = np.random.default_rng(0); pick = sorted(rng.choice(keep, min(P['n_prompts'], len(keep)), replace=False).tolist())
            prompts = [sds[i] for i in pick]; out = {}
            for name, kw in [('per token, Scott bandwidth (the paper)', dict(per_token=True)), ('per token, bandwidth 0', dict(per_token=True, bandwidth=0.)),
                             ('one prompt per sample, Scott bandwidth', dict(per_token=False)), ('one prompt per sample, bandwidth 0', dict(per_token=False, bandwidth=0.))]:
                ms = sample_models(sane, prompts, P['n_samples'], zoo_cnn_small(activation='relu'), 'kde', seed=0, **kw)
                out[name] = [evaluate(m, dls.test)['acc'] for m in ms]
            ms = sample_models(sane, prompts, P['n_samples'], zoo_cnn_small(activation='relu'), 'subsample', metric_dl=dls.val,
                               n_candidates=P['n_candidates'], seed=0, per_token=False)
            out['subsample, one prompt per sample, Scott bandwidth'] = [evaluate(m, dls.test)['acc'] for m in ms]
            return out
        cache.run(f'kde_diag_s{a.seeds[0]}', diag); return
    if a.part == 'diag':         # where the reconstruction error comes from, and whether per-token mixing can work in this zoo at all
        src, aligned, names = snapshot(P['zoo'], a.n_models); spec = Zoo(src).spec
        sane = load_sane(RUNS / f'sane_{"quick_" if a.quick else ""}n{len(names)}_s{a.seeds[0]}' / 'sane_best.safetensors')
        cache.run(f'diag_s{a.seeds[0]}', lambda: diagnostics(sane, aligned, spec, P)); return
    if a.part == 'partial':     # record the histories of runs stopped for time (resume files under RUNS)
        n = len(Zoo(RES / P['zoo']).names[:a.n_models]) if a.n_models else len(Zoo(RES / P['zoo']))
        hist = {d.name: json.loads((d / 'history.json').read_text()) for d in sorted(RUNS.glob(f'sane_n{n}_s*')) if (d / 'history.json').exists()}
        cache.run('partial_runs', lambda: dict(histories=hist)); return
    src, aligned, names = snapshot(P['zoo'], a.n_models)
    spec = Zoo(src).spec
    cache.run('zoo', lambda: dict(n_models=len(names), zoo=P['zoo'], aligned=aligned.name,
                                  align=json.loads((aligned / 'align.json').read_text()),
                                  splits={s: len(Zoo(aligned).split(s)) for s in ('train', 'val', 'test')}), config=dict(n=len(names)))
    base = SANEConfig(**P['cfg'])
    sanes = {}
    for seed in (a.seeds if a.part in ('all', 'table1', 'rest') else []):
        cfg = SANEConfig(**{**P['cfg'], 'seed': seed}); key = f'sane_{"quick_" if a.quick else ""}n{len(names)}_s{seed}'
        def one(cfg=cfg, key=key):
            sane, hist, secs = train_run(key, src, aligned, cfg)
            return dict(config=cfg.__dict__, seconds=secs, history=hist, best_val=min(h['val_loss'] for h in hist),
                        r2=probe_rows(sane, src, aligned))
        cache.run(f'table1_{key}', one, config=cfg.__dict__)
        sanes[seed] = load_sane(RUNS / key / 'sane_best.safetensors')
    # Table 1 baselines (no seeds: deterministic)
    def baselines():
        out = {}
        for fname, fn, d in [('W (raw)', flat_weights, src), ('W (aligned)', flat_weights, aligned), ('s(W)', layer_stats, src)]:
            data = {s: split_sds(d, aligned, s) for s in ('train', 'val', 'test')}
            X = {s: fn(v[0]) for s, v in data.items()}
            out[fname] = {t: linear_probe(X['train'], data['train'][1][t], X['val'], data['val'][1][t], X['test'], data['test'][1][t])['r2'] for t in TARGETS}
        return out
    cache.run('table1_baselines', baselines, config=dict(n=len(names)))
    if a.part == 'table1': return
    sane = sanes.get(a.seeds[0])
    # ablation: no alignment
    cfg0 = SANEConfig(**{**P['cfg'], 'seed': a.seeds[0]}); key_u = f'sane_{"quick_" if a.quick else ""}n{len(names)}_s{a.seeds[0]}_unaligned'
    def unaligned():
        s, hist, secs = train_run(key_u, src, aligned, cfg0, use_aligned=False)
        return dict(seconds=secs, best_val=min(h['val_loss'] for h in hist), best_val_rec=min(h['val_rec'] for h in hist),
                    r2=probe_rows(s, src, aligned, use_aligned=False))
    if a.part in ('all', 'unaligned'): cache.run('ablation_unaligned', unaligned, config=cfg0.__dict__)
    if a.part == 'unaligned': return
    # inference window vs training window: reconstruction error on the test split
    def windows():
        sds, _ = split_sds(aligned, aligned, 'test'); N = len(tokenize(sds[0], base.token_size)); out = {}
        x = torch.stack([sane.standardizer.transform(tokenize(sd, base.token_size)).tokens for sd in sds])
        t0 = tokenize(sds[0], base.token_size)
        for w in sorted({w for w in (4, 8, 16, 24, base.window, 2 * base.window, N) if w <= N}):
            for h in ((0, base.halo) if w > 2 * base.halo else (0,)):
                z = embed(sane, sds, window=w, halo=h); rec = decode_tokens(sane, z, t0.positions, window=w, halo=h)
                out[f'{w}/{h}'] = masked_mse(rec, x, t0.mask.expand_as(x)).item()
        return dict(n_tokens=N, rec_mse=out)
    cache.run('ablation_window', windows, config=dict(cfg=base.__dict__))
    # Table 3: sampling + fine-tuning on the zoo's task
    dls = dataloaders(spec.dataset, batch_size=64, n_train=spec.n_train, n_val=spec.n_val, n_test=spec.n_test, seed=spec.seed)
    tr_sds, tr_df = split_sds(aligned, aligned, 'train', [spec.epochs])
    relu = [i for i, act in enumerate(tr_df.activation) if act == 'relu']
    rng = np.random.default_rng(0); pick = sorted(rng.choice(relu, min(P['n_prompts'], len(relu)), replace=False).tolist())
    prompts = [tr_sds[i] for i in pick]; prompt_acc = [float(tr_df.test_acc[i]) for i in pick]
    tmpl = zoo_cnn_small(activation='relu')
    def samples(method, sane=sane, halo=None, key=None, window=None):
        kw = dict(metric_dl=dls.val, n_candidates=P['n_candidates'], iterations=P['boot_rounds'], halo=halo, window=window, seed=0)
        ms = sample_models(sane, prompts, P['n_samples'], tmpl, method, **kw)
        return ms
    def table3():
        out = dict(prompt_acc=prompt_acc, n_prompts=len(prompts), prompt_acc_measured=[])
        for p in prompts:
            m = copy.deepcopy(tmpl); m.load_state_dict(p); out['prompt_acc_measured'].append(evaluate(m, dls.test)['acc'])
        torch.manual_seed(0); scratch = []
        for i in range(P['n_samples']):
            scratch.append(zoo_cnn_small(activation='relu'))
        rows = {'random init': scratch}
        for method in ('kde', 'subsample', 'bootstrap', 'gauss'):
            t0 = time.perf_counter(); rows[method] = samples(method); out[f'{method}_seconds'] = time.perf_counter() - t0
        rows[NEAR] = sample_models(sane, prompts, P['n_samples'], tmpl, 'subsample', metric_dl=dls.val, n_candidates=P['n_candidates'],
                                   per_token=False, bandwidth_scale=0.1, seed=0)           # not the paper's: whole prompts, small bandwidth
        rows['prompts (fine-tuned)'] = []
        for p in prompts[:P['n_samples']]:
            m = copy.deepcopy(tmpl); m.load_state_dict(p); rows['prompts (fine-tuned)'].append(m)
        for k, ms in rows.items(): out[k] = finetune_curve(ms, dls.train, dls.test, P['finetune'], 'adam', 1e-3).tolist()
        return out
    cache.run('table3', table3, config=dict(cfg=base.__dict__, n=len(names), P={k: v for k, v in P.items() if k != 'cfg'}))
    # ablations on sampling: halo on/off; alignment on/off (zero-shot subsampled)
    def sampling_ablation():
        out = {}
        for name, kw in [('kde halo 0', dict(method='kde', halo=0)), ('kde halo 4', dict(method='kde', halo=base.halo)),
                         ('subsample halo 0', dict(method='subsample', halo=0)), ('subsample halo 4', dict(method='subsample', halo=base.halo))]:
            ms = samples(kw['method'], halo=kw['halo'], window=HALO_WINDOW); out[name] = [evaluate(m, dls.test)['acc'] for m in ms]
        return dict(out, window=HALO_WINDOW)
    cache.run('ablation_halo', sampling_ablation, config=dict(cfg=base.__dict__, n=len(names)))
    # transfer to the wider zoo (different architecture): few prompts, SANE trained on the small zoo only
    large_dir = RES / P['large']
    if (large_dir / 'index.json').exists() and len(Zoo(large_dir)) >= 6:
        def transfer():
            lz = Zoo(large_dir); lspec = lz.spec; names_l = lz.names
            laligned = RES / f'{P["large"]}_snap{len(names_l)}_aligned'
            if not (laligned / 'index.json').exists() or len(Zoo(laligned)) != len(names_l):
                import shutil
                if laligned.exists(): shutil.rmtree(laligned)
                align_zoo(lz, names_l[0], laligned, progress=False)
            sds, df = zoo_checkpoints(Zoo(laligned), 'train', [lspec.epochs])
            relu_l = [i for i, act in enumerate(df.activation) if act == 'relu'][:5] or list(range(min(5, len(sds))))
            lp = [sds[i] for i in relu_l]; lt = zoo_cnn_large(in_chans=1, img_size=28, activation='relu')
            st = Standardizer().fit([tokenize(sd, base.token_size) for sd in lp])
            ldls = dataloaders(lspec.dataset, batch_size=64, n_train=lspec.n_train, n_val=lspec.n_val, n_test=lspec.n_test, seed=lspec.seed)
            res = dict(n_prompts=len(lp), prompt_acc=[float(df.test_acc[i]) for i in relu_l], n_large=len(names_l),
                       prompt_activations=[df.activation[i] for i in relu_l])
            torch.manual_seed(0)
            rows = {'random init': [zoo_cnn_large(in_chans=1, img_size=28, activation='relu') for _ in range(P['n_samples'])],
                    'prompts (fine-tuned)': [copy.deepcopy(lt) for _ in lp]}
            for m, sd in zip(rows['prompts (fine-tuned)'], lp): m.load_state_dict(sd)
            for method in ('kde', 'subsample'):
                rows[method] = sample_models(sane, lp, P['n_samples'], lt, method, metric_dl=ldls.val, n_candidates=P['n_candidates'],
                                             standardizer=st, seed=0)
            for k, ms in rows.items(): res[k] = finetune_curve(ms, ldls.train, ldls.test, P['finetune'], 'adam', 1e-3).tolist()
            return res
        cache.run('transfer', transfer, config=dict(cfg=base.__dict__, n=len(names)))
    # tokenizer speed (ResNet-18, the budget is 1 s)
    def speed():
        from weightnb.models import resnet18
        sd = resnet18().state_dict(); tokenize(sd, 288); ts = []
        for _ in range(5): t0 = time.perf_counter(); t = tokenize(sd, 288); ts.append(time.perf_counter() - t0)
        return dict(seconds=sorted(ts), n_tokens=len(t), n_params=sum(v.numel() for v in sd.values()))
    cache.run('tokenize_speed', speed)

def findings(R:dict, seeds:list)->list[str]:
    "Which of the paper's claims reproduce at this scale, stated from the numbers above."
    out = ['## Which claims reproduce here', '', 'Verdicts are computed from the numbers above: a difference counts only when it exceeds '
           'twice the combined standard error of the two samples (lists of models), or 5 % relative (single values); else it is "within noise".', '']
    yes = lambda c: '**reproduces**' if c else '**does not reproduce**'
    mean = lambda xs: sum(xs) / len(xs)
    def gt(a, b):
        "a > b beyond noise? True / False / None (within noise)."
        if isinstance(a, list):
            se = math.sqrt(sum((statistics.stdev(x) ** 2 / len(x)) if len(x) > 1 else 0 for x in (a, b)))
            d = mean(a) - mean(b); tol = 2 * se
        else: d, tol = a - b, 0.05 * max(abs(a), abs(b))
        return None if abs(d) <= tol else d > 0
    verdict = lambda c: 'within noise' if c is None else yes(c)
    if seeds and 'table1_baselines' in R:
        b = R['table1_baselines']
        for t in TARGETS:
            sv = mean([R[k]['r2'][t] for k in seeds])
            out.append(f'- Probing {t}: SANE {sv:.3f} vs s(W) {b["s(W)"][t]:.3f} vs W {b["W (raw)"][t]:.3f}. Paper: SANE comparable to s(W) '
                       f'and well above W: {yes(sv >= b["s(W)"][t] - 0.05 and sv > b["W (raw)"][t] + 0.1)}.')
    if 'table3' in R:
        t = R['table3']; e0 = lambda k: mean([r[0] for r in t[k]]); pm = mean(t['prompt_acc'])
        out.append(f'- Zero-shot sampling far above random init (Table 3, epoch 0): subsampled {100*e0("subsample"):.1f} % vs random '
                   f'{100*e0("random init"):.1f} %: {yes(e0("subsample") > e0("random init") + 0.2)} (the paper: +60-75 points); goal >= 0.8 x prompt mean '
                   f'({80*pm:.1f} %): {yes(e0("subsample") >= 0.8 * pm)}.')
        out.append(f'- Subsampling beats plain KDE sampling at epoch 0: {100*e0("subsample"):.1f} vs {100*e0("kde"):.1f} %: {verdict(gt([r[0] for r in t["subsample"]], [r[0] for r in t["kde"]]))}.')
        if len(t['random init'][0]) > 1:
            last = lambda k: mean([r[-1] for r in t[k]])
            out.append(f'- Sampled models stay ahead of training from scratch after fine-tuning (last column): subsampled '
                       f'{100*last("subsample"):.1f} % vs scratch {100*last("random init"):.1f} %: {verdict(gt([r[-1] for r in t["subsample"]], [r[-1] for r in t["random init"]]))}.')
        if NEAR in t:
            out.append(f'- Not a claim of the paper: subsampling latents of *whole* prompts (one prompt per sample, 0.1x bandwidth) gives '
                       f'{100*e0(NEAR):.1f} % zero-shot (the goal of 0.8 x prompt mean is {"met" if e0(NEAR) >= 0.8 * pm else "not met"} this way) '
                       f'and {100*mean([r[-1] for r in t[NEAR]]):.1f} % after the last fine-tuning epoch vs {100*mean([r[-1] for r in t["random init"]]):.1f} % from scratch: '
                       'the decoder does produce working models; what fails is the per-token mixing of different prompts (see the diagnostics).')
        out.append(f'- Bootstrapping improves on subsampling at epoch 0: {100*e0("bootstrap"):.1f} vs {100*e0("subsample"):.1f} %: {verdict(gt([r[0] for r in t["bootstrap"]], [r[0] for r in t["subsample"]]))}.')
    if 'ablation_unaligned' in R and seeds:
        a_, u = min(h['val_rec'] for h in R[seeds[0]]['history']), R['ablation_unaligned']['best_val_rec']
        out.append(f'- Alignment makes reconstruction easier (Table 6): validation MSE {a_:.4f} aligned vs {u:.4f} not aligned: {verdict(gt(u, a_))} (one seed each).')
    elif 'partial_runs' in R:
        H = R['partial_runs']['histories']; k = min(len(v) for v in H.values())
        al = [v[k - 1]['val_rec'] for n, v in H.items() if 'unaligned' not in n]; un = [v[k - 1]['val_rec'] for n, v in H.items() if 'unaligned' in n]
        if al and un:
            out.append(f'- Alignment makes reconstruction easier (Table 6): only {k} epochs of the unaligned run finished; at epoch {k} its '
                       f'validation MSE is {un[0]:.4f} vs {min(al):.4f}-{max(al):.4f} for the aligned seeds: within noise (the seed spread '
                       'is larger than the gap), so not shown either way.')
    if 'ablation_halo' in R:
        h = R['ablation_halo']; m = lambda k: mean(h[k])
        out.append(f'- Haloing improves zero-shot samples (Table 7): KDE {100*m("kde halo 4"):.1f} % with halo vs {100*m("kde halo 0"):.1f} % '
                   f'without: {verdict(gt(h["kde halo 4"], h["kde halo 0"]))} (a model here has only {R.get("ablation_window", {}).get("n_tokens", "a few dozen")} tokens, so most windows see much of it either way). '
                   'BN conditioning: not testable (no BatchNorm in the zoo CNN).')
    if 'ablation_window' in R:
        w = R['ablation_window']['rec_mse']; best = min(w, key=w.get); N = R['ablation_window']['n_tokens']
        tw_n = R[seeds[0]]['config']['window'] if seeds else 16; tw = w.get(f'{tw_n}/0', w.get(f'{N}/0'))
        full = w[max(w, key=lambda k: int(k.split('/')[0]))]
        if tw_n < N:
            out.append(f'- Inference windows other than the training window reconstruct worse (Figure 6): best window/halo {best} '
                       f'(MSE {w[best]:.4f}), training window {tw:.4f}, whole model in one window {full:.4f}: {verdict(gt(full, tw))} for longer windows '
                       f'(the paper: 2x worse at 50k tokens; a model here has only {N}); much shorter windows are clearly worse '
                       f'(window 4: {w.get("4/0", float("nan")):.4f}).')
        else:
            out.append(f'- Inference windows other than the training window reconstruct worse (Figure 6): here the training window covers the '
                       f'whole model ({N} tokens), so only shorter inference windows can be tested: MSE {tw:.4f} at the training window vs '
                       + ', '.join(f'{w[k]:.4f} at {k.split("/")[0]}' + (f' (halo {k.split("/")[1]})' if k.split('/')[1] != '0' else '')
                                   for k in sorted(w, key=lambda k: (int(k.split('/')[0]), k)) if int(k.split('/')[0]) < N)
                       + f': shorter windows are {"worse" if all(v > 1.05 * tw for k, v in w.items() if int(k.split("/")[0]) < N) else "not all worse"}, '
                       'as in the paper; longer-than-training windows (the paper\'s 2x at 50k tokens) cannot occur on a 48-token model.')
    if 'transfer' in R:
        t = R['transfer']; e0 = lambda k: mean([r[0] for r in t[k]])
        out.append(f'- Transfer to a new architecture from few prompts: subsampled {100*e0("subsample"):.1f} % vs random init '
                   f'{100*e0("random init"):.1f} % at epoch 0: {verdict(gt([r[0] for r in t["subsample"]], [r[0] for r in t["random init"]]))}'
                   + (f'; after the last fine-tuning epoch {100*mean([r[-1] for r in t["subsample"]]):.1f} % vs {100*mean([r[-1] for r in t["random init"]]):.1f} %: '
                      f'{verdict(gt([r[-1] for r in t["subsample"]], [r[-1] for r in t["random init"]]))} (the paper: sampled models stay ahead).'
                      if len(t['random init'][0]) > 1 else '.'))
    return out + ['']

def diag_lines(d:dict, seed:str, cfg:dict)->list[str]:
    "The diagnostics section (part 'diag')."
    L = ['## Where the reconstruction error comes from (diagnostics)', '',
         f'Seed-{seed} SANE, held-out (test) models. Round trip: `detokenize(tokenize(W))` is bit-identical for every checkpoint: '
         f'{d["roundtrip_plain_bit_exact"]}; through standardise -> inverse the largest error is {d["roundtrip_standardised_max_abs"]:.1e} '
         '(float32 rounding), so the de-standardisation path is not where accuracy is lost.', '',
         f'Reconstruction MSE per layer against the best *linear* per-token code of the same width (PCA with latent_dim = {cfg["latent_dim"]} '
         'components per layer, fitted on the training tokens): when a token has no more real entries than the latent has dimensions, '
         'the code can be lossless; below that, SANE is compared with what a linear map of the same width keeps.', '',
         '| layer | real entries per token | tokens | SANE MSE | PCA MSE |', '|---|---|---|---|---|']
    L += [f'| {n} | {v["real_per_token"]} | {v["n_tokens"]} | {v["sane"]:.4f} | {v["pca"]:.4f} |' for n, v in d['mse_by_layer'].items()]
    e = d['mse_by_epoch']; ks = sorted(e, key=int)
    w = {n: v.get('entries', v['n_tokens'] * v['real_per_token']) for n, v in d['mse_by_layer'].items()}
    sane_tot = sum(d['mse_by_layer'][n]['sane'] * w[n] for n in w) / sum(w.values())
    L += ['', f'Over all layers (entry-weighted): SANE {sane_tot:.4f}, PCA {d["pca_total"]:.4f}'
          + (' - SANE is no better than the linear code of the same width. ' if sane_tot >= 0.95 * d['pca_total'] else '. ')
          + 'SANE MSE by checkpoint epoch: '
          + ', '.join(f'epoch {k} {e[k]:.3f}' for k in (ks[0], ks[len(ks) // 3], ks[2 * len(ks) // 3], ks[-1])) + '.', '']
    r = d['recon_acc_test_all']
    L += [f'Every held-out model at its last epoch (all activations, {len(r)} models): test accuracy {mean_sd([x[0] for x in r])} % '
          f'before and {mean_sd([x[1] for x in r])} % after encode -> decode.', '']
    m = d['raw_mixing']
    L += ['**Can per-token sampling work in this zoo at all?** Mixing the *raw aligned weights* of the ReLU training models at their last epoch '
          f'(mean test accuracy {mean_sd(m["prompts"])} %), no SANE involved (10 mixtures each):', '', '| mixture | test accuracy |', '|---|---|']
    L += [f'| {k} | {mean_sd(v)} |' for k, v in m.items() if k != 'prompts'] + ['']
    L += ['Sampling from the same prompts\' SANE latents without subsampling (10 samples each), varying how tokens are drawn and the KDE '
          'bandwidth (x Scott\'s rule):', '', '| sampling | zero-shot test accuracy |', '|---|---|']
    L += [f'| {k} | {mean_sd(v)} |' for k, v in d['bandwidth'].items()] + ['']
    return L

def earlier_lines(E:dict, R:dict, seeds:list)->list[str]:
    "One-line comparison with the earlier 60-model run (bench/results/sane/n60/)."
    es = [k for k in E if k.startswith('table1_sane')]
    if not es: return []
    mean = lambda xs: sum(xs) / len(xs)
    row = lambda RR, ss, label: [label, RR[ss[0]]['config']['token_size'], RR[ss[0]]['config']['latent_dim'], RR[ss[0]]['config']['window'],
                                 f'{mean([min(h["val_rec"] for h in RR[x]["history"]) for x in ss]):.4f}', mean_sd([RR[x]['r2']['test_acc'] for x in ss], 1, 3),
                                 f'{100 * mean([r[0] for r in RR["table3"]["subsample"]]):.1f}' if 'table3' in RR else 'n/a']
    return ['## This run vs the earlier 60-model run', '', 'The earlier run (`bench/results/sane/n60/sane.md`, first 60 models of the same zoo) '
            'used 64-entry tokens (66 per model, conv2 rows split in four) and a 32-wide latent; its reconstruction sat at the linear bound of '
            'that bottleneck (its diagnostics are in the same folder).', ''] + md_table(
        [row(E, es, 'earlier (60 models)'), row(R, seeds, f'this ({R["zoo"]["n_models"]} models)')],
        ['run', 'token size', 'latent', 'window', 'best validation reconstruction MSE', 'probe R² test acc (mean embedding)', 'zero-shot subsampled %']) + ['']

def render(a, P, cache):
    R = cache.all(); L = []
    z = R.get('zoo')
    if not z: write_results(a.out / 'sane.md', 'SANE in miniature', a.command, ['No runs yet.']); return
    L += [f'Zoo: `{z["zoo"]}` (see `bench/results/zoos.md`), first {z["n_models"]} finished models, aligned to {z["align"]["reference"]} '
          f'with `rebasin.align_zoo` ({z["align"]["seconds"]:.0f} s), split by model {z["splits"]}. Machine: shared 2-core CPU, no GPU.', '']
    seeds = [k for k in R if k.startswith('table1_sane')]
    full = R[seeds[0]]['config'] if seeds else P['cfg']; cfg = {k: full[k] for k in P['cfg']}
    n_tok = R['ablation_window']['n_tokens'] if 'ablation_window' in R else None
    L += ['SANE config (CPU scale; the paper uses token size 289, d_model 1024, 4 layers, 4-8 heads, latent 128 and window 32 '
          'for these CNNs, 50 epochs): `' + json.dumps(cfg) + '`' + (f'; a zoo_cnn_small model is {n_tok} tokens' if n_tok else '') + '.', '',
          '**What is scaled down, and why.** The zoo models are trained on 1,200 Fashion-MNIST images for 15 epochs instead of the full '
          'training set (see `zoos.md`: the full set costs ~95 s per model, ~8 h for 300 models on one core); SANE is '
          f'{1024 // cfg["d_model"]}x narrower than the paper\'s (d_model {cfg["d_model"]} vs 1024) with {cfg["n_layers"]} instead of 4 layers, and trains for {cfg["epochs"]} epochs '
          'instead of 50, because it trains on one shared CPU core in the time this session had; fine-tuning runs 5 epochs instead of 25.', '']
    if seeds:
        L += ['## Table 1: linear probing (test R²)', '', f'SANE: {len(seeds)} seed{"s" if len(seeds) > 1 else ""} ({", ".join(s.split("_")[-1] for s in seeds)}); '
              + sd_note(len(seeds)) + ' W and s(W) are deterministic (one value). '
              + (f'The issue asks for 3 SANE seeds; {len(seeds)} {"was" if len(seeds) == 1 else "were"} affordable in this session (the 60-model run below has 3). ' if len(seeds) < 3 else '')
              + 'Probes use every checkpoint (epochs 0-15) of the split\'s models; ridge lambda chosen on the validation models.', '']
        rows = [[k] + [f'{v[t]:.3f}' for t in TARGETS] for k, v in R['table1_baselines'].items() if isinstance(v, dict) and 'test_acc' in v]
        rows.append(['SANE (mean token latent)'] + [mean_sd([R[s]['r2'][t] for s in seeds], 1, 3) for t in TARGETS])
        for k in [k for k in R if k.startswith('probe_extra_s')]:
            rows += [[f'{name} (seed {k[-1]})'] + [f'{v[t]:.3f}' for t in TARGETS] for name, v in R[k].items() if isinstance(v, dict) and 'test_acc' in v]
        if 'ablation_unaligned' in R: rows.append(['SANE, zoo not aligned (seed 0)'] + [f'{R["ablation_unaligned"]["r2"][t]:.3f}' for t in TARGETS])
        L += md_table(rows, ['features', 'test accuracy', 'epoch', 'generalisation gap']) + ['']
        mins = ', '.join('%.1f' % (R[s]['seconds'] / 60) for s in seeds); bests = ', '.join('%.4f' % R[s]['best_val'] for s in seeds)
        L += [f'SANE training time per seed: {mins} min; best validation loss {bests}.', '']
        h = R[seeds[0]]['history']; pts = sorted({1, 2, 5, len(h) // 2, len(h)} - {0})
        L += [f'Validation reconstruction MSE (standardised weights) of {seeds[0].split("_")[-1]} by epoch: '
              + ', '.join(f'{e}: {h[e - 1]["val_rec"]:.4f}' for e in pts if e <= len(h))
              + f' (contrastive loss, chance = ln(2B-1) = {math.log(2 * cfg["batch_size"] - 1):.2f} for batch {cfg["batch_size"]}: '
              + f'train {h[-1]["train_con"]:.2f}, validation {h[-1]["val_con"]:.2f}).', '']
    if 'ablation_unaligned' in R:
        u = R['ablation_unaligned']; s0 = R[seeds[0]]
        L += ['## Ablation: alignment (Table 6)', '', 'Seed-0 SANE trained on the same members before and after `align_zoo`; '
              'the probe R² of the unaligned SANE is in Table 1.', '',
              '| zoo | best validation reconstruction MSE (standardised weights) |', '|---|---|',
              f'| aligned | {min(h["val_rec"] for h in s0["history"]):.4f} |', f'| not aligned | {u["best_val_rec"]:.4f} |', '']
    if 'ablation_window' in R:
        w = R['ablation_window']
        L += ['## Inference window vs training window (Figure 6)', '', f'Reconstruction MSE (standardised, test split, seed-0 SANE, '
              f'training window {cfg["window"]}) when embedding and decoding with other windows; a model has {w["n_tokens"]} tokens.', '',
              '| inference window | halo | reconstruction MSE |', '|---|---|---|']
        L += [f'| {k.split("/")[0]} | {k.split("/")[1]} | {v:.4f} |' for k, v in w['rec_mse'].items()] + ['']
    if 'table3' in R:
        t = R['table3']; ep = list(P['finetune'])
        L += ['## Table 3: sampled models, test accuracy after fine-tuning', '',
              f'{P["n_samples"]} models per row; ± is the sd over those models (one SANE seed). Prompts: {t["n_prompts"]} training-split '
              f'models with ReLU (the activation is not part of the weights) at their last epoch, mean test accuracy '
              f'{100*statistics.mean(t["prompt_acc"]):.2f} %. Subsampling keeps the best {P["n_samples"]} of {P["n_candidates"]} by validation '
              f'accuracy; bootstrap: {P["boot_rounds"]} rounds; gauss: {P["boot_rounds"]} bootstrap rounds from N(0, I). Fine-tuning: Adam, lr 1e-3, the zoo\'s training images.', '',
              '| method | ' + ' | '.join(f'epoch {e}' for e in ep) + ' |', '|---|' + '---|' * len(ep)]
        for k in ('random init', 'kde', 'subsample', 'bootstrap', 'gauss', NEAR, 'prompts (fine-tuned)'):
            if k in t: L.append(f'| {k} | ' + ' | '.join(mean_sd([r[i] for r in t[k]]) for i in range(len(ep))) + ' |')
        zs = statistics.mean(r[0] for r in t['subsample']); pm = statistics.mean(t['prompt_acc'])
        L += ['', f'Goal (zero-shot subsampled >= 0.8 x prompt mean): {100*zs:.2f} % vs 0.8 x {100*pm:.2f} % = {80*pm:.2f} %: '
              + ('**met**.' if zs >= 0.8 * pm else '**not met**.'), f'(Prompt accuracy re-measured after loading into the ReLU template: '
              f'{100*statistics.mean(t["prompt_acc_measured"]):.2f} %.)' if t.get('prompt_acc_measured') else '', '']
    for k in [k for k in R if k.startswith('kde_diag_s')]:
        L += ['## Why KDE samples fail here (diagnostic)', '', 'Zero-shot test accuracy of KDE samples from the same prompts and SANE, '
              'varying how tokens are drawn (`kde_sample(per_token=...)`) and the bandwidth.', '', '| sampling | zero-shot test accuracy |', '|---|---|']
        L += [f'| {n} | {mean_sd(v)} |' for n, v in R[k].items() if isinstance(v, list)] + ['']
    for k in [k for k in R if k.startswith('recon_s')]:
        r = R[k]
        L += ['## How much accuracy survives encode -> decode', '', f'ReLU members at their last epoch, embedded and decoded by the seed-{k[-1]} SANE '
              '(haloed windows), test accuracy before and after; this bounds what sampling from these latents can reach.', '',
              '| split | models | original | reconstructed |', '|---|---|---|---|']
        L += [f'| {sp} (SANE {"training" if sp == "train" else "held-out"} models) | {len(v["original"])} | {mean_sd(v["original"])} | {mean_sd(v["reconstructed"])} |'
              for sp, v in r.items() if isinstance(v, dict) and 'original' in v] + ['']
    for k in [k for k in R if k.startswith('diag_s')]:
        L += diag_lines(R[k], k[-1], cfg)
    if (a.out / 'sane' / 'n60' / 'sane').is_dir() and seeds:
        L += earlier_lines(RunCache(a.out / 'sane' / 'n60' / 'sane').all(), R, seeds)
    if 'ablation_halo' in R:
        h = R['ablation_halo']
        L += ['## Ablation: haloing and BN conditioning (Table 7)', '', 'Zero-shot test accuracy of sampled models (no fine-tuning)'
              + (f', embedded and decoded in windows of {h["window"]} tokens (training window {cfg["window"]}) so that the halo matters. ' if 'window' in h else '. ')
              + 'BN conditioning cannot be tested on this zoo: zoo_cnn_small has no BatchNorm layers (SANE models every parameter).', '',
              '| sampling | zero-shot test accuracy |', '|---|---|'] + [f'| {k} | {mean_sd(v)} |' for k, v in h.items() if isinstance(v, list)] + ['']
    if 'transfer' in R:
        t = R['transfer']; ep = list(P['finetune'])
        L += ['## Transfer to the wider zoo (zoo_cnn_large; Tables 13/15 in spirit)', '',
              f'SANE trained on the small zoo only; {t["n_prompts"]} prompt models from the {t["n_large"]}-model zoo_cnn_large zoo '
              f'(mean test accuracy {100*statistics.mean(t["prompt_acc"]):.2f} %), standardised with statistics of those prompts.', '',
              '| method | ' + ' | '.join(f'epoch {e}' for e in ep) + ' |', '|---|' + '---|' * len(ep)]
        for k in ('random init', 'prompts (fine-tuned)', 'kde', 'subsample'):
            if k in t: L.append(f'| {k} | ' + ' | '.join(mean_sd([r[i] for r in t[k]]) for i in range(len(ep))) + ' |')
        L += ['']
    if 'partial_runs' in R:
        H = {k: v for k, v in R['partial_runs']['histories'].items()}
        k_min = min(len(v) for v in H.values())
        cols = [e for e in (1, 5, 10, 20, 30) if e <= k_min]
        L += ['## Validation reconstruction per SANE run (same config and OneCycle schedule; runs were resumed after stops)', '',
              '| run | ' + ' | '.join(f'epoch {e}' for e in cols) + ' | epochs run |', '|---|' + '---|' * (len(cols) + 1)]
        L += [f'| {k} | ' + ' | '.join(f'{v[e - 1]["val_rec"]:.4f}' for e in cols) + f' | {len(v)} |' for k, v in H.items()] + ['']
    if 'memory' in R:
        m = R['memory']
        L += ['## Memory is bounded by the window', '', 'Peak resident memory (ru_maxrss) of a fresh process after 3 SANE training steps '
              '(batch 64, d_model 128, both views), minus the peak before training (model, data, imports); CPU.', '',
              '| model | tokens per model | window | training-step memory (MiB) |', '|---|---|---|---|']
        L += [f'| {k.split("/")[0]} | {v["n_tokens"]} | {k.split("/")[1]} | {(v["rss_after_kib"] - v["rss_before_kib"]) / 1024:.1f} |'
              for k, v in m.items() if isinstance(v, dict) and 'n_tokens' in v] + ['']
    if 'tokenize_speed' in R:
        s = R['tokenize_speed']
        L += ['## Tokeniser speed', '', f'torchvision ResNet-18 ({s["n_params"]/1e6:.1f} M parameters, {s["n_tokens"]} tokens of 288): '
              f'{s["seconds"][0]:.2f} s best / {s["seconds"][len(s["seconds"])//2]:.2f} s median of 5 (budget 1 s).', '']
    L += findings(R, seeds)
    write_results(a.out / 'sane.md', 'SANE in miniature', a.command, L, sources=f'{(a.out / "sane").relative_to(ROOT) if (a.out / "sane").is_relative_to(ROOT) else a.out / "sane"}/*.json')

if __name__ == '__main__': main()

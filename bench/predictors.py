"""Miniature reproduction of the NeRN / decoupled-training tables (weightnb.predictors) and its perf checks.

    .venv/bin/python bench/predictors.py --quick           # minutes: digits target, tiny runs + perf checks
    .venv/bin/python bench/predictors.py --perf-only       # only the three performance checks
    .venv/bin/python bench/predictors.py --profile mini    # ~25 CPU-min: Fashion-MNIST ResNet-20, 1 seed, short runs
    .venv/bin/python bench/predictors.py --device cuda     # full: Tables 1, 2, 3, 5, 8, Figures 1, 3(b), 3 seeds
                                                           # (~25 min of an H100; days on a 2-core CPU)
    .venv/bin/python bench/predictors.py --report-only     # rewrite bench/results/predictors_full.md from the results

--sections / --hidden / --seeds select a subset, so several processes can share one GPU (disjoint subsets only).

Every run writes bench/results/predictors/<profile>/<key>.json atomically (plus the predictor weights) and is
skipped when that file exists, so an interrupted run resumes where it stopped. The report
bench/results/predictors_<profile>.md is regenerated from whatever results exist; the performance checks are
cached in bench/results/predictors/perf.json (delete it to re-measure).
"""
from __future__ import annotations
import argparse, json, statistics, sys, tempfile, time, os
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from weightnb import predictors as P
from weightnb.core import write_text_atomic, load_weights, save_weights, seed_everything
from weightnb.data import dataloaders, random_crop_flip
from functools import partial
from weightnb.models import resnet20, resnet56, save_model, load_model
from weightnb.train import fit, evaluate


def cached_run(out:Path, key:str, fn):
    "Run `fn()` unless out/key.json exists; store its dict result atomically."
    path = out / f'{key}.json'
    if path.exists(): return json.loads(path.read_text())
    t0 = time.perf_counter(); r = fn(); r['wall_s'] = time.perf_counter() - t0
    write_text_atomic(path, json.dumps(r, indent=1, default=float)); print(key, {k: v for k, v in r.items() if not isinstance(v, (list, dict))}, flush=True)
    return r


def _median_time(fn, n:int, warmup:int=2)->float:
    for _ in range(warmup): fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def perf_checks(n:int=15)->dict:
    "Step-cost ratios and the ResNet-56 cross-filter permutation time, measured in one run."
    torch.manual_seed(0)
    target = resnet20(10, in_chans=1).eval()
    pm = P.PredictedModel(target, P.KernelPredictor(240, 140), permutation=None)
    opt = torch.optim.Adam(pm.predictor.parameters(), 1e-4)
    g = torch.Generator().manual_seed(0)
    def recon_step():
        idx = P.kernel_batch(pm.kernel_norms, 4096, 0.8, g)
        loss = P.recon_loss(pm.predict(idx), pm.target_kernels[idx], pm.mask[idx])
        opt.zero_grad(); loss.backward(); opt.step()
    def full_recon_step():   # NeRN's way: predict every kernel, optimise on a batch
        kern = pm.predict(); idx = P.kernel_batch(pm.kernel_norms, 4096, 0.8, g)
        loss = P.recon_loss(kern[idx], pm.target_kernels[idx], pm.mask[idx])
        opt.zero_grad(); loss.backward(); opt.step()
    x = torch.randn(128, 1, 28, 28)
    teacher = pm.target
    def kd_step():
        kern = pm.predict()
        with torch.no_grad(): t = teacher(x)
        loss = P.kd_loss(pm(x, kern), t)
        opt.zero_grad(); loss.backward(); opt.step()
    def predictor_fwd_bwd():
        pm.predict().square().mean().backward()
    net = resnet20(10, in_chans=1).eval()
    def target_fwd_bwd():
        net(x).logsumexp(1).mean().backward()
    r = dict(n=n, threads=torch.get_num_threads())
    # interleave the measurements so load changes on the shared machine hit all of them alike
    ts = {k: [] for k in ('recon', 'full_recon', 'kd', 'pred', 'target')}
    fns = dict(recon=recon_step, full_recon=full_recon_step, kd=kd_step, pred=predictor_fwd_bwd, target=target_fwd_bwd)
    for f in fns.values(): f()
    for _ in range(n):
        for k, f in fns.items():
            t0 = time.perf_counter(); f(); ts[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in ts.items()}
    r.update({f'{k}_s': v for k, v in med.items()})
    r['recon_over_full'] = med['recon'] / med['full_recon']
    r['kd_over_pred_plus_target'] = med['kd'] / (med['pred'] + med['target'])
    with tempfile.TemporaryDirectory() as d:
        old = os.environ.get('WEIGHTNB_CACHE'); os.environ['WEIGHTNB_CACHE'] = d
        try:
            m56 = resnet56(100, in_chans=3, shortcut='B')
            t0 = time.perf_counter(); P.smoothness_permutation(m56, 'cross_filter', 'all'); r['perm56_cross_s'] = time.perf_counter() - t0
            t0 = time.perf_counter(); P.smoothness_permutation(m56, 'cross_filter', 'all'); r['perm56_cross_cached_s'] = time.perf_counter() - t0
            t0 = time.perf_counter(); P.smoothness_permutation(m56, 'in_filter', 'all'); r['perm56_in_s'] = time.perf_counter() - t0
        finally:
            if old is None: os.environ.pop('WEIGHTNB_CACHE')
            else: os.environ['WEIGHTNB_CACHE'] = old
    return r


def _slim(res:P.PredictorResult)->dict:
    return dict(metrics=res.metrics, history=[h for h in res.history if 'score' in h])


PROFILES = {
    # digits target trained here; shows the mechanics in minutes
    'quick': dict(data='digits', steps=150, nern_steps=150, phase2_steps=40, batch_size=4096, eval_every=50,
                  t2_hidden=[64], t1_hidden=160, h3=64, seeds=[0], rounds=2, fig1=[32, 64, 160], teacher56_epochs=2,
                  n_train=None, n_val=None, n_test=None, robustness=True),
    # the Fashion-MNIST ResNet-20 with short runs (~25 single-thread CPU minutes; Table 3 not included)
    'mini': dict(data='fashion-mnist', steps=500, nern_steps=200, phase2_steps=60, batch_size=4096, eval_every=100,
                 t2_hidden=[120, 140, 180], t1_hidden=300, h3=140, seeds=[0], rounds=3, fig1=[60, 120, 140, 180, 300],
                 teacher56_epochs=None, n_train=10000, n_val=2000, n_test=5000, robustness=True),
    # the protocol: 3 seeds, NeRN-length runs (~2500 steps ≈ 350 NeRN epochs of ResNet-20 kernels); many hours
    'full': dict(data='fashion-mnist', steps=2500, nern_steps=2500, phase2_steps=150, batch_size=4096, eval_every=250,
                 t2_hidden=[120, 140, 180], t1_hidden=300, h3=140, seeds=[0, 1, 2], rounds=5,
                 fig1=[60, 120, 140, 180, 300, 510], teacher56_epochs=15, n_train=None, n_val=None, n_test=None, robustness=True),
}


def _shrink(dls, n_val, n_test):
    "Same splits (the target never saw val), fewer val/test images for speed."
    from weightnb.data import DataLoaders, make_loader
    val, test = dls.val.dataset, dls.test.dataset
    if n_val: val = val.subset(torch.arange(min(n_val, len(val))))
    if n_test: test = test.subset(torch.arange(min(n_test, len(test))))
    return DataLoaders(dls.train, make_loader(val, 1024), make_loader(test, 1024))


DEVICE = 'cpu'   # --device; train_predictor follows the target's device


def quick_target(out:Path):
    path = out / 'digits_resnet20.safetensors'
    dls = dataloaders('digits', batch_size=64)
    if path.exists(): return load_model(path).eval().to(DEVICE), dls
    seed_everything(0); net = resnet20(10, in_chans=1)
    fit(net, dls.train, epochs=6, lr=0.05, progress=False, device=DEVICE)
    save_model(net, path); return net.eval(), dls


def fashion_target(cfg):
    # the validation split (val_fraction 0.1, seed 0) is the one bench/train_resnet20.py held out
    dls = dataloaders('fashion-mnist', batch_size=128, val_fraction=0.1, seed=0, n_train=cfg['n_train'])
    dls = _shrink(dls, cfg['n_val'], cfg['n_test'])
    return load_model(ROOT / 'bench/results/resnet20_fashion_mnist.safetensors').eval().to(DEVICE), dls


def teacher56(out:Path, dls, epochs:int):
    path = out / 'resnet56_fashion_mnist.safetensors'
    if path.exists(): return load_model(path).eval().to(DEVICE)
    seed_everything(0); net = resnet56(10, in_chans=1)
    fit(net, dls.train, epochs=epochs, lr=0.1, wd=5e-4, progress=False, device=DEVICE, val_dl=dls.val,
        augment=partial(random_crop_flip, pad=2))   # the recipe of bench/train_resnet20.py
    save_model(net, path); return net.eval()


def trained(out:Path, key:str, fn):
    "Like `cached_run` for a `train_predictor` call; also keeps the predictor weights (`key.predictor.safetensors`)."
    def run():
        res = fn(); save_weights(res.predictor.state_dict(), out / f'{key}.predictor.safetensors'); return _slim(res)
    return cached_run(out, key, run)


def load_predictor(out:Path, key:str, hidden:int)->P.KernelPredictor:
    pred = P.KernelPredictor(240, hidden); pred.load_state_dict(load_weights(out / f'{key}.predictor.safetensors')); return pred


def recon_then_decoupled(out:Path, target, dls, hidden:int, seed:int, steps:int, phase2_steps:int, cfg:dict, tag:str=''):
    "A recon-only run and the decoupled phase 2 that starts from its best predictor (keys `recon_h{hidden}{tag}_s{seed}`, `decoupled_...`)."
    key = f'h{hidden}{tag}_s{seed}'
    trained(out, f'recon_{key}', lambda: P.train_predictor(target, hidden, 'recon', dls, steps=steps, seed=seed, **cfg))
    trained(out, f'decoupled_{key}', lambda: P.train_predictor(
        target, hidden, 'decoupled', dls, steps=0, phase2_steps=phase2_steps, seed=seed,
        predictor=load_predictor(out, f'recon_{key}', hidden), **cfg))


SECTIONS = ('t2', 'nern', 't5', 't8', 't1', 'fig1', 't3')


def run_all(out:Path, profile:str, sections=SECTIONS, hidden=None, seeds=None):
    "Every run of `profile` in `sections` (two processes with disjoint sections can share one GPU)."
    out.mkdir(parents=True, exist_ok=True); c = dict(PROFILES[profile])
    if seeds: c['seeds'] = seeds
    target, dls = quick_target(out) if c['data'] == 'digits' else fashion_target(c)
    cfg = dict(batch_size=c['batch_size'], eval_every=c['eval_every'])
    def orig():
        r = dict(val_acc=evaluate(target, dls.val)['acc'], test_acc=evaluate(target, dls.test)['acc'],
                 n_val=len(dls.val.dataset), n_test=len(dls.test.dataset), profile=c)
        if c['robustness']: r.update(P._robustness_metrics(target, dls.test))
        return r
    cached_run(out, 'original', orig)
    # Table 2 (+ Figure 1): recon-only, NeRN, decoupled. Decoupled phase 1 *is* the recon-only run of the same seed
    # (identical settings), so phase 2 starts from that run's best predictor instead of repeating it.
    t2_hidden = hidden or c['t2_hidden']
    for h in t2_hidden if 't2' in sections else []:
        for s in c['seeds']: recon_then_decoupled(out, target, dls, h, s, c['steps'], c['phase2_steps'], cfg)
    for h in t2_hidden if 'nern' in sections else []:
        for s in c['seeds']:
            trained(out, f'nern_h{h}_s{s}', lambda: P.train_predictor(target, h, 'nern', dls, steps=c['nern_steps'], seed=s, **cfg))
    # Table 5: int8 original vs NeRN vs decoupled predictors (the Table-2 predictors at hidden h3, seed 0)
    h3, s0 = c['h3'], c['seeds'][0]
    def int8():   # per-channel int8 (the library default) and per-tensor, side by side
        acc = lambda m: evaluate(m, dls.test)['acc']
        r = dict(original=dict(acc=acc(target), bytes=P.quantize_model(target).fp32_bytes))
        for per_channel, tag in ((True, 'int8'), (False, 'int8_per_tensor')):
            qm = P.quantize_model(target, per_channel); r[f'original_{tag}'] = dict(acc=acc(qm.module), bytes=qm.size_bytes)
        for mode in ('nern', 'decoupled'):
            if not (out / f'{mode}_h{h3}_s{s0}.predictor.safetensors').exists():
                print(f'Table 5: no {mode} predictor weights, row skipped'); continue
            pred = load_predictor(out, f'{mode}_h{h3}_s{s0}', h3)
            r[mode] = dict(acc=acc(P.PredictedModel(target, pred).materialize()), bytes=P.quantize_predictor(pred).fp32_bytes)
            for per_channel, tag in ((True, 'int8'), (False, 'int8_per_tensor')):
                qp = P.quantize_predictor(pred, per_channel)
                r[f'{mode}_{tag}'] = dict(acc=acc(P.PredictedModel(target, qp.module).materialize()), bytes=qp.size_bytes)
        return r
    if 't5' in sections: cached_run(out, f't5_int8_h{h3}', int8)
    # Table 8: data-free phase 2 (noise inputs U[-1, 1]) from the same phase-1 predictors
    for s in c['seeds'] if 't8' in sections else []:
        trained(out, f'noise_h{h3}_s{s}', lambda: P.train_predictor(
            target, h3, 'decoupled', dls, steps=0, phase2_steps=c['phase2_steps'], inputs='noise', seed=s,
            predictor=load_predictor(out, f'recon_h{h3}_s{s}', h3), **cfg))
    # Table 1 + Figure 3(b): progressive rounds with a large predictor (CR > 1)
    def prog():
        pr = P.progressive(target, c['t1_hidden'], c['rounds'], c['seeds'], dls, robustness=c['robustness'], steps=c['steps'], **cfg)
        return dict(rounds=pr.rounds)
    if 't1' in sections: cached_run(out, f't1_progressive_h{c["t1_hidden"]}', prog)
    # Figure 1: reconstruction-only accuracy vs hidden size (reuses the Table-2 recon runs)
    for h in c['fig1'] if 'fig1' in sections else []:
        trained(out, f'recon_h{h}_s{s0}', lambda: P.train_predictor(target, h, 'recon', dls, steps=c['steps'], seed=s0, **cfg))
    # Table 3: decoupled phase 2 guided by a stronger ResNet-56 teacher vs the target itself
    if c['teacher56_epochs'] and 't3' in sections:
        def strong():
            t = teacher56(out, dls, c['teacher56_epochs'])
            rs = [P.train_predictor(target, h3, 'decoupled', dls, steps=0, phase2_steps=c['phase2_steps'], teacher=t, seed=s,
                                    predictor=load_predictor(out, f'recon_h{h3}_s{s}', h3), **cfg) for s in c['seeds']]
            return dict(teacher_test_acc=evaluate(t, dls.test)['acc'], runs=[_slim(r) for r in rs])
        cached_run(out, f't3_teacher56_h{h3}', strong)


def _last(m): return m[list(m)[-1]]

def _ms(vals, scale=100): return (f"{statistics.mean(vals)*scale:.2f} ± {statistics.pstdev(vals)*scale:.2f}" if len(vals) > 1
                                  else f"{vals[0]*scale:.2f}") if vals else 'not run'

def _plot(path, xs, ys, xlabel, ylabel, hline=None, labels=None, logx=False):
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.4)); ax.plot(xs, ys, 'o-')
    for x, y, t in zip(xs, ys, labels or []): ax.annotate(t, (x, y), textcoords='offset points', xytext=(4, -11), fontsize=8)
    if logx: ax.set_xscale('log')
    elif all(isinstance(x, int) for x in xs): ax.set_xticks(xs)          # rounds
    if hline is not None: ax.axhline(hline, ls=':', c='r', label='original'); ax.legend(loc='lower right')
    ax.set_xlabel(xlabel); ax.set_ylabel(ylabel); fig.tight_layout(); fig.savefig(path, dpi=100); plt.close(fig)


def report(out:Path, profile:str, perf:dict|None, cmd:str)->str:
    L = [f"# weightnb.predictors — miniature reproduction, profile `{profile}`", '',
         f'Regenerate: `{cmd}` (results in `{out.relative_to(ROOT)}/`, finished runs are skipped).', '']
    if perf:
        L += ['## Performance checks (one run, medians, this machine)', '',
              '| check | measured | bound | ok |', '|---|---|---|---|',
              f"| recon-only step / full-reconstruction step (ResNet-20, hidden 140, batch 4096) | {perf['recon_over_full']:.3f} ({perf['recon_s']*1e3:.1f} ms / {perf['full_recon_s']*1e3:.1f} ms) | ≤ 0.3 | {perf['recon_over_full'] <= 0.3} |",
              f"| phase-2 step / (predictor fwd+bwd all kernels + target fwd+bwd, batch 128×1×28×28) | {perf['kd_over_pred_plus_target']:.3f} ({perf['kd_s']*1e3:.1f} ms / ({perf['pred_s']*1e3:.1f} + {perf['target_s']*1e3:.1f}) ms) | ≤ 1.3 | {perf['kd_over_pred_plus_target'] <= 1.3} |",
              f"| ResNet-56 cross-filter permutation (all convs, fresh cache) | {perf['perm56_cross_s']:.1f} s (in-filter {perf['perm56_in_s']:.1f} s) | < 60 s | {perf['perm56_cross_s'] < 60} |",
              f"| same, served from cache | {perf['perm56_cross_cached_s']*1e3:.0f} ms | — | — |", '',
              f"torch threads: {perf['threads']}; the machine was shared with other jobs, so absolute times are noisy; the ratios were measured interleaved.", '']
    files = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob('*.json'))}
    if not files: return '\n'.join(L + ['No result runs finished yet.'])
    o = files.get('original', {}); c = PROFILES[profile]
    L += ['## Results', '', f"Target: {'ResNet-20 on digits (trained by this script)' if c['data'] == 'digits' else 'bench/results/resnet20_fashion_mnist.safetensors'}; "
          f"test images: {o.get('n_test')}, validation images (checkpoint choice): {o.get('n_val')}; seeds {c['seeds']}; "
          f"recon steps {c['steps']}, NeRN steps {c['nern_steps']}, phase-2 steps {c['phase2_steps']}, kernel batch {c['batch_size']}. "
          'Accuracies are test accuracies in %, mean ± std over seeds when there are several.', '']
    if o: L += [f"Original: test acc {o['test_acc']*100:.2f}, val acc {o['val_acc']*100:.2f}" +
                (f", FGSM {o['fgsm_acc']*100:.2f}, I-FGSM {o['ifgsm_acc']*100:.2f}, OOD {o['ood_acc']*100:.2f}" if 'fgsm_acc' in o else ''), '']
    runs = lambda mode, h: [_last(files[f'{mode}_h{h}_s{s}']['metrics']) for s in c['seeds'] if f'{mode}_h{h}_s{s}' in files]
    L += ['### Table 2: recon-only / NeRN / decoupled (phase 2 = KD only, α = 0.01, lr 5e-4)', '',
          '| hidden | CR | recon-only | NeRN | decoupled | recon RMSE (recon / NeRN / decoupled) |', '|---|---|---|---|---|---|']
    for h in c['t2_hidden']:
        ms = {m: runs(m, h) for m in ('recon', 'nern', 'decoupled')}
        crs = [x['cr'] for v in ms.values() for x in v]
        L.append(f"| {h} | {crs[0]:.2f} | " if crs else f"| {h} | | ")
        L[-1] += ' | '.join(_ms([x['test_acc'] for x in ms[m]]) for m in ms) + ' | ' + \
                 ' / '.join(f"{statistics.mean([x['recon'] for x in ms[m]]):.5f}" if ms[m] else '—' for m in ms) + ' |'
    L.append('')
    k5 = f"t5_int8_h{c['h3']}"
    if k5 in files:
        L += [f"### Table 5: int8 (symmetric weights; `int8` = one scale per output channel, the default), hidden {c['h3']}, seed {c['seeds'][0]}", '', '| model | test acc | bytes |', '|---|---|---|']
        L += [f"| {m} | {d['acc']*100:.2f} | {d['bytes']} |" for m, d in files[k5].items() if isinstance(d, dict)]
        L.append('')
    t8 = [files[f"noise_h{c['h3']}_s{s}"] for s in c['seeds'] if f"noise_h{c['h3']}_s{s}" in files]
    dec = runs('decoupled', c['h3'])
    if t8:
        L += [f"### Table 8: decoupled phase 2 on noise inputs U[−1, 1] (data-free), hidden {c['h3']}", '',
              '| phase 1 (recon-only) | phase 2 on data | phase 2 on noise |', '|---|---|---|',
              f"| {_ms([v['metrics']['phase1']['test_acc'] for v in t8])} | {_ms([x['test_acc'] for x in dec])} | {_ms([v['metrics']['phase2']['test_acc'] for v in t8])} |", '']
    for k, v in files.items():
        if k.startswith('t1_'):
            L += [f"### Table 1: progressive reconstruction, hidden {c['t1_hidden']}", '',
                  '| round | CR | val acc (best seed) | test acc | recon RMSE | S_ratio late-mean diff vs original | FGSM | I-FGSM | OOD |', '|---|---|---|---|---|---|---|---|---|']
            f = lambda x: '—' if x is None else f'{x*100:.2f}'
            for r in v['rounds']:
                L.append(f"| {r['round']} | {r.get('cr', 0):.2f} | {r['val_acc']*100:.2f} | {r['test_acc_mean']*100:.2f} ± {r['test_acc_std']*100:.2f} | {r['recon']:.5f} | "
                         f"{'—' if r.get('s_ratio_late_mean') is None else format(r['s_ratio_late_mean'], '.2e')} | {f(r.get('fgsm_acc'))} | {f(r.get('ifgsm_acc'))} | {f(r.get('ood_acc'))} |")
            L += ['', 'Rounds stop when the best validation accuracy does not improve (the last round listed is the one that did not).', '']
            rr = [r for r in v['rounds'] if r.get('s_ratio_late_mean') is not None]
            if rr:
                name = f'predictors_{profile}_fig3b.png'
                _plot(ROOT / 'bench/results' / name, [r['round'] for r in rr], [r['s_ratio_late_mean'] for r in rr], 'round', 'S_ratio late-mean diff')
                L += [f'Figure 3(b): `bench/results/{name}`', '']
        if k.startswith('t3_'):
            L += [f"### Table 3: decoupled phase 2 guided by a ResNet-56 teacher (teacher test acc {v['teacher_test_acc']*100:.2f})", '',
                  f"phase 1 → phase 2 with the ResNet-56 teacher: {_ms([r['metrics']['phase1']['test_acc'] for r in v['runs']])} → "
                  f"{_ms([r['metrics']['phase2']['test_acc'] for r in v['runs']])}; without (target as teacher): {_ms([x['test_acc'] for x in dec])}", '']
    f1 = [(h, runs('recon', h)[:1]) for h in c['fig1']]; f1 = [(h, r[0]) for h, r in f1 if r]
    if f1:
        L += ['### Figure 1: reconstruction-only accuracy vs hidden size (seed 0)', '', '| hidden | CR | test acc | recon RMSE |', '|---|---|---|---|']
        L += [f"| {h} | {m['cr']:.2f} | {m['test_acc']*100:.2f} | {m['recon']:.5f} |" for h, m in f1]
        name = f'predictors_{profile}_fig1.png'
        _plot(ROOT / 'bench/results' / name, [m['cr'] for _, m in f1], [m['test_acc'] * 100 for _, m in f1], 'compression ratio (log scale)',
              'test acc (%)', o.get('test_acc', 0) * 100 if o else None, [f'h{h}' for h, _ in f1], logx=True)
        L += ['', f'Figure 1: `bench/results/{name}`', '']
    return '\n'.join(L)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help="same as --profile quick (digits target, minutes)")
    ap.add_argument('--profile', choices=list(PROFILES), default='full')
    ap.add_argument('--perf-only', action='store_true', help='only the performance checks')
    ap.add_argument('--report-only', action='store_true', help='only rewrite the report from the saved results')
    ap.add_argument('--no-perf', action='store_true', help='skip the performance checks')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--device', default='cpu', help="'cpu' or 'cuda': where the predictor runs are trained (the perf checks always run on the CPU)")
    ap.add_argument('--perf-steps', type=int, default=15)
    ap.add_argument('--hidden', default=None, help='comma-separated subset of the Table-2 hidden sizes (t2, nern)')
    ap.add_argument('--seeds', default=None, help="comma-separated subset of the profile's seeds")
    ap.add_argument('--sections', default=','.join(SECTIONS), help='comma-separated subset of ' + ','.join(SECTIONS))
    a = ap.parse_args(argv)
    profile = 'quick' if a.quick else a.profile
    torch.set_num_threads(a.threads); global DEVICE; DEVICE = a.device
    base = ROOT / 'bench/results/predictors'; out = base / profile
    out.mkdir(parents=True, exist_ok=True)
    perf = None if a.no_perf else cached_run(base, 'perf', lambda: perf_checks(a.perf_steps))
    if not (a.perf_only or a.report_only): run_all(out, profile, a.sections.split(','), [int(h) for h in a.hidden.split(',')] if a.hidden else None,
                                   [int(x) for x in a.seeds.split(',')] if a.seeds else None)
    cmd = '.venv/bin/python bench/predictors.py ' + ('--perf-only' if a.perf_only else f'--profile {profile}')
    md = report(out, profile, perf, cmd)
    path = ROOT / 'bench/results' / f'predictors_{profile}.md'
    write_text_atomic(path, md + '\n'); print(md)


if __name__ == '__main__': main()

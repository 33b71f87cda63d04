"""Weight analysis of the reference ResNet-20 (issue 3; the seed paper's appendix A) and the analysis layer's speed.

    python bench/analysis.py --render-only     # rebuild bench/results/analysis.md from analysis.json / analysis_perf.json
    python bench/analysis.py --quick           # 300 validation / 1,000 test images (~2 min on one thread)
    python bench/analysis.py                   # sweeps on 2,000 validation images, test once on all 10,000 (~10 min)
    python bench/analysis.py --perf            # also re-time the analysis layer (~15 min; noisy on a shared machine)

Sweeps (`sweeps`): each low-pass variant (`weightnb.spectral.LOWPASS_VARIANTS`) over its cutoffs D0, and scaling the last 15
singular values by a factor, one stage (`layer1`..`layer3`) at a time. The setting of each method is chosen on images of the
**validation split of the training set** (the 10 % held out when the model was trained, seed 0), never on test images;
the chosen models are then evaluated **once** on the test set. The best filtered model's S_ratio against the original,
the loss along the line to it, FGSM (2/255) and corruption accuracy (severity 3) on test images follow.

Performance (`perf`): `spectral.s_ratio_per_layer` on ResNet-56 vs bare batched `torch.linalg.svdvals` (bound 1.3x), and
`landscape.interpolate` with 21 alphas vs 21 `train.evaluate` passes (bound 1.2x) and vs `loss_landscapes`.
"""
from __future__ import annotations
import copy, statistics, time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from _common import (bench_parser, parse, read_json, write_json, write_results, environment, environment_line, md_table, rel,
                     resolve_device, fashion_target, TARGET)
from weightnb.landscape import interpolate
from weightnb.models import resnet56
from weightnb.robustness import adversarial_accuracy, ood_accuracy
from weightnb.spectral import (LOWPASS_VARIANTS, layer_groups, frequency_sweep, sv_sweep, lowpass_model, modulate_model,
                               s_ratio_diff, s_ratio_late_mean, s_ratio_per_layer)
from weightnb.train import evaluate

D0S = {'spatial2d': [0.5, 0.75, 1., 1.5, 3.], 'flat1d': [0.75, 1., 1.5, 2.5, 5.], 'in_channel': [2., 4., 8., 16., 24.]}
FACTORS = [0.75, 0.5, 0.25, 0.]
PAPER = 'ResNet-56 on CIFAR-100: 71.37 % → 71.59 % at D0 = 23.53 (one block filtered)'


def _batches(ds, n:int|None, bs:int=500)->list:
    n = len(ds) if n is None else min(n, len(ds))
    return [(ds.x[i:min(i + bs, n)], ds.y[i:min(i + bs, n)]) for i in range(0, n, bs)]


def _best(df:pd.DataFrame)->pd.Series:
    "The row with the highest validation accuracy, ties broken by the lower validation loss."
    return df[df.group != 'baseline'].sort_values(['acc', 'loss'], ascending=[False, True]).iloc[0]


def _correct(model, batches)->torch.Tensor:
    "Per-image correctness (bool) of `model` on `batches`, in order."
    dev = next(model.parameters()).device
    with torch.no_grad(): return torch.cat([model.eval()(x.to(dev)).argmax(1).cpu() == y for x, y in batches])


def paired_test(models:dict, test)->list[dict]:
    "Exact McNemar test of each model against `models['original']` on the same test images (images fixed / broken)."
    from scipy.stats import binomtest
    base = _correct(models['original'], test); out = []
    for name, m in models.items():
        if name == 'original': continue
        c = _correct(m, test); fixed, broken = int((c & ~base).sum()), int((~c & base).sum())
        out.append(dict(method=name, fixed=fixed, broken=broken,
                        p=binomtest(fixed, fixed + broken, 0.5).pvalue if fixed + broken else 1.0))
    return out


def rebuild(model, c:dict):
    "The modified model of a `chosen` row of analysis.json."
    if c['method'].startswith('lowpass'): return lowpass_model(model, c['setting'], layers=c['group'], variant=c['method'].split()[-1])
    return modulate_model(model, c['setting'], layers=c['group'])


def sweeps(n_val:int|None, n_test:int|None, n_rob:int, device)->dict:
    "Choose each method's setting on validation images, then evaluate the chosen models once on test images."
    model, dls = fashion_target(device)
    val, test = _batches(dls.val.dataset, n_val), _batches(dls.test.dataset, n_test)
    bounds = dls.test.dataset.pixel_bounds
    groups = layer_groups(model, 'stage')
    t0 = time.perf_counter()
    fs = pd.concat([frequency_sweep(model, D0S[v], groups, val, variant=v) for v in LOWPASS_VARIANTS], ignore_index=True)
    sv = sv_sweep(model, FACTORS, groups, val)
    t_sweep = time.perf_counter() - t0
    base_val = evaluate(model, val)
    chosen = [dict(method='original', group=None, setting=None, val_acc=base_val['acc'], val_loss=base_val['loss'], model=model)]
    for v in LOWPASS_VARIANTS:
        r = _best(fs[fs.variant == v])
        chosen.append(dict(method=f'lowpass {v}', group=r.group, setting=float(r.d0), val_acc=float(r.acc), val_loss=float(r.loss),
                           model=lowpass_model(model, float(r.d0), layers=r.group, variant=v)))
    r = _best(sv)
    chosen.append(dict(method='singular values (last 15 scaled)', group=r.group, setting=float(r.factor), val_acc=float(r.acc),
                       val_loss=float(r.loss), model=modulate_model(model, float(r.factor), layers=r.group)))
    t0 = time.perf_counter()
    for c in chosen:   # the one and only look at the test set
        t = evaluate(c['model'], test); c['test_acc'], c['test_loss'] = t['acc'], t['loss']
    t_test = time.perf_counter() - t0
    paired = paired_test({c['method']: c['model'] for c in chosen}, test)
    # the low-pass model with the best validation accuracy: S_ratio, interpolation and robustness
    top = max(chosen[1:1 + len(LOWPASS_VARIANTS)], key=lambda c: (c['val_acc'], -c['val_loss']))
    d = s_ratio_diff(top['model'], model)
    rob_b = _batches(dls.test.dataset, n_rob)
    rob = [dict(model=name, **{f'fgsm_{k}': v for k, v in adversarial_accuracy(m, rob_b, 'fgsm', 2 / 255, bounds=bounds).items() if k != 'n'},
                ood_mean_acc=float(ood_accuracy(m, rob_b, severities=(3,), bounds=bounds).acc.iloc[-1]))
           for name, m in (('original', model), (top['method'], top['model']))]
    line = interpolate(model, top['model'], [i / 5 for i in range(6)], rob_b)
    return dict(n_val=sum(len(y) for _, y in val), n_test=sum(len(y) for _, y in test), n_rob=sum(len(y) for _, y in rob_b),
                sweep_seconds=t_sweep, test_seconds=t_test, freq_sweep=fs.to_dict('records'), sv_sweep=sv.to_dict('records'),
                chosen=[{k: v for k, v in c.items() if k != 'model'} for c in chosen],
                top=dict(method=top['method'], group=top['group'], setting=top['setting'], s_ratio_late_mean=s_ratio_late_mean(top['model'], model),
                         s_ratio_diff=dict(d)),
                robustness=rob, interpolation=line.to_dict('records'), paired=paired, env=environment(str(device)))


# ---------------------------------------------------------------------------------------------------------------
# performance
def _interleaved(fns:dict, repeats:int, clock)->dict:
    ts = {k: [] for k in fns}
    for f in fns.values(): f()   # warm up
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = clock(); f(); ts[k].append(clock() - t0)
    return ts


def perf(repeats:int, sv_repeats:int, n_test:int, cpu_clock:bool)->dict:
    import loss_landscapes
    from loss_landscapes.metrics import Metric
    clock = time.process_time if cpu_clock else time.perf_counter
    torch.manual_seed(0); m56 = resnet56(100, in_chans=3)
    mats = [mod.weight.detach().flatten(1) for mod in m56.modules() if isinstance(mod, torch.nn.Conv2d)]
    groups = {}
    for w in mats: groups.setdefault(tuple(w.shape), []).append(w)
    stacks = [torch.stack(ws).double() for ws in groups.values()]
    sv = _interleaved(dict(ours=lambda: s_ratio_per_layer(m56), bare=lambda: [torch.linalg.svdvals(s) for s in stacks]), sv_repeats, clock)
    a, dls = fashion_target('cpu')
    b = modulate_model(a, 0.5)
    batches = _batches(dls.test.dataset, n_test)
    class BatchedLoss(Metric):
        def __init__(self, no_grad): super().__init__(); self.no_grad = no_grad
        def __call__(self, wrapper):
            with (torch.no_grad() if self.no_grad else torch.enable_grad()):
                return sum(F.cross_entropy(wrapper.forward(x), y, reduction='sum').item() for x, y in batches)
    alphas = np.linspace(0, 1, 21)
    a_cl, b_cl = (copy.deepcopy(m).to(memory_format=torch.channels_last) for m in (a, b))
    ll = lambda x, y, ng: loss_landscapes.linear_interpolation(x, y, BatchedLoss(ng), steps=21, deepcopy_model=True)
    it = _interleaved(dict(plain=lambda: [evaluate(a, batches) for _ in alphas], ours=lambda: interpolate(a, b, alphas, batches),
                           ll=lambda: ll(a, b, False), ll_nograd=lambda: ll(a, b, True), ll_cl=lambda: ll(a_cl, b_cl, False)), repeats, clock)
    return dict(clock='process CPU time' if cpu_clock else 'wall time', sv_repeats=sv_repeats, repeats=repeats, n_layers=len(mats),
                n_shapes=len(stacks), n_test=n_test, s_ratio=sv, interpolate=it, env=environment('cpu'))


# ---------------------------------------------------------------------------------------------------------------
# report
def render_sweeps(r:dict, json_name:str)->list[str]:
    ch = r['chosen']; o = ch[0]
    pct = lambda x: f'{x*100:.2f}'
    rows = [[c['method'], '—' if c['group'] is None else f"{c['group']}, {'D0' if 'lowpass' in c['method'] else '×'} {c['setting']:g}",
             pct(c['val_acc']), pct(c['test_acc']), '—' if c is o else f"{100*(c['test_acc'] - o['test_acc']):+.2f} "
             f"({round((c['test_acc'] - o['test_acc']) * r['n_test']):+d} images)"] for c in ch]
    gains = [c['test_acc'] - o['test_acc'] for c in ch[1:]]
    pt = {x['method']: x for x in r.get('paired', [])}
    if pt:
        for row, c in zip(rows, ch):
            x = pt.get(c['method']); row += ['—', '—'] if x is None else [f"{x['fixed']} / {x['broken']}", f"{x['p']:.2f}"]
    lp = ch[1:1 + len(LOWPASS_VARIANTS)]
    fs = pd.DataFrame(r['freq_sweep']); sv = pd.DataFrame(r['sv_sweep'])
    piv = fs[fs.group != 'baseline'].pivot_table(index=['variant', 'd0'], columns='group', values='acc')
    svp = sv[sv.group != 'baseline'].pivot_table(index='factor', columns='group', values='acc')
    t = r['top']; rob = {x['model']: x for x in r['robustness']}; line = r['interpolation']
    diffs = [v for v in t['s_ratio_diff'].values() if v != 0]
    L = ['## Low-pass filters and singular values (appendix A, Fig. 7–9)', '',
         f"Every setting below was chosen on the first {r['n_val']:,} images of the **validation split** (the 10 % of the training "
         f"set held out when the model was trained, seed 0): highest validation accuracy, ties broken by validation loss. The "
         f"chosen models were then evaluated once on {r['n_test']:,} test images. Sweep {r['sweep_seconds']:.0f} s, test "
         f"{r['test_seconds']:.0f} s. Raw numbers: `{json_name}`" + (f"; the McNemar counts were added by `{r['paired_command']}` "
         "(same chosen settings, per-image test correctness)" if r.get('paired_command') else '') + f". The paper: {PAPER}.", '',
         *md_table(rows, ['method', 'chosen on validation (stage, setting)', 'val acc', 'test acc', 'test change vs original',
                          *(['test images fixed / broken vs original', 'exact McNemar p'] if pt else [])]), '',
         f"- Best test change of any low-pass variant: {100*max(gains[:len(lp)]):+.2f} points; of the singular-value scaling: "
         f"{100*gains[-1]:+.2f} points. " + ('**No modulation improves test accuracy by more than 0.1 points: the paper\'s '
                                            'improvement does not reproduce at our scale.**' if max(gains) <= 0.001 else
                                            f"The largest gain is {100*max(gains):.2f} points ({round(max(gains) * r['n_test'])} images)" +
                                            (f", and no change is significant (exact McNemar test on the same test images, smallest p = "
                                             f"{min(x['p'] for x in pt.values()):.2f}, before any correction for {len(pt)} comparisons): "
                                             "**the paper's improvement does not reproduce at our scale** (one model, one dataset)."
                                             if pt and min(x['p'] for x in pt.values()) >= 0.05 else
                                             '; see the McNemar column for whether it is more than noise.' if pt else
                                             '; no significance test was run.')),
         f"- S_ratio of the chosen `{t['method']}` model ({t['group']}, D0 = {t['setting']:g}) minus the original's: "
         + (f"the {len(diffs)} filtered layers change by {min(diffs):+.4f} to {max(diffs):+.4f}, the others by 0; " if diffs else 'no layer changes; ')
         + f"late-half mean `s_ratio_late_mean` = {t['s_ratio_late_mean']:+.4f}.",
         f"- On the first {r['n_rob']:,} test images: FGSM (ε = 2/255) adversarial accuracy {pct(rob['original']['fgsm_adv_acc'])} % "
         f"(original) vs {pct(rob[t['method']]['fgsm_adv_acc'])} % (filtered); mean corruption accuracy (7 kinds, severity 3) "
         f"{pct(rob['original']['ood_mean_acc'])} % vs {pct(rob[t['method']]['ood_mean_acc'])} %. One model each.",
         "- Along the line original → filtered the test loss goes " + ' → '.join(f"{x['loss']:.4f}" for x in line) +
         f" at α = {', '.join(format(x['alpha'], 'g') for x in line)}; conv-weight RMSE against the original at α = 1: {line[-1]['recon_error']:.5f}.", '',
         '### Validation accuracy of each sweep (one stage filtered at a time)', '',
         *md_table([[v, f'{d0:g}', *[pct(x) for x in row]] for (v, d0), row in zip(piv.index, piv.values)],
                   ['low-pass variant', 'D0', *piv.columns]), '',
         f"Unmodified model on the same validation images: {pct(o['val_acc'])} %.", '',
         *md_table([[f'{f:g}', *[pct(x) for x in row]] for f, row in zip(svp.index, svp.values)], ['last-15 SV factor', *svp.columns]), '']
    return L


def render_perf(p:dict, json_name:str)->list[str]:
    med = lambda v: statistics.median(v)
    s = {k: med(v) for k, v in p['s_ratio'].items()}; i = {k: med(v) for k, v in p['interpolate'].items()}
    head = (f"Imported from `bench/results/analysis_bench.md` (in git history, commit 8aacb80), which `{p['command']}` generated on "
            f"{p['measured']} ({p['note']}); " if p.get('imported') else '')
    L = ['## Performance', '',
         f"{head}medians of {p['clock']} over {p['repeats']} interleaved repeats ({p['sv_repeats']} for the SVD check), one torch "
         f"thread on a shared machine. Raw timings: `{json_name}`. {environment_line(p.get('env'))}", '',
         *md_table([
             [f"`s_ratio_per_layer` on ResNet-56 ({p['n_layers']} convs, float64) / bare batched `svdvals` on the pre-stacked matrices",
              f"{s['ours']:.4f} s / {s['bare']:.4f} s = **{s['ours']/s['bare']:.2f}×**", '≤ 1.3×', 'yes' if s['ours'] / s['bare'] <= 1.3 else '**no**'],
             [f"`interpolate`, 21 alphas, {p['n_test']:,} test images / 21 × `train.evaluate`",
              f"{i['ours']:.2f} s / {i['plain']:.2f} s = **{i['ours']/i['plain']:.2f}×**", '≤ 1.2×', 'yes' if i['ours'] / i['plain'] <= 1.2 else '**no**'],
             ['`loss_landscapes.linear_interpolation` (same 21 steps and batches) / `interpolate`: grad enabled (as its `Loss` metric runs), '
              'metric under `no_grad`, models in channels-last',
              f"{i['ll']/i['ours']:.2f}× / {i['ll_nograd']/i['ours']:.2f}× / {i['ll_cl']/i['ours']:.2f}×", '> 1 (we are faster)',
              'yes' if min(i['ll'], i['ll_nograd']) > i['ours'] else '**no**']],
             ['check', 'measured', 'bound', 'met']), '',
         'All repeats (s): ' + ', '.join(f"{k} {[round(x, 2) for x in v]}" for k, v in p['interpolate'].items()) + '.', '',
         f"`train.evaluate` (which `interpolate` calls) runs conv weights in channels-last layout on the CPU; given channels-last "
         f"copies of the models, `loss_landscapes` takes {i['ll_cl']:.2f} s against our {i['ours']:.2f} s, so the advantage over it "
         "is the memory layout, not the interpolation.", '']
    return L


def render(out:Path, cmd:str, quick:bool):
    name = 'analysis_quick' if quick else 'analysis'
    L = []
    if (p := out / f'{name}.json').exists():
        r = read_json(p); L += [f"Model: `{rel(TARGET)}` (the reference ResNet-20, `train_resnet20.md`). "
                                f"Sweeps computed by `{r['command']}`. {environment_line(r.get('env'))}", ''] + render_sweeps(r, rel(p))
    if (p := out / 'analysis_perf.json').exists(): L += render_perf(read_json(p), rel(p))
    write_results(out / f'{name}.md', 'Weight analysis of the reference ResNet-20 (issue 3)', cmd, L or ['Nothing measured yet.'])


def main(argv=None):
    ap = bench_parser(__doc__, 'analysis', seeds=None)
    ap.add_argument('--n-val', type=int, default=2000, help='validation images for the sweeps')
    ap.add_argument('--n-test', type=int, default=None, help='test images for the one test evaluation (default all 10,000)')
    ap.add_argument('--n-rob', type=int, default=2000, help='test images for robustness and interpolation')
    ap.add_argument('--paired-only', action='store_true', help='add the McNemar test of the chosen settings to an existing analysis.json')
    ap.add_argument('--perf', action='store_true', help='also re-time the analysis layer (writes analysis_perf.json)')
    ap.add_argument('--repeats', type=int, default=3); ap.add_argument('--sv-repeats', type=int, default=30)
    ap.add_argument('--cpu-clock', action='store_true', help='time with process CPU time instead of wall time')
    a = parse(ap, argv)
    if a.quick: a.n_val, a.n_test, a.n_rob, a.repeats, a.sv_repeats = 300, 1000, 300, 1, 3
    name = 'analysis_quick' if a.quick else 'analysis'
    if a.paired_only:   # the settings stay those chosen on validation; only per-image test correctness is added
        p = a.out / f'{name}.json'; r = read_json(p); model, dls = fashion_target(resolve_device(a.device))
        test = _batches(dls.test.dataset, r['n_test'])
        r['paired'] = paired_test({c['method']: model if c['group'] is None else rebuild(model, c) for c in r['chosen']}, test)
        r['paired_command'] = a.command; write_json(p, r)
    elif not a.render_only:
        device = resolve_device(a.device)
        write_json(a.out / f'{name}.json', dict(command=a.command, **sweeps(a.n_val, a.n_test, a.n_rob, device)))
        if a.perf: write_json(a.out / 'analysis_perf.json', dict(command=a.command, **perf(a.repeats, a.sv_repeats, 2000 if not a.quick else 500, a.cpu_clock)))
    render(a.out, a.command, a.quick)


if __name__ == '__main__': main()

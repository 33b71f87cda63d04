"""Benchmarks of the analysis layer (issue 3); results go to bench/results/analysis.md.

1. `spectral.s_ratio_per_layer` on ResNet-56 vs a bare batched `torch.linalg.svdvals` over the same matrices
   (already grouped by shape, stacked and in float64: the floor our function can reach). Target <= 1.3x.
2. `landscape.interpolate` with 21 alphas on 2,000 Fashion-MNIST test images vs 21 plain `train.evaluate` passes
   on the same preloaded batches (target <= 1.2x) and vs `loss_landscapes.linear_interpolation` (PyPI
   loss-landscapes) at the same steps and batches, side by side in one run.

torch.set_num_threads(1) throughout: the machine is shared and one thread keeps timings comparable.
Usage: .venv/bin/python bench/analysis.py [--n-test 2000] [--repeats 3] [--out bench/results/analysis_bench.md]
"""
import argparse, copy, os, sys, time, statistics, platform
from pathlib import Path
import numpy as np
import torch
import torch.nn.functional as F
torch.set_num_threads(1)

from weightnb.models import resnet20, resnet56
from weightnb.models import load_model
from weightnb.data import load_dataset
from weightnb.train import evaluate
from weightnb.spectral import s_ratio_per_layer, modulate_model
from weightnb.landscape import interpolate

def timeit(fn, repeats, clock=time.perf_counter):
    ts = []
    for _ in range(repeats):
        t0 = clock(); fn(); ts.append(clock() - t0)
    return statistics.median(ts), ts

CLOCK = time.perf_counter   # --cpu switches to time.process_time (robust to other jobs on a shared machine)

def bench_s_ratio(repeats):
    torch.manual_seed(0); m = resnet56(100, in_chans=3)
    mats = [mod.weight.detach().flatten(1) for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)]
    groups = {}
    for w in mats: groups.setdefault(tuple(w.shape), []).append(w)
    stacks = [torch.stack(ws).double() for ws in groups.values()]
    def bare(): return [torch.linalg.svdvals(s) for s in stacks]
    def ours(): return s_ratio_per_layer(m)
    ours(); bare()   # warm up
    # interleave the two so drift in machine load hits both equally
    to, tb = [], []
    for _ in range(repeats):
        to.append(timeit(ours, 1, CLOCK)[0]); tb.append(timeit(bare, 1, CLOCK)[0])
    return dict(n_layers=len(mats), n_shapes=len(stacks), ours=statistics.median(to), bare=statistics.median(tb))

def batched_loss(batches, no_grad=False):
    "A loss_landscapes Metric over several (x, y) batches (its own `Loss` takes one batch)."
    from loss_landscapes.metrics import Metric
    class BatchedLoss(Metric):
        def __call__(self, wrapper):
            ctx = torch.no_grad() if no_grad else torch.enable_grad()
            with ctx: return sum(F.cross_entropy(wrapper.forward(x), y, reduction='sum').item() for x, y in batches)
    return BatchedLoss()

def bench_interpolate(n_test, repeats, weights):
    import loss_landscapes
    ds = load_dataset('fashion-mnist', 'test'); ds = ds.subset(torch.arange(n_test))
    if weights and Path(weights).exists(): a = load_model(weights); src = weights
    else: torch.manual_seed(0); a = resnet20(10, in_chans=1); src = 'random init (trained weights not found)'
    a.eval(); b = modulate_model(a, 0.5)   # any model of the same architecture
    batches = [(ds.x[i:i + 500], ds.y[i:i + 500]) for i in range(0, n_test, 500)]
    alphas = np.linspace(0, 1, 21)
    def plain(): return [evaluate(a, batches) for _ in alphas]
    def ours(): return interpolate(a, b, alphas, batches)
    def ll(): return loss_landscapes.linear_interpolation(a, b, batched_loss(batches), steps=21, deepcopy_model=True)
    def ll_ng(): return loss_landscapes.linear_interpolation(a, b, batched_loss(batches, True), steps=21, deepcopy_model=True)
    # the same loss_landscapes call on NHWC copies: shows how much of the gap is the memory layout evaluate uses on the CPU
    a_cl, b_cl = (copy.deepcopy(m).to(memory_format=torch.channels_last) for m in (a, b))
    def ll_cl(): return loss_landscapes.linear_interpolation(a_cl, b_cl, batched_loss(batches), steps=21, deepcopy_model=True)
    res = {k: [] for k in ('plain', 'ours', 'll', 'll_nograd', 'll_cl')}
    for _ in range(repeats):
        for k, fn in (('plain', plain), ('ours', ours), ('ll', ll), ('ll_nograd', ll_ng), ('ll_cl', ll_cl)):
            res[k].append(timeit(fn, 1, CLOCK)[0])
    out = {k: statistics.median(v) for k, v in res.items()}
    out.update(src=src, n_test=n_test, all=res)
    return out

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--n-test', type=int, default=2000); p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--sv-repeats', type=int, default=30)
    p.add_argument('--weights', default='bench/results/resnet20_fashion_mnist.safetensors')
    p.add_argument('--out', default='bench/results/analysis_bench.md')  # analysis.md (the summary) is edited by hand from this
    p.add_argument('--cpu', action='store_true', help='time with process CPU time instead of wall time')
    a = p.parse_args()
    if a.cpu: CLOCK = time.process_time
    s = bench_s_ratio(a.sv_repeats)
    lines = [f"# analysis benchmark ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", '',
             f"command: `.venv/bin/python {' '.join(sys.argv)}`", '',
             f"torch {torch.__version__}, {platform.processor() or platform.machine()} ({os.cpu_count()} logical CPUs), torch.set_num_threads(1), "
             f"shared 2-core machine (other jobs running), medians of {'process CPU time' if a.cpu else 'wall time'}.", '',
             f"## s_ratio_per_layer on ResNet-56 ({s['n_layers']} conv layers, {s['n_shapes']} shapes), {a.sv_repeats} repeats", '',
             '| method | median s | ratio |', '|---|---|---|',
             f"| bare batched svdvals (float64, pre-stacked) | {s['bare']:.4f} | 1.00 |",
             f"| s_ratio_per_layer (float64) | {s['ours']:.4f} | {s['ours']/s['bare']:.2f} |", '']
    print('\n'.join(lines), flush=True)
    r = bench_interpolate(a.n_test, a.repeats, a.weights)
    lines2 = [f"## 21-point interpolation, ResNet-20, {r['n_test']} Fashion-MNIST test images ({-(-r['n_test'] // 500)} batch(es) of <= 500), {a.repeats} repeats", '',
              f"weights: {r['src']}", '',
              '| method | median s | ratio to 21 evaluate passes |', '|---|---|---|',
              f"| 21 x train.evaluate | {r['plain']:.2f} | 1.00 |",
              f"| landscape.interpolate (bn='interpolate') | {r['ours']:.2f} | {r['ours']/r['plain']:.2f} |",
              f"| loss_landscapes.linear_interpolation (grad enabled, as its Loss metric runs) | {r['ll']:.2f} | {r['ll']/r['plain']:.2f} |",
              f"| loss_landscapes.linear_interpolation (metric under torch.no_grad) | {r['ll_nograd']:.2f} | {r['ll_nograd']/r['plain']:.2f} |",
              f"| loss_landscapes.linear_interpolation on channels-last copies of the models (grad enabled) | {r['ll_cl']:.2f} | {r['ll_cl']/r['plain']:.2f} |", '',
              'all runs (s): ' + ', '.join(f"{k}={[round(x, 2) for x in v]}" for k, v in r['all'].items()), '']
    print('\n'.join(lines2), flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text('\n'.join(lines + lines2))

"""Re-basin bench: weight-matching time and sweeps, and linear mode connectivity before vs after alignment.

    python bench/rebasin.py --render-only   # rebuild bench/results/rebasin.md from bench/results/rebasin.json
    python bench/rebasin.py                 # full run (~15-20 min on one thread; trained models are cached)
    python bench/rebasin.py --quick         # tiny data, 2 models per architecture (~1 min)

The populations are trained by this script (cached in bench/_out/rebasin/, reused on reruns with the same settings);
they are NOT the 120-model reference zoo of bench/zoo.py:
- zoo CNN small (2464 params): `--n-cnn` models, Fashion-MNIST, `--n-train` training images, `--cnn-epochs` epochs,
  Adam lr 3e-3 one-cycle, seeds 0.. (init and data order differ, the data subset is the same);
- zoo CNN large adapted to 1x28x28 (`ZooCNN('large', in_chans=1, img_size=28)`, 9665 params): same recipe;
- ResNet-20 (option A, 1 input channel): `--n-resnet` models, same subset, `--resnet-epochs` epochs, SGD lr 0.1
  one-cycle, wd 5e-4, no augmentation.
For every pair (A, B) it aligns B to A with `weight_matching` and evaluates the test loss along
theta(alpha) = (1 - alpha) theta_A + alpha theta_B' (`weightnb.landscape.interpolate`) at `--alphas` evenly spaced
alphas, with B' = B (before) and B' = aligned B (after). For ResNets the BN running statistics of every interpolated
model (endpoints included) are re-estimated on `--bn-batches` training batches of 128 before evaluation.
Barrier = max over alpha of [loss(alpha) - ((1 - alpha) loss(0) + alpha loss(1))].
"""
from __future__ import annotations
import itertools, json, time
from pathlib import Path

import torch

from _common import bench_parser, parse, read_json, write_json, write_results, environment, environment_line, md_table, rel, ROOT
from weightnb.core import seed_everything, save_weights, load_weights, write_text_atomic
from weightnb.data import load_dataset, train_val_split, make_loader
from weightnb.landscape import interpolate
from weightnb.models import zoo_cnn_small, resnet20, ZooCNN
from weightnb.train import fit, evaluate, preload_batches
from weightnb.rebasin import permutation_spec, weight_matching, apply_permutation, random_permutation

CACHE = ROOT / 'bench' / '_out' / 'rebasin'
KINDS = ('cnn', 'cnn_large', 'resnet20')
NAMES = dict(cnn='zoo CNN small', cnn_large='zoo CNN large (1x28x28)', resnet20='ResNet-20 (A)')
CONFIG_KEYS = ('n_cnn', 'n_resnet', 'n_train', 'n_test', 'cnn_epochs', 'resnet_epochs', 'alphas', 'bn_batches')


def make(kind:str)->torch.nn.Module:
    if kind == 'cnn': return zoo_cnn_small()
    if kind == 'cnn_large': return ZooCNN('large', in_chans=1, img_size=28)
    return resnet20(10, in_chans=1, shortcut='A')


def trained(kind:str, seed:int, cfg:dict, train_ds, test_batches):
    "Train (or load from the cache) model `seed` of `kind`; returns (model, seconds, test metrics)."
    epochs = cfg['resnet_epochs'] if kind == 'resnet20' else cfg['cnn_epochs']
    f = CACHE / f"{kind}_s{seed}_n{cfg['n_train']}_e{epochs}.safetensors"
    model = make(kind)
    if f.exists():
        model.load_state_dict(load_weights(f)); secs = float(json.loads(f.with_suffix('.json').read_text())['seconds'])
    else:
        seed_everything(seed); model = make(kind)
        dl = make_loader(train_ds, 128, shuffle=True, seed=seed, drop_last=True)
        t0 = time.perf_counter()
        if kind != 'resnet20': fit(model, dl, epochs, opt='adam', lr=3e-3, wd=0., progress=False, device='cpu')
        else: fit(model, dl, epochs, opt='sgd', lr=0.1, wd=5e-4, progress=False, device='cpu')
        secs = time.perf_counter() - t0
        save_weights(model, f); write_text_atomic(f.with_suffix('.json'), json.dumps(dict(seconds=secs)))
    return model.eval(), secs, evaluate(model, test_batches)


def barrier(losses, alphas)->float:
    return max(l - ((1 - a) * losses[0] + a * losses[-1]) for l, a in zip(losses, alphas))


def run_kind(kind:str, cfg:dict, train_ds, test_batches, bn_batches)->dict:
    n = cfg['n_resnet'] if kind == 'resnet20' else cfg['n_cnn']
    t_kind = time.perf_counter()
    models = [trained(kind, s, cfg, train_ds, test_batches) for s in range(n)]
    print(f"{kind}: trained/loaded {n} models, test acc {[round(m[2]['acc'], 3) for m in models]}", flush=True)
    spec = permutation_spec(models[0][0], (1, 28, 28))
    alphas = torch.linspace(0, 1, cfg['alphas']).tolist()
    bn = dict(bn='reestimate', bn_data=bn_batches) if kind == 'resnet20' else {}
    def line(a, sd_b):
        b = make(kind).eval(); b.load_state_dict(sd_b)
        r = interpolate(a, b, alphas, test_batches, **bn); return r.loss.tolist(), r.acc.tolist()
    pairs = []
    for i, j in itertools.combinations(range(n), 2):
        a, sd_a, sd_b = models[i][0], models[i][0].state_dict(), models[j][0].state_dict()
        t0 = time.perf_counter(); res = weight_matching(spec, sd_a, sd_b); t_wm = time.perf_counter() - t0
        sd_b_al = apply_permutation(spec, res.perm, sd_b)
        dist = lambda x, y: sum(((x[k] - y[k]).double() ** 2).sum() for k in x if x[k].is_floating_point()).sqrt().item()
        before, after = line(a, sd_b), line(a, sd_b_al)
        row = dict(pair=(i, j), wm_seconds=t_wm, sweeps=res.sweeps, converged=res.converged,
                   l2_before=dist(sd_a, sd_b), l2_after=dist(sd_a, sd_b_al),
                   barrier_before=barrier(before[0], alphas), barrier_after=barrier(after[0], alphas),
                   loss_before=before[0], loss_after=after[0], acc_before=before[1], acc_after=after[1])
        pairs.append(row)
        print(f"{kind} pair {i},{j}: wm {t_wm:.2f}s {res.sweeps} sweeps, barrier {row['barrier_before']:.4f} -> {row['barrier_after']:.4f}", flush=True)
    mean = lambda key: sum(r[key] for r in pairs) / len(pairs)
    sd0 = models[0][0].state_dict()   # exact recovery of a randomly permuted copy (timing of the self-match)
    shuffled = apply_permutation(spec, random_permutation(spec, sd0, torch.Generator().manual_seed(1)), sd0)
    t0 = time.perf_counter(); res = weight_matching(spec, sd0, shuffled); t_self = time.perf_counter() - t0
    back = apply_permutation(spec, res.perm, shuffled)
    return dict(n_models=n, n_params=sum(v.numel() for v in sd0.values() if v.is_floating_point()),
                train_seconds=[m[1] for m in models], test_acc=[m[2]['acc'] for m in models],
                test_loss=[m[2]['loss'] for m in models], n_perms=len(spec.perms), pairs=pairs,
                mean_barrier_before=mean('barrier_before'), mean_barrier_after=mean('barrier_after'),
                mean_wm_seconds=mean('wm_seconds'), mean_sweeps=mean('sweeps'), max_sweeps=max(r['sweeps'] for r in pairs),
                n_pairs_shrunk=sum(r['barrier_after'] < r['barrier_before'] for r in pairs),
                self_match=dict(seconds=t_self, sweeps=res.sweeps, exact=all(torch.equal(back[k], v) for k, v in sd0.items())),
                seconds=time.perf_counter() - t_kind)


def run(path:Path, cfg:dict, kinds:list[str], cmd:str)->dict:
    "Run each kind not already in `path` with the same config; results of other kinds are kept."
    old = read_json(path) if path.exists() else {}
    same = {k: v for k, v in old.get('args', {}).items() if k in CONFIG_KEYS} == cfg
    todo = [k for k in kinds if not (same and k in old)]
    if not todo: print('all kinds cached in', path); return old
    results = dict(old if same else {}, args=dict(old.get('args', {}) if same else {}, **cfg))
    t_start = time.perf_counter()
    train_all, test_all = load_dataset('fashion-mnist', 'train'), load_dataset('fashion-mnist', 'test')
    train_ds, _ = train_val_split(train_all, 0.1, seed=0)
    train_ds = train_ds.subset(torch.arange(cfg['n_train'])); test_ds = test_all.subset(torch.arange(cfg['n_test']))
    test_batches = preload_batches(make_loader(test_ds, 500), 'cpu')
    bn_batches = preload_batches(make_loader(train_ds, 128, shuffle=True, seed=123), 'cpu', cfg['bn_batches'])
    for kind in todo:
        results[kind] = run_kind(kind, cfg, train_ds, test_batches, bn_batches)
        results[kind].update(command=cmd, env=environment('cpu'))
    results['total_seconds'] = results.get('total_seconds', 0) + time.perf_counter() - t_start   # accumulates over --kinds runs
    write_json(path, results)
    return results


def render(path:Path, md:Path, cmd:str):
    r = read_json(path, 'rebasin results'); a = r['args']
    f = lambda xs: ', '.join(f'{x:.3f}' for x in xs)
    kinds = [k for k in KINDS if k in r]
    recipe = dict(cnn=f"{a['cnn_epochs']} epochs Adam (lr 3e-3, one-cycle)", cnn_large='same recipe',
                  resnet20=f"{a['resnet_epochs']} epochs SGD (lr 0.1 one-cycle, wd 5e-4, no augmentation)")
    env = next((r[k]['env'] for k in kinds if 'env' in r[k]), None) or r.get('machine')
    L = ['Weight matching (`weightnb.rebasin.weight_matching`, Git Re-Basin coordinate descent with '
         '`scipy.optimize.linear_sum_assignment`) and linear mode connectivity on the CPU, one torch thread; raw numbers in '
         f"`{rel(path)}`, total {r['total_seconds'] / 60:.1f} min including training. " +
         (environment_line(env) if env and 'cpu' in env else f"Machine as recorded: torch {env['torch']}, {env['platform']}, "
          f"{env['threads']} torch thread(s)." if env else environment_line(None)), '',
         f"**These populations are trained by `bench/rebasin.py` itself and are separate from the 120-model reference zoo of "
         f"`bench/zoo.py` (`zoo.md`).** Fashion-MNIST, the first {a['n_train']:,} images of the training split (seed-0 90 % split), "
         f"test loss on the first {a['n_test']:,} test images:", '',
         *[f"- {NAMES[k]} ({r[k]['n_params']:,} params): {r[k]['n_models']} models, seeds 0-{r[k]['n_models'] - 1}, {recipe[k]}; "
           f"test acc {f(r[k]['test_acc'])}." for k in kinds],
         '', 'These are short, under-trained runs.' if a['resnet_epochs'] < 10 else '', '',
         f"Barrier = max over {a['alphas']} evenly spaced α of loss(α) − [(1 − α) loss(0) + α loss(1)] along (1 − α) θ_A + α θ_B "
         + ('(`weightnb.landscape.interpolate`)' if all('command' in r[k] for k in kinds) else
            '(these JSON numbers predate the switch to `weightnb.landscape.interpolate`: an earlier version of this script applied '
            '`torch.lerp` to every floating tensor of the two state dicts itself, the same arithmetic)') +
         ', before (B as trained) and after aligning B to A. ResNet BN statistics are re-estimated '
         f"at every α (endpoints included) on {a['bn_batches']} training batches of 128. Means are over all pairs of one population.", '',
         *md_table([[NAMES[k], len(r[k]['pairs']), f"{r[k]['mean_barrier_before']:.4f}", f"{r[k]['mean_barrier_after']:.4f}",
                     f"{r[k]['n_pairs_shrunk']}/{len(r[k]['pairs'])}", f"{r[k]['mean_wm_seconds']:.3f} s", f"{r[k]['mean_sweeps']:.1f} / {r[k]['max_sweeps']}",
                     f"{r[k]['self_match']['seconds']:.3f} s, {r[k]['self_match']['sweeps']} sweeps, {'exact' if r[k]['self_match']['exact'] else '**not exact**'}"]
                    for k in kinds],
                   ['architecture', 'pairs', 'mean barrier before', 'mean barrier after', 'pairs where it shrank',
                    'weight matching time (mean)', 'sweeps (mean / max)', 'self-match of a permuted copy']), '',
         'Sweeps count the final sweep that found no improvement. Self-match: a randomly permuted copy of model 0 matched back to it.']
    if (e := path.with_name('rebasin_earlier.json')).exists():   # an earlier run of the same flags: how much the numbers move
        o = read_json(e); ks = [k for k in KINDS if k in o and k in r]
        L += ['', f"An earlier run with the same flags (`{rel(e)}`, made before the library changes since then and before this script "
              "used `landscape.interpolate`; its trained models differ, as their test accuracies show, and the cause was not "
              "investigated) gave:", '',
              *md_table([[NAMES[k], f(o[k]['test_acc']), f"{o[k]['mean_barrier_before']:.4f}", f"{o[k]['mean_barrier_after']:.4f}",
                          f"{o[k]['n_pairs_shrunk']}/{len(o[k]['pairs'])}"] for k in ks],
                        ['architecture', 'test acc', 'mean barrier before', 'mean barrier after', 'pairs where it shrank']), '',
              'Alignment lowers the mean barrier of every population in both runs; the per-pair counts and the ResNet-20 means move '
              'between runs, so with 3 ResNet-20 models (3 pairs) the ResNet-20 row is an illustration, not a measurement of an effect size.'
              if all(r[k]['mean_barrier_after'] < r[k]['mean_barrier_before'] and o[k]['mean_barrier_after'] < o[k]['mean_barrier_before'] for k in ks)
              else 'The two runs disagree on whether alignment lowers the mean barrier of some population.']
    write_results(md, 'Re-basin: weight matching and linear mode connectivity', cmd, L, sources=f'`{rel(path)}`')


def main(argv=None):
    ap = bench_parser(__doc__, 'rebasin', seeds=None)
    for k, v in dict(n_cnn=6, n_resnet=3, n_train=10000, n_test=1000, cnn_epochs=3, resnet_epochs=2, alphas=11, bn_batches=5).items():
        ap.add_argument('--' + k.replace('_', '-'), type=int, default=v)
    ap.add_argument('--kinds', default=','.join(KINDS), help='populations to run; results of other kinds already in the JSON are kept')
    a = parse(ap, argv)
    if a.quick: a.n_cnn, a.n_resnet, a.n_train, a.n_test, a.cnn_epochs, a.resnet_epochs, a.alphas, a.bn_batches = 2, 2, 1280, 256, 1, 1, 3, 1
    path = a.out / 'rebasin.json'
    if not a.render_only: run(path, {k: getattr(a, k) for k in CONFIG_KEYS}, a.kinds.split(','), a.command)
    render(path, a.out / 'rebasin.md', a.command)


if __name__ == '__main__': main()

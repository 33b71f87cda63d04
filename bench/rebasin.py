"""Re-basin bench: weight-matching time and sweeps on ResNet-20, and linear mode connectivity before vs after alignment.

    .venv/bin/python bench/rebasin.py                       # full run (~15-20 min on one thread)
    .venv/bin/python bench/rebasin.py --md bench/results/zoo.md   # also (re)write the "## Alignment" section there
    .venv/bin/python bench/rebasin.py --quick               # smoke run (tiny data, 2 models per architecture)

Trains its own small populations (cached in bench/_out/rebasin/, reused on reruns with the same settings):
- zoo CNN small (2464 params): `--n-cnn` models, Fashion-MNIST, `--n-train` training images, `--cnn-epochs` epochs,
  Adam lr 3e-3 one-cycle, seeds 0.. (init and data order differ, the data subset is the same);
- zoo CNN large adapted to 1x28x28 (`ZooCNN('large', in_chans=1, img_size=28)`, 9665 params): same recipe;
- ResNet-20 (option A, 1 input channel): `--n-resnet` models, same subset, `--resnet-epochs` epochs, SGD lr 0.1
  one-cycle, wd 5e-4, no augmentation.
For every pair (A, B) it aligns B to A with `weight_matching` and evaluates the test loss along
theta(alpha) = (1 - alpha) theta_A + alpha theta_B' for `--alphas` evenly spaced alphas, with B' = B (before) and
B' = aligned B (after). For ResNets the BN running statistics of every interpolated model (endpoints included) are
re-estimated on `--bn-batches` training batches of 128 before evaluation (averaged statistics are meaningless).
Barrier = max over alpha of [loss(alpha) - ((1 - alpha) loss(0) + alpha loss(1))].
Writes bench/results/rebasin.json.
"""
import argparse, itertools, json, platform, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from weightnb.core import seed_everything, save_weights, load_weights, write_text_atomic
from weightnb.data import load_dataset, train_val_split, make_loader
from weightnb.models import zoo_cnn_small, resnet20, ZooCNN
from weightnb.train import fit, evaluate, reestimate_bn, preload_batches
from weightnb.rebasin import permutation_spec, weight_matching, apply_permutation, random_permutation

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument('--n-cnn', type=int, default=6)
p.add_argument('--n-resnet', type=int, default=3)
p.add_argument('--n-train', type=int, default=10000)
p.add_argument('--n-test', type=int, default=1000)
p.add_argument('--cnn-epochs', type=int, default=3)
p.add_argument('--resnet-epochs', type=int, default=2)
p.add_argument('--alphas', type=int, default=11)
p.add_argument('--bn-batches', type=int, default=5)
p.add_argument('--kinds', default='cnn,cnn_large,resnet20', help='populations to run; results of other kinds already in --out are kept')
p.add_argument('--quick', action='store_true')
p.add_argument('--md', default=None, help='markdown file whose "## Alignment" section is (re)written')
p.add_argument('--md-only', action='store_true', help='only rewrite the --md section from the saved --out json')
p.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'rebasin.json'))
args = p.parse_args()
if args.quick: args.n_cnn, args.n_resnet, args.n_train, args.n_test, args.cnn_epochs, args.resnet_epochs, args.alphas, args.bn_batches = 2, 2, 1280, 256, 1, 1, 3, 1

def write_md(results, md):
    "(Re)write the '## Alignment' section of `md` from `results`."
    args = argparse.Namespace(**results['args'])
    c, r, cl = results['cnn'], results['resnet20'], results.get('cnn_large')
    f = lambda xs: ', '.join(f'{x:.3f}' for x in xs)
    section = f"""## Alignment

Weight matching (`weightnb.rebasin.weight_matching`, Git Re-Basin coordinate descent with
`scipy.optimize.linear_sum_assignment`) and linear mode connectivity, measured by
`.venv/bin/python bench/rebasin.py --md bench/results/zoo.md` (one CPU thread, `torch.set_num_threads(1)`,
shared 2-core machine; raw numbers in `bench/results/rebasin.json`, total {results['total_seconds'] / 60:.1f} min incl. training).

Populations trained by the script itself (small, on purpose): Fashion-MNIST, the first {args.n_train} images of the
training split, test loss on the first {args.n_test} test images.
- zoo CNN small ({c['n_params']} params): {c['n_models']} models, {args.cnn_epochs} epochs Adam (lr 3e-3, one-cycle),
  seeds 0-{c['n_models'] - 1}; test acc {f(c['test_acc'])}.
{'' if cl is None else f"- zoo CNN large on 1x28x28 ({cl['n_params']} params, channels 16/32/15): {cl['n_models']} models, same recipe; test acc {f(cl['test_acc'])}." + chr(10)}- ResNet-20 option A ({r['n_params']} params, 1 input channel): {r['n_models']} models, {args.resnet_epochs} epochs SGD
  (lr 0.1 one-cycle, wd 5e-4, no augmentation); test acc {f(r['test_acc'])}. These are short, under-trained runs.

Barrier = max over {args.alphas} evenly spaced alpha of loss(alpha) - [(1 - alpha) loss(0) + alpha loss(1)] along
(1 - alpha) theta_A + alpha theta_B, before (B as trained) and after aligning B to A. ResNet BN statistics are
re-estimated at every alpha (endpoints included) on {args.bn_batches} training batches of 128.

| architecture | pairs | mean barrier before | mean barrier after | pairs where it shrank | weight matching time (mean) | sweeps (mean / max) |
|---|---|---|---|---|---|---|
| zoo CNN small | {len(c['pairs'])} | {c['mean_barrier_before']:.4f} | {c['mean_barrier_after']:.4f} | {c['n_pairs_shrunk']}/{len(c['pairs'])} | {c['mean_wm_seconds']:.3f} s | {c['mean_sweeps']:.1f} / {c['max_sweeps']} |
{'' if cl is None else f"| zoo CNN large (1x28x28) | {len(cl['pairs'])} | {cl['mean_barrier_before']:.4f} | {cl['mean_barrier_after']:.4f} | {cl['n_pairs_shrunk']}/{len(cl['pairs'])} | {cl['mean_wm_seconds']:.3f} s | {cl['mean_sweeps']:.1f} / {cl['max_sweeps']} |" + chr(10)}| ResNet-20 (A) | {len(r['pairs'])} | {r['mean_barrier_before']:.4f} | {r['mean_barrier_after']:.4f} | {r['n_pairs_shrunk']}/{len(r['pairs'])} | {r['mean_wm_seconds']:.3f} s | {r['mean_sweeps']:.1f} / {r['max_sweeps']} |

Self-match (a randomly permuted copy matched back to its original): ResNet-20 {r['self_match']['seconds']:.2f} s,
{r['self_match']['sweeps']} sweeps, exact recovery: {r['self_match']['exact']}; zoo CNN {c['self_match']['seconds']:.3f} s,
{c['self_match']['sweeps']} sweeps, exact: {c['self_match']['exact']}. Sweeps count the final sweep that found no improvement.
"""
    md = Path(md); text = md.read_text() if md.exists() else ''
    if '## Alignment' in text:
        head, rest = text.split('## Alignment', 1)
        nxt = rest.find('\n## ')
        text = head + section + (rest[nxt + 1:] if nxt >= 0 else '')
    else: text = text.rstrip() + ('\n\n' if text else '') + section
    write_text_atomic(md, text)
    print(f"wrote the Alignment section of {md}")

if args.md_only:
    write_md(json.loads(Path(args.out).read_text()), args.md); raise SystemExit

from scipy.optimize import linear_sum_assignment  # imported before any timing
t_start = time.perf_counter()
train_all, test_all = load_dataset('fashion-mnist', 'train'), load_dataset('fashion-mnist', 'test')
train_ds, _ = train_val_split(train_all, 0.1, seed=0)
train_ds = train_ds.subset(torch.arange(args.n_train)); test_ds = test_all.subset(torch.arange(args.n_test))
test_batches = preload_batches(make_loader(test_ds, 500), 'cpu')
bn_batches = preload_batches(make_loader(train_ds, 128, shuffle=True, seed=123), 'cpu', args.bn_batches)
cache = Path(__file__).parent / '_out' / 'rebasin'

def make(kind):
    if kind == 'cnn': return zoo_cnn_small()
    if kind == 'cnn_large': return ZooCNN('large', in_chans=1, img_size=28)
    return resnet20(10, in_chans=1, shortcut='A')

def trained(kind, seed):
    "Train (or load from the cache) model `seed` of `kind`; returns (model, seconds, test metrics)."
    epochs = args.resnet_epochs if kind == 'resnet20' else args.cnn_epochs
    f = cache / f'{kind}_s{seed}_n{args.n_train}_e{epochs}.safetensors'
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

def lerp(a, b, alpha):
    return {k: (torch.lerp(a[k], b[k], alpha) if a[k].is_floating_point() else a[k]) for k in a}

def loss_curve(model, sd_a, sd_b, alphas, bn):
    losses, accs = [], []
    for alpha in alphas:
        model.load_state_dict(lerp(sd_a, sd_b, float(alpha)))
        if bn: reestimate_bn(model, bn_batches)
        r = evaluate(model, test_batches); losses.append(r['loss']); accs.append(r['acc'])
    return losses, accs

def barrier(losses, alphas):
    return max(l - ((1 - a) * losses[0] + a * losses[-1]) for l, a in zip(losses, alphas.tolist()))

old = json.loads(Path(args.out).read_text()) if Path(args.out).exists() and not args.quick else {}
results = dict(old, args=vars(args), machine=dict(threads=torch.get_num_threads(), torch=torch.__version__, platform=platform.platform()))
alphas = torch.linspace(0, 1, args.alphas)
for kind in args.kinds.split(','):
    n = args.n_resnet if kind == 'resnet20' else args.n_cnn
    t_kind = time.perf_counter()
    models = [trained(kind, s) for s in range(n)]
    print(f"{kind}: trained/loaded {n} models, test acc {[round(m[2]['acc'], 3) for m in models]}", flush=True)
    spec = permutation_spec(models[0][0], (1, 28, 28))
    pairs, probe = [], make(kind).eval()
    for i, j in itertools.combinations(range(n), 2):
        sd_a, sd_b = models[i][0].state_dict(), models[j][0].state_dict()
        t0 = time.perf_counter(); res = weight_matching(spec, sd_a, sd_b); t_wm = time.perf_counter() - t0
        sd_b_al = apply_permutation(spec, res.perm, sd_b)
        dist = lambda x, y: sum(((x[k] - y[k]).double() ** 2).sum() for k in x if x[k].is_floating_point()).sqrt().item()
        before = loss_curve(probe, sd_a, sd_b, alphas, bn=kind == 'resnet20')
        after = loss_curve(probe, sd_a, sd_b_al, alphas, bn=kind == 'resnet20')
        row = dict(pair=(i, j), wm_seconds=t_wm, sweeps=res.sweeps, converged=res.converged,
                   l2_before=dist(sd_a, sd_b), l2_after=dist(sd_a, sd_b_al),
                   barrier_before=barrier(before[0], alphas), barrier_after=barrier(after[0], alphas),
                   loss_before=before[0], loss_after=after[0], acc_before=before[1], acc_after=after[1])
        pairs.append(row)
        print(f"{kind} pair {i},{j}: wm {t_wm:.2f}s {res.sweeps} sweeps, L2 {row['l2_before']:.2f}->{row['l2_after']:.2f}, "
              f"barrier {row['barrier_before']:.4f} -> {row['barrier_after']:.4f}", flush=True)
    mean = lambda key: sum(r[key] for r in pairs) / len(pairs)
    # exact recovery of a randomly permuted copy (timing of the self-match)
    sd0 = models[0][0].state_dict()
    shuffled = apply_permutation(spec, random_permutation(spec, sd0, torch.Generator().manual_seed(1)), sd0)
    t0 = time.perf_counter(); res = weight_matching(spec, sd0, shuffled); t_self = time.perf_counter() - t0
    back = apply_permutation(spec, res.perm, shuffled)
    results[kind] = dict(n_models=n, n_params=sum(v.numel() for v in sd0.values() if v.is_floating_point()),
                         train_seconds=[m[1] for m in models], test_acc=[m[2]['acc'] for m in models],
                         test_loss=[m[2]['loss'] for m in models], n_perms=len(spec.perms), pairs=pairs,
                         mean_barrier_before=mean('barrier_before'), mean_barrier_after=mean('barrier_after'),
                         mean_wm_seconds=mean('wm_seconds'), mean_sweeps=mean('sweeps'),
                         max_sweeps=max(r['sweeps'] for r in pairs),
                         n_pairs_shrunk=sum(r['barrier_after'] < r['barrier_before'] for r in pairs),
                         self_match=dict(seconds=t_self, sweeps=res.sweeps,
                                         exact=all(torch.equal(back[k], v) for k, v in sd0.items())))
    print(kind, {k: v for k, v in results[kind].items() if k != 'pairs'}, flush=True)
    results[kind]['seconds'] = time.perf_counter() - t_kind
results['total_seconds'] = old.get('total_seconds', 0) + time.perf_counter() - t_start   # accumulates over --kinds runs
write_text_atomic(args.out, json.dumps(results, indent=1))
print(f"total {results['total_seconds'] / 60:.1f} min -> {args.out}")

if args.md: write_md(results, args.md)

"""Contrastive alignment of weights, datasets and results (issue 15): zoo, weight encoders, shared encoder, conditional sampling.

    python bench/align.py --zoo --n-models 360       # generate the zoo (resumable; one torch thread), then exit
    python bench/align.py                            # encoders, alignment, retrieval, sampling -> bench/results/align.md
    python bench/align.py --quick                    # the same code path on a slice of the zoo, tiny epochs (minutes)
    python bench/align.py --render-only              # rebuild align.md from the JSON
    python bench/align.py --encoders functional_pca64 --n-heldout 48 --n-train-fid 24 --max-sweep 6   # what the committed 360-model run did
                                                     # (plus baselines,span first; ~45 min wall at load 5-7 on the shared 2 cores)

The zoo (bench/results/_zoo_align/zoo, git-ignored) is the thesis's design at our scale; see the docstring of
`align_zoo_spec` and the results file for what was scaled down and why.
"""
import math, sys, time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_parser, parse, RunCache, write_results, write_json, read_json, md_table, environment_line, rel, ROOT

WORK = ROOT / 'bench' / 'results' / '_zoo_align'       # git-ignored (bench/results/_zoo*/)
ZOO_DIR = WORK / 'zoo'
N_OWN, N_NOISE = 300, 300                               # inputs per model for the fidelity measurements


def align_zoo_spec():
    """The thesis zoo at our scale. Thesis: ResNet-18 on 3-class ImageNet subsets, Adam or SGD, early checkpoint
    ~U(5, 10), final ~N(100, 15) clipped to [50, 150], 1000 models. Here: the 2,464-parameter zoo CNN on 3-class
    Fashion-MNIST subsets, Adam or SGD, early ~U(1, 2), final ~N(8, 1.5) clipped to [6, 11] epochs, 4,000 training
    images per model (of ~16,200 available), 500 validation and 1,000 test images: three models cost 3.7-5.7 s each on
    one core at low load (measured before generating), so ~360 models fit the ~40 core-minutes the project could spend.
    Under the shared machine's load (15-18) the zoo generated ~2-4 models per minute with two workers."""
    from weightnb.zoo import ZooSpec, thesis_policy
    return ZooSpec(arch='zoo_cnn_small', dataset='fashion-mnist', n_classes=3,
                   opt=['adam', 'sgd'], lr={'loguniform': [3e-4, 3e-2]}, wd={'loguniform': [1e-6, 1e-3]},
                   batch_size=[64, 128], schedule='constant',
                   checkpoints=thesis_policy(early=(1, 2), final_mean=8., final_std=1.5, final_clip=(6, 11)),
                   n_train=4000, n_val=500, n_test=1000, seed=15)


def generate(n_models:int):
    from weightnb.zoo import generate_zoo
    t0 = time.time(); zoo = generate_zoo(align_zoo_spec(), ZOO_DIR, n_models, progress=False)
    print(f'{len(zoo)} models in {ZOO_DIR}, {time.time() - t0:.0f} s', flush=True)


# ---------------------------------------------------------------------------------------------------------------
# splits and data
def splits(zoo, holdout_fraction:float=0.1, seed:int=0, n_max:int|None=None)->dict:
    "Class subsets held out entirely ('unseen'); the other members split by model into train / val / test ('seen')."
    members = list(zoo)[:n_max] if n_max else list(zoo)
    subsets = sorted({tuple(m.config['classes']) for m in members})
    rng = np.random.default_rng(seed)
    held = {subsets[i] for i in rng.choice(len(subsets), max(1, round(holdout_fraction * len(subsets))), replace=False)}
    rest = [m for m in members if tuple(m.config['classes']) not in held]
    perm = rng.permutation(len(rest)); n_tr, n_va = round(0.7 * len(rest)), round(0.15 * len(rest))
    pick = lambda idx: [rest[i] for i in sorted(idx)]
    return dict(train=pick(perm[:n_tr]), val=pick(perm[n_tr:n_tr + n_va]), test=pick(perm[n_tr + n_va:]),
                unseen=[m for m in members if tuple(m.config['classes']) in held], held_subsets=sorted(held))


class Data:
    "Per-class-subset images: each model's own training images, validation (as the zoo measured R) and test split."
    def __init__(self, spec):
        from weightnb.data import load_dataset
        self.spec, self.raw = spec, {s: load_dataset(spec.dataset, s) for s in ('train', 'test')}; self._c = {}
    def get(self, classes):
        from weightnb.data import class_subset, train_val_split
        classes = tuple(classes)
        if classes not in self._c:
            tr, va = train_val_split(class_subset(self.raw['train'], classes), self.spec.val_fraction, self.spec.seed)
            n_val = self.spec.n_val or len(va)
            self._c[classes] = dict(own=tr.x[:N_OWN], val=va.subset(torch.arange(min(n_val, len(va)))),
                                    test=class_subset(self.raw['test'], classes))
        return self._c[classes]


def evaluate_model(model, ds):
    from weightnb.train import evaluate
    from weightnb.data import make_loader
    r = evaluate(model, make_loader(ds, 1024)); return r['acc'], r['loss']


def spearman(a, b)->float:
    from scipy.stats import spearmanr
    return float(spearmanr(a, b).statistic) if len(a) > 2 else float('nan')


# ---------------------------------------------------------------------------------------------------------------
# the experiment
def make_encoders(quick:bool, probe_x, model, func_probe=None, func_steps:int=100):
    from weightnb.align import PCAAutoencoder, WeightAutoencoder, SANEEncoder, FunctionalEncoder
    from weightnb.sane import SANEConfig
    e = (lambda full, q: q if quick else full)
    return {
        'pca_thesis': lambda: PCAAutoencoder(latent_dim=32, n_components=16, hidden=(), epochs=e(500, 60), lr=1e-3, model=model),
        'pca64_mlp': lambda: PCAAutoencoder(latent_dim=64, n_components=64, hidden=(256,), epochs=e(500, 60), lr=1e-3, model=model),
        'weight_ae': lambda: WeightAutoencoder(model, latent_dim=64, hidden=(512,), epochs=e(300, 40), lr=1e-3, dropout=0.1),
        'weight_ae_behaviour': lambda: WeightAutoencoder(model, latent_dim=64, hidden=(512,), epochs=e(30, 3), lr=1e-3, dropout=0.1,
                                                         probe_x=probe_x, behaviour_weight=1.),
        'sane': lambda: SANEEncoder(model, SANEConfig(token_size=64, d_model=64, n_heads=4, n_layers=2, latent_dim=16, window=16, halo=4,
                                                      epochs=e(40, 3), windows_per_model=4, batch_size=64, lr=1e-3, n_perm=64)),
        'functional': lambda: FunctionalEncoder(model, func_probe, latent_dim=None, steps=e(func_steps, 10)),
        'functional_pca64': lambda: FunctionalEncoder(model, func_probe, latent_dim=64, steps=e(func_steps, 10)),
    }


def fidelity(enc, tri, data, noise_x, model_fn, n_max:int|None=None):
    "Mean agreement / correlation / cosine of reconstructions on each model's own training images and on noise (decoded once)."
    from weightnb.align import output_agreement
    sds, cls = tri['state_dicts'][:n_max], tri['classes'][:n_max]
    orig, rec = enc.models(sds, model_fn), enc.models(enc.reconstruct(sds), model_fn)
    own = [output_agreement(a, b, data.get(c)['own']) for a, b, c in zip(orig, rec, cls)]
    syn = [output_agreement(a, b, noise_x) for a, b in zip(orig, rec)]
    mean = lambda rows: {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    return dict(own=mean(own), noise=mean(syn), own_agreement_per_model=[r['agreement'] for r in own], n=len(sds)), rec


def sample_eval(models, pairs, data)->dict:
    "Test accuracy on D and achieved validation loss of one model per requested (D, R)."
    accs, losses = [], []
    for m, (cls, _) in zip(models, pairs):
        d = data.get(cls); accs.append(evaluate_model(m, d['test'])[0]); losses.append(evaluate_model(m, d['val'])[1])
    req = [r for _, r in pairs]
    return dict(test_acc=float(np.mean(accs)), achieved_loss=float(np.mean(losses)), spearman=spearman(req, losses),
                test_accs=accs, achieved=losses, requested=req)


def run_encoder(name, make, S, T, data, noise_x, model_fn, a, quick, n_train_fid:int=60, n_heldout:int|None=None, max_sweep:int=12):
    "Fit one weight encoder, measure fidelity, train the shared encoder, retrieval, conditional samples."
    from weightnb.align import Aligner, ResultsEncoder, retrieval_topk, output_agreement
    t0 = time.time(); enc = make()
    enc.fit(T['train']['state_dicts'], T['val']['state_dicts']); fit_s = time.time() - t0
    out = dict(encoder=name, fit_seconds=fit_s, ae_history=enc.history[-1:] if enc.history else [], latent_dim=None,
               encoder_cfg=dict(getattr(enc, 'cfg', {}), **({'n_probe': len(enc.probe_x)} if hasattr(enc, 'probe_x') else {})))
    nf = 24 if quick else n_heldout; out['fidelity'], recs = {}, {}
    for s in ('test', 'unseen'): out['fidelity'][s], recs[s] = fidelity(enc, T[s], data, noise_x, model_fn, nf)
    out['fidelity']['train'] = fidelity(enc, T['train'], data, noise_x, model_fn, 24 if quick else n_train_fid)[0]
    out['fidelity_seconds'] = time.time() - t0 - fit_s
    Z = {s: enc.encode(T[s]['state_dicts']) for s in ('train', 'val', 'test', 'unseen')}; out['latent_dim'] = Z['train'].shape[1]
    if hasattr(enc, 'signatures'):
        out['signature_residual'] = signature_residual(enc, T); out['fidelity_start'] = {}
        for s in ('test', 'unseen'):                   # the decoder's starting point: the training checkpoint with the nearest latent
            sds = T[s]['state_dicts'][:nf]; start = enc.layout.unflatten(enc.memory[torch.cdist(Z[s][:len(sds)], enc.memory_z).argmin(1)])
            out['fidelity_start'][s] = float(np.mean([output_agreement(a, b, data.get(c)['own'])['agreement'] for a, b, c in
                                                      zip(enc.models(sds, model_fn), enc.models(start, model_fn), T[s]['classes'])]))
    res = ResultsEncoder.from_losses(T['train']['losses'], n_bins=16, dim=64)
    al = Aligner(T['train']['datasets'].shape[1], Z['train'].shape[1], res, hidden=(256,), dropout=0.1, temperature=0.1,
                 regression_weight=1., weight_encoder=enc)
    t0 = time.time()
    hist = al.fit(Z['train'], T['train']['datasets'], T['train']['losses'], val=(Z['val'], T['val']['datasets'], T['val']['losses']),
                  epochs=20 if quick else 150, lr=1e-3, batch_size=64)
    out['aligner_seconds'] = time.time() - t0; out['aligner_history'] = hist
    out['retrieval'] = {}
    for s in ('test', 'unseen'):
        al.eval(); q = al(T[s]['datasets'], T[s]['losses']).detach()
        out['retrieval'][s] = retrieval_topk(q, al.standardise(Z[s]), ks=(1, 5))
    out['samples'] = {}; t0 = time.time()
    for s in ('test', 'unseen'):
        pairs = list(zip(T[s]['classes'], T[s]['losses'].tolist()))[:nf]       # the checkpoints whose fidelity was measured
        out['samples'][s] = sample_eval(batch_sample(al, T[s]['datasets'][:nf], T[s]['losses'][:nf], model_fn), pairs, data)
        if len(recs[s]) == len(pairs): out['samples'][s + '_oracle_reconstruction'] = sample_eval(recs[s], pairs, data)   # decode the true latent
    out['sweep'] = loss_sweep(al, T, data, model_fn, max_sweep); out['sample_seconds'] = time.time() - t0
    return out


def signature_residual(enc, T, ks=(16, 64, 128))->dict:
    "Share of held-out probe-logit signatures outside the span of the top-k principal directions of the training signatures (and of all)."
    sig = lambda s: enc.signatures(enc.layout.flatten(T[s]['state_dicts']))
    St = sig('train'); mu = St.mean(0); _, _, Vh = torch.linalg.svd(St - mu, full_matrices=False); out = {}
    for s in ('test', 'unseen'):
        Y = sig(s) - mu
        out[s] = {str(k): float((Y - Y @ Vh[:k].T @ Vh[:k]).norm() / Y.norm()) for k in [*ks, len(Vh)] if k <= len(Vh)}
    return out


def sample_subset(x:dict, n:int)->dict:
    "A `sample_eval` result restricted to its first `n` rows."
    a, l, q = x['test_accs'][:n], x['achieved'][:n], x['requested'][:n]
    return dict(test_acc=float(np.mean(a)), achieved_loss=float(np.mean(l)), spearman=spearman(q, l), test_accs=a, achieved=l, requested=q)


def batch_sample(al, d, losses, model_fn):
    "One model per (dataset embedding, loss) row: `conditional_sample` without noise, all rows decoded in one batch."
    enc = al.weight_encoder; return enc.models(enc.decode(al.project(d, losses)), model_fn)


def loss_sweep(al, T, data, model_fn, max_subsets:int=12)->dict:
    "Per held-out class subset: request the 10/30/50/70/90 % quantiles of the training losses; Spearman(requested, achieved)."
    qs = np.quantile(T['train']['losses'].numpy(), [0.1, 0.3, 0.5, 0.7, 0.9]).tolist(); out = {}
    for s in ('test', 'unseen'):
        rhos, seen = [], {}
        for cls, dvec in zip(T[s]['classes'], T[s]['datasets']): seen.setdefault(cls, dvec)
        seen = dict(list(seen.items())[:max_subsets])
        models = batch_sample(al, torch.stack([d for d in seen.values() for _ in qs]), torch.tensor(qs * len(seen)), model_fn)
        for i, cls in enumerate(seen):
            ach = [evaluate_model(m, data.get(cls)['val'])[1] for m in models[i * len(qs):(i + 1) * len(qs)]]
            rhos.append(spearman(qs, ach))
        out[s] = dict(mean_spearman=float(np.nanmean(rhos)) if rhos else float('nan'), n_subsets=len(rhos), requested=qs)
    return out


def baselines(T, data, model_fn)->dict:
    "Random init, the zoo's mean model (plain and permutation-aligned) and nearest-neighbour retrieval from the training zoo."
    from weightnb.align import WeightLayout
    from weightnb.rebasin import permutation_spec, weight_matching, apply_permutation
    from weightnb.core import seed_everything
    lay = WeightLayout(T['train']['state_dicts'][0]); tr = T['train']
    spec = permutation_spec(model_fn()); ref = tr['state_dicts'][0]
    aligned = [apply_permutation(spec, weight_matching(spec, ref, sd).perm, sd) for sd in tr['state_dicts']]
    means = {'zoo_mean': lay.unflatten(lay.flatten(tr['state_dicts']).mean(0, keepdim=True))[0],
             'zoo_mean_aligned': lay.unflatten(lay.flatten(aligned).mean(0, keepdim=True))[0]}
    D = torch.nn.functional.normalize(tr['datasets'], dim=1); out = {}
    def load(sd): m = model_fn(); m.load_state_dict(sd); return m
    for s in ('test', 'unseen'):
        pairs = list(zip(T[s]['classes'], T[s]['losses'].tolist())); r = {}
        def fresh(i): seed_everything(1000 + i); return model_fn()
        r['random_init'] = sample_eval([fresh(i) for i in range(len(pairs))], pairs, data)
        for k, sd in means.items():
            m = model_fn(); m.load_state_dict(sd); r[k] = sample_eval([m] * len(pairs), pairs, data)
        nn_models = []
        for dvec, (_, loss) in zip(T[s]['datasets'], pairs):
            sim = D @ torch.nn.functional.normalize(dvec, dim=0)
            cand = (sim >= sim.max() - 1e-6).nonzero().squeeze(1)            # the closest dataset(s) in the training zoo
            j = cand[(tr['losses'][cand] - loss).abs().argmin()]            # then the closest loss
            m = model_fn(); m.load_state_dict(tr['state_dicts'][int(j)]); nn_models.append(m)
        r['nearest_neighbour'] = sample_eval(nn_models, pairs, data)
        r['original'] = sample_eval([load(sd) for sd in T[s]['state_dicts']], pairs, data)     # the held-out checkpoints themselves
        out[s] = r
    return out


def span_ceiling(T, data, model_fn)->dict:
    "The most generous linear encoder: held-out weights projected on the affine span of all training checkpoints (latent = n_train - 1)."
    from weightnb.align import WeightLayout, output_agreement
    from weightnb.rebasin import permutation_spec, weight_matching, apply_permutation
    spec = permutation_spec(model_fn()); ref = T['train']['state_dicts'][0]; lay = WeightLayout(ref); out = {}
    for aligned in (False, True):
        al = (lambda sds: [apply_permutation(spec, weight_matching(spec, ref, sd).perm, sd) for sd in sds]) if aligned else (lambda sds: sds)
        X = lay.flatten(al(T['train']['state_dicts'])).double(); mu = X.mean(0); U, S, Vh = torch.linalg.svd(X - mu, full_matrices=False)
        for s in ('test', 'unseen'):
            sds = al(T[s]['state_dicts']); Y = lay.flatten(sds).double() - mu
            R = (Y @ Vh.T @ Vh + mu).float(); rows = []
            for sd, rec, cls in zip(sds, lay.unflatten(R), T[s]['classes']):
                a, b = model_fn(), model_fn(); a.load_state_dict(sd); b.load_state_dict(rec)
                rows.append(output_agreement(a, b, data.get(cls)['own']))
            out[f"{'aligned' if aligned else 'raw'}_{s}"] = dict({k: float(np.mean([r[k] for r in rows])) for k in rows[0]},
                residual=float((Y - (R.double() - mu)).norm() / Y.norm()))
    return out


def span_curve(zoo, model_fn, sizes=(10, 20, 40, 80, 160, 320))->dict:
    "Residual of held-out weights outside the span of n training checkpoints, for growing n (all finished members of the zoo)."
    from weightnb.align import WeightLayout, zoo_triplets
    from weightnb.rebasin import permutation_spec, weight_matching, apply_permutation
    members = list(zoo); perm = np.random.default_rng(0).permutation(len(members))
    held = [members[i] for i in perm[:20]]; pool = [members[i] for i in perm[20:]]
    H, P = zoo_triplets(held)['state_dicts'], zoo_triplets(pool)['state_dicts']
    spec = permutation_spec(model_fn()); ref = P[0]; lay = WeightLayout(ref); out = dict(n_zoo=len(members), n_heldout=len(H), rows=[])
    align = lambda sds: [apply_permutation(spec, weight_matching(spec, ref, sd).perm, sd) for sd in sds]
    data = {'raw': (lay.flatten(P).double(), lay.flatten(H).double()), 'aligned': (lay.flatten(align(P)).double(), lay.flatten(align(H)).double())}
    for n in [n for n in sizes if n <= len(P)] + ([len(P)] if len(P) not in sizes else []):
        row = dict(n_train=n)
        for k, (X, Y) in data.items():
            mu = X[:n].mean(0); _, _, Vh = torch.linalg.svd(X[:n] - mu, full_matrices=False); Yc = Y - mu
            row[k] = float((Yc - Yc @ Vh.T @ Vh).norm() / Yc.norm())
        out['rows'].append(row)
    return out


# ---------------------------------------------------------------------------------------------------------------
# results file
ENCODER_NOTES = {
    'pca_thesis': 'thesis: per-parameter mean / centre / IncrementalPCA (16 comps), linear AE (no hidden layer), latent 32',
    'pca64_mlp': "thesis's note: 64 PCA comps per parameter, MLP AE (256 hidden), latent 64",
    'weight_ae': 'aligned (weight matching), standardised flat weights, MLP AE 512 hidden, latent 64',
    'weight_ae_behaviour': 'weight_ae + behaviour loss (logit MSE on probe images)',
    'sane': 'SANE, token size 64, d_z 16 per token, aligned; latent = all token latents flattened',
    'functional': 'FunctionalEncoder: latent = logits on 256 fixed Fashion-MNIST probe images (768 numbers, no compression); '
                  'decode = 100 Adam steps fitting the probe logits from the nearest training checkpoint',
    'functional_pca64': 'FunctionalEncoder: latent = top 64 principal components of the logits on 256 fixed Fashion-MNIST probe images; '
                        'decode = 100 Adam steps fitting those logits from the training checkpoint with the nearest latent',
}


def pct(v): return '—' if v is None or (isinstance(v, float) and math.isnan(v)) else f'{100 * v:.1f} %'

def curves_png(path, runs):
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, r in runs.items():
        h = r['aligner_history']; ep = [x['epoch'] for x in h]
        l, = ax.plot(ep, [x['train_nt_xent'] for x in h], '-', lw=1, label=f'{name} train')
        ax.plot(ep, [x['val_nt_xent'] for x in h], '--', lw=1, c=l.get_color(), label=f'{name} val')
    ax.axhline(math.log(64), c='k', ls=':', lw=1, label='chance log 64')
    ax.set_xlabel('epoch'); ax.set_ylabel('NT-Xent (batch 64)'); ax.legend(fontsize=6, ncol=2); fig.tight_layout()
    fig.savefig(path, dpi=90); plt.close(fig)

def render(a, cache):
    folder = a.out / 'align'; info = read_json(folder / 'info.json', 'align info')
    nz = info['n_zoo']; allr = cache.all(); base = allr.get(f'baselines_{nz}')
    runs = {v['encoder']: v for k, v in allr.items() if 'encoder' in v and k.endswith(f'_{nz}')}
    if base and runs:                                  # baselines on the same held-out checkpoints the encoders were sampled for
        ns = {g: min(len(r['samples'][g]['test_accs']) for r in runs.values()) for g in ('test', 'unseen')}
        base = {g: {k: sample_subset(x, ns[g]) for k, x in base[g].items()} for g in ('test', 'unseen')}
    older = {k: v for k, v in allr.items() if 'encoder' in v and not k.endswith(f'_{nz}') and v['encoder'] not in runs}
    env = next(iter(allr.values()), {}).get('env')
    L = ['## Zoo', '', align_zoo_spec.__doc__.replace('\n    ', ' ').strip(), '',
         f"Generated: {info['n_zoo']} models ({2 * info['n_zoo']} checkpoints, early + final), {info['n_subsets']} distinct class subsets; "
         f"mean final test accuracy {pct(info['zoo_test_acc_final'])}. Held out entirely (never seen by any encoder or the shared encoder): "
         f"{len(info['held_subsets'])} subsets {', '.join(str(tuple(c)) for c in info['held_subsets'])}. Split by model: "
         + ', '.join(f"{s} {info['n_models'][s]} models / {info['n_checkpoints'][s]} checkpoints" for s in ('train', 'val', 'test', 'unseen')) + '.',
         f"Results R = validation loss at the checkpoint, range {info['losses']['min']:.3f}-{info['losses']['max']:.3f} on the training split. "
         f"Dataset encoder: class means (500 images per class) of a 64-d FeatureNet trained 2 epochs on all of Fashion-MNIST "
         f"(test accuracy {pct(info['backbone_test_acc'])}, {info['backbone_seconds']:.0f} s incl. loading), 3 x 64 = 192 numbers per dataset.", '']
    L += ['## 1. Weight encoders: reconstruction fidelity', '',
          "Each checkpoint is encoded and decoded; original and reconstruction are compared on the model's own training images "
          f"({N_OWN} per model) and on {N_NOISE} uniform-noise inputs. Thesis (ResNet-18, PCA + AE): 35.7 % agreement, correlation -0.086 "
          "on training data. Goal: >= 90 % agreement on held-out models.", '']
    rows = []
    for n, r in runs.items():
        f = r['fidelity']
        rows.append([n, str(r['latent_dim']), pct(f['train']['own']['agreement']), pct(f['test']['own']['agreement']),
                     f"{f['test']['own']['correlation']:.3f}", f"{f['test']['own']['cosine']:.3f}", pct(f['unseen']['own']['agreement']),
                     f"{f['unseen']['own']['correlation']:.3f}", pct(f['test']['noise']['agreement']), f"{r['fit_seconds']:.0f}"])
    L += md_table(rows, ['encoder', 'latent', 'agree train models', 'agree held-out (seen subsets)', 'corr', 'cos',
                         'agree held-out (unseen subsets)', 'corr', 'agree noise (held-out)', 'fit s']) + ['']
    L += [f'- `{n}`: {ENCODER_NOTES.get(n, "")}' for n in runs] + ['']
    if older:
        L += ['Encoders not re-run on this zoo (the shared machine had no time for them): their numbers come from the earlier, smaller '
              'zoo named in the first column (same code, its own held-out split); they are not comparable row by row with the table above.', '']
        rows = [[f"{r['encoder']} ({k.rsplit('_', 1)[1]}-model zoo)", str(r['latent_dim']), pct(r['fidelity']['train']['own']['agreement']),
                 pct(r['fidelity']['test']['own']['agreement']), pct(r['fidelity']['unseen']['own']['agreement']),
                 pct(r['samples']['test']['test_acc']), pct(r['samples']['unseen']['test_acc']), f"{r['fit_seconds']:.0f}"] for k, r in older.items()]
        L += md_table(rows, ['encoder', 'latent', 'agree train models', 'agree held-out (seen)', 'agree held-out (unseen)',
                             'sample test acc (seen)', 'sample test acc (unseen)', 'fit s']) + ['']
    L += ['## 2. Shared encoder (NT-Xent, batch 64; chance = log 64 = 4.16)', '', '![curves](align_curves.png)', '']
    rows = []
    for n, r in runs.items():
        h = r['aligner_history']; best = min(h, key=lambda x: x['val_nt_xent'])
        rows.append([n, f"{h[0]['train_nt_xent']:.2f} -> {h[-1]['train_nt_xent']:.2f}", f"{h[0]['val_nt_xent']:.2f} -> {h[-1]['val_nt_xent']:.2f}",
                     f"{best['val_nt_xent']:.2f} (epoch {best['epoch']})", pct(r['retrieval']['test']['top1']), pct(r['retrieval']['test']['top5']),
                     pct(r['retrieval']['test']['chance_top1']), pct(r['retrieval']['unseen']['top1']), pct(r['retrieval']['unseen']['top5']),
                     pct(r['retrieval']['unseen']['chance_top1'])])
    L += md_table(rows, ['encoder', 'train NT-Xent first -> last', 'val NT-Xent first -> last', 'best val', 'top-1 seen', 'top-5 seen', 'chance top-1',
                         'top-1 unseen', 'top-5 unseen', 'chance top-1']) + ['',
          'Retrieval: the projection of each held-out (D, R) ranks the weight latents of all held-out checkpoints of its group (cosine, standardised latents).', '']
    L += ['## 3. Conditional samples for held-out (D, R)', '',
          'One model per held-out checkpoint, requested loss = its true R: mean test accuracy on D (all test images of the 3 classes), and the '
          'Spearman correlation between requested and achieved validation loss. "decode true latent" decodes the encoding of the real weights (the '
          'ceiling of that encoder). Every row covers the same held-out checkpoints (the first ones of each group, see "Scale").', '']
    rows = []
    for s in ('test', 'unseen'):
        for n, r in runs.items():
            for k, lab in ((s, 'sample'), (s + '_oracle_reconstruction', 'decode true latent')):
                x = r['samples'][k]; rows.append([s, f'{n}: {lab}', pct(x['test_acc']), f"{x['achieved_loss']:.3f}", f"{x['spearman']:.2f}"])
        for k, x in (base or {}).get(s, {}).items(): rows.append([s, k, pct(x['test_acc']), f"{x['achieved_loss']:.3f}", f"{x['spearman']:.2f}"])
    L += md_table(rows, ['held-out group', 'method', 'test acc on D', 'achieved val loss', 'Spearman(requested, achieved)']) + ['']
    rows = [[n, f"{r['sweep']['test']['mean_spearman']:.2f} ({r['sweep']['test']['n_subsets']})",
             f"{r['sweep']['unseen']['mean_spearman']:.2f} ({r['sweep']['unseen']['n_subsets']})"] for n, r in runs.items()]
    if rows:
        L += ['Loss sweep: for each held-out class subset, request the 10/30/50/70/90 % quantiles of the training losses '
              f"({', '.join(f'{q:.3f}' for q in next(iter(runs.values()))['sweep']['test']['requested'])}); mean Spearman over subsets (number of subsets).", '']
        L += md_table(rows, ['encoder', 'seen subsets', 'unseen subsets']) + ['']
    span = allr.get(f'span_ceiling_{nz}')
    if span:
        L += ['## 4. Why weight-space reconstruction of held-out models fails: the span ceiling', '',
              'The most generous linear encoder fitted on the training zoo keeps every direction the training checkpoints span '
              f"(latent = {info['n_checkpoints']['train'] - 1}): each held-out model is projected on the affine span of all training checkpoints, "
              'with and without permutation alignment to one reference (weight matching). "residual" is the share of the held-out '
              "model's centred weight norm that lies outside that span.", '']
        L += md_table([[k.replace('_', ' '), pct(v['agreement']), f"{v['correlation']:.3f}", f"{v['cosine']:.3f}", pct(v['residual'])]
                       for k, v in span.items() if isinstance(v, dict) and 'agreement' in v],
                      ['weights, held-out group', 'agreement (own data)', 'corr', 'cos', 'residual']) + ['']
    curve = next((v for k, v in sorted(allr.items()) if k.startswith('span_curve_')), None)
    if curve:
        L += [f"Residual outside the span of n training checkpoints, for growing n, on all {curve['n_zoo']} models finished when it ran "
              f"(the zoo kept growing after the snapshot; {curve['n_heldout']} held-out checkpoints of 20 random members, the span drawn from the others):", '']
        L += md_table([[str(r['n_train']), pct(r['raw']), pct(r['aligned'])] for r in curve['rows']], ['n training checkpoints', 'residual raw', 'residual aligned']) + ['']
    L += [environment_line(env), '']
    if runs: curves_png(a.out / 'align_curves.png', runs)
    write_results(a.out / 'align.md', 'Contrastive weight-space alignment (issue 15)', a.command, L + findings(runs, base, span, info, curve, older), rel(folder))


def findings(runs, base, span, info, curve=None, older=None)->list[str]:
    "The conclusions, with every number read from the run JSON."
    if not runs or not base: return []
    f = lambda n, s, k='agreement': runs[n]['fidelity'][s]['own'][k]
    held = {n: (f(n, 'test') + f(n, 'unseen')) / 2 for n in runs}; best = max(held, key=held.get)
    func = [n for n in runs if 'signature_residual' in runs[n]]; wsp = [n for n in runs if n not in func]
    agree = lambda ns: ', '.join(f"{pct(f(n, 'test'))} / {pct(f(n, 'unseen'))} (`{n}`)" for n in ns)
    n_ck = info['n_checkpoints']; L = ['## Findings', '']
    goal = held[best] >= 0.9 and min(f(best, 'test'), f(best, 'unseen')) >= 0.9
    L.append((f"1. **`{best}` reconstructs held-out models: {pct(f(best, 'test'))} / {pct(f(best, 'unseen'))} prediction agreement with the "
              f"originals on their own training images** (held-out models of seen / unseen class subsets, {runs[best]['fidelity']['test']['n']} / "
              f"{runs[best]['fidelity']['unseen']['n']} checkpoints; goal 90 %, thesis 35.7 %). " if goal else
              f"1. **No encoder reaches the 90 % goal on both held-out groups; the best is `{best}` ({pct(f(best, 'test'))} / {pct(f(best, 'unseen'))}).** ")
             + f"Agreement, seen / unseen subsets: {agree(runs)}; chance is about 33 %."
             + (f" The weight-space encoders re-run on this zoo stay near the thesis's 35.7 % ({agree(wsp)})." if wsp else '')
             + (" On the earlier zoo the weight-space encoders stayed near the thesis's 35.7 %: " + ', '.join(
                 f"{pct(r['fidelity']['test']['own']['agreement'])} / {pct(r['fidelity']['unseen']['own']['agreement'])} (`{r['encoder']}`, "
                 f"{k.rsplit('_', 1)[1]} models)" for k, r in older.items()) + '.' if older else ''))
    if func:
        n0 = func[0]; sr = runs[n0]['signature_residual']; st = runs[n0].get('fidelity_start', {})
        ks = [k for k in sr['test'] if k != '64'][-1]
        L.append("2. **Why: what a model computes is shared across the zoo; where its weights sit is not.** "
                 + (f"{pct(span['aligned_test']['residual'])} of a held-out model's centred weights lie outside the span of all "
                    f"{n_ck['train']} training checkpoints even after permutation alignment (projection onto that span: "
                    f"{pct(span['aligned_test']['agreement'])} agreement), so no weight-space decoder fitted on the zoo can place it. " if span else '')
                 + f"Its logits on the {runs[n0]['encoder_cfg']['n_probe']} probe images are different: only "
                 f"{pct(sr['test'][ks])} / {pct(sr['unseen'][ks])} of a held-out signature lies outside the span of the training signatures "
                 f"({pct(sr['test']['64'])} / {pct(sr['unseen']['64'])} outside their top 64 principal directions). "
                 + (f"Starting from the training checkpoint with the nearest signature gives {pct(st['test'])} / {pct(st['unseen'])} agreement; "
                    f"{runs[n0]['encoder_cfg']['steps']} decoder steps on the probe logits take it to {pct(f(n0, 'test'))} / {pct(f(n0, 'unseen'))}. " if st else '')
                 + "The decoder is an optimisation with the training zoo as its memory, not a feed-forward network: it costs "
                 f"{runs[n0]['fidelity_seconds']:.0f} s for the {runs[n0]['fidelity']['test']['n'] + runs[n0]['fidelity']['unseen']['n'] + runs[n0]['fidelity']['train']['n']} "
                 "reconstructions of section 1 on this shared machine.")
    tr_nt = ', '.join(f"{runs[n]['aligner_history'][-1]['train_nt_xent']:.2f}" for n in runs)
    va_nt = ', '.join(f"{runs[n]['aligner_history'][-1]['val_nt_xent']:.2f}" for n in runs)
    top5 = ', '.join(f"{pct(runs[n]['retrieval']['test']['top5'])} / {pct(runs[n]['retrieval']['unseen']['top5'])} (`{n}`)" for n in runs)
    r0 = next(iter(runs.values()))['retrieval']
    L.append(f"3. **Shared encoder.** Final training NT-Xent {tr_nt}; validation NT-Xent {va_nt} ({', '.join(f'`{n}`' for n in runs)}; "
             f"chance log 64 = 4.16). Retrieval top-5 of held-out checkpoints from their (D, R), seen / unseen subsets: {top5} "
             f"(chance {pct(r0['test']['chance_top5'])} / {pct(r0['unseen']['chance_top5'])}). Retrieval among checkpoints of the same class subset "
             "and similar loss is hard by construction: a good projection lands near all of them.")
    samp = ', '.join(f"{pct(runs[n]['samples']['test']['test_acc'])} / {pct(runs[n]['samples']['unseen']['test_acc'])} (`{n}`)" for n in runs)
    sp = ', '.join(f"{runs[n]['samples']['test']['spearman']:.2f} / {runs[n]['samples']['unseen']['spearman']:.2f} (`{n}`)" for n in runs)
    b = lambda k, s, m='test_acc': base[s][k][m]
    L.append(f"4. **Conditional samples for held-out (D, R)** (one per held-out checkpoint, requested loss = its true R): test accuracy on D "
             f"{samp}, seen / unseen subsets, against nearest-neighbour retrieval from the training zoo {pct(b('nearest_neighbour', 'test'))} / "
             f"{pct(b('nearest_neighbour', 'unseen'))}, random init {pct(b('random_init', 'test'))} / {pct(b('random_init', 'unseen'))}"
             + (f" and the held-out originals themselves {pct(b('original', 'test'))} / {pct(b('original', 'unseen'))}" if 'original' in base['test'] else '')
             + f". Spearman(requested, achieved validation loss): {sp}; retrieval {b('nearest_neighbour', 'test', 'spearman'):.2f} / "
             f"{b('nearest_neighbour', 'unseen', 'spearman'):.2f}. "
             + ' '.join(f"`{n}` samples are {'above' if runs[n]['samples'][g]['test_acc'] > b('nearest_neighbour', g) else 'below'} retrieval on "
                        f"{'seen' if g == 'test' else 'unseen'} subsets ({pct(runs[n]['samples'][g]['test_acc'] - b('nearest_neighbour', g))} points)"
                        f"{',' if g == 'test' else '.'}" for n in func for g in ('test', 'unseen'))
             + (" Generation works where the thesis's did not, but at this scale it is not better than looking the network up in the zoo; "
                "it follows the requested loss more closely." if func else ''))
    L.append("5. **What is fixed relative to the thesis.** Reconstruction of held-out networks (section 1) by moving the latent from weights to "
             "function; permutation symmetry (probe logits do not change under hidden-unit permutations; the weight-space encoders align to a "
             "reference first); the projection's scale (NT-Xent ignores the norm of the projection, so `Aligner` standardises the latents and adds a "
             "regression term, and `conditional_sample` decodes in latent units). Every number is measured on held-out models and on class subsets "
             "never seen in training, against random init, the mean model and retrieval.")
    L += ['', f"Scale: {info['n_zoo']} zoo models ({', '.join(f'{s} {nm}' for s, nm in info['n_models'].items())} models) "
          "on a shared 2-core machine. Scaled down: the zoo itself (see 'Zoo'); weight-space encoder epochs (`make_encoders`); "
          + ''.join(f"`{n}` uses {runs[n]['encoder_cfg']['n_probe']} probe images and {runs[n]['encoder_cfg']['steps']} decoder steps; " for n in func)
          + ''.join(f"fidelity and samples of `{n}` cover the first {runs[n]['fidelity']['test']['n']} / {runs[n]['fidelity']['unseen']['n']} "
                    f"held-out checkpoints (of {n_ck['test']} / {n_ck['unseen']}) and {runs[n]['fidelity']['train']['n']} training models; "
                    f"its loss sweep at most {runs[n]['sweep']['test']['n_subsets']} class subsets per group. " for n in runs)
          + ("Encoders listed under 'not re-run' were measured on the earlier zoo only." if older else ''), '']
    return L

def main():
    ap = bench_parser(__doc__.split('\n')[0], 'align')
    ap.add_argument('--zoo', action='store_true', help='generate the zoo and exit')
    ap.add_argument('--n-models', type=int, default=360)
    ap.add_argument('--encoders', default='baselines,span,span_curve,functional_pca64,functional,pca_thesis,pca64_mlp,weight_ae,weight_ae_behaviour,sane')
    ap.add_argument('--n-probe', type=int, default=32, help='probe images of the behaviour loss')
    ap.add_argument('--n-func-probe', type=int, default=256, help='probe images of the FunctionalEncoder')
    ap.add_argument('--func-steps', type=int, default=100, help='decoder steps of the FunctionalEncoder')
    ap.add_argument('--n-train-fid', type=int, default=60, help='training models whose reconstruction fidelity is measured')
    ap.add_argument('--n-heldout', type=int, default=None, help='held-out checkpoints per group for fidelity and samples (default all)')
    ap.add_argument('--max-sweep', type=int, default=12, help='class subsets per group in the loss sweep')
    a = parse(ap)
    if a.zoo: return generate(a.n_models)
    cache = RunCache(a.out / 'align', a.device, a.command)
    if not a.render_only:
        from weightnb.zoo import Zoo
        from weightnb.align import DatasetEncoder, feature_backbone, zoo_triplets
        from weightnb.data import noise_dataset
        from weightnb.models import create_model
        snap = WORK / 'members.json'                     # the members every full run uses (the zoo may still be growing)
        if not snap.exists(): write_json(snap, Zoo(ZOO_DIR).names)
        zoo = Zoo(ZOO_DIR, read_json(snap, 'zoo snapshot')); spec = zoo.spec; S = splits(zoo, n_max=60 if a.quick else None)
        t0 = time.time(); bb = feature_backbone(spec.dataset, feature_dim=64, epochs=2); bb_s = time.time() - t0
        from weightnb.train import evaluate
        from weightnb.data import load_dataset, make_loader
        bb_acc = evaluate(bb, make_loader(load_dataset(spec.dataset, 'test'), 2048))['acc']
        denc = DatasetEncoder(bb, n_per_class=500)
        T = {s: zoo_triplets(S[s], denc) for s in ('train', 'val', 'test', 'unseen')}
        data = Data(spec); noise_x = noise_dataset((1, 28, 28), N_NOISE).x
        model_fn = lambda: create_model(spec.arch, **zoo[0].config['arch_kwargs'])
        full = load_dataset(spec.dataset, 'train')
        order = torch.randperm(len(full), generator=torch.Generator().manual_seed(0))
        probe_x, func_probe = full.x[order[:a.n_probe]], full.x[order[:a.n_func_probe]]
        info = dict(n_models={s: len(S[s]) for s in ('train', 'val', 'test', 'unseen')},
                    n_checkpoints={s: len(T[s]['state_dicts']) for s in T}, held_subsets=S['held_subsets'],
                    n_subsets=len({tuple(m.config['classes']) for m in zoo}), n_zoo=len(zoo), backbone_seconds=bb_s,
                    backbone_test_acc=bb_acc, zoo_test_acc_final=float(np.mean([m.metrics[-1]['test_acc'] for m in zoo])),
                    losses=dict(min=float(T['train']['losses'].min()), max=float(T['train']['losses'].max())))
        write_json(a.out / 'align' / 'info.json', info)
        if 'baselines' in a.encoders.split(','): cache.run(f'baselines_{len(zoo)}', lambda: baselines(T, data, model_fn))
        if 'span' in a.encoders.split(','): cache.run(f'span_ceiling_{len(zoo)}', lambda: span_ceiling(T, data, model_fn))
        if 'span_curve' in a.encoders.split(','):
            zall = Zoo(ZOO_DIR); cache.run(f'span_curve_{len(zall)}', lambda: span_curve(zall, model_fn))
        encs = make_encoders(a.quick, probe_x, model_fn(), func_probe, a.func_steps)
        for name in [e for e in a.encoders.split(',') if e not in ('baselines', 'span', 'span_curve')]:
            cache.run(f'{name}_{len(zoo)}', lambda: run_encoder(name, encs[name], S, T, data, noise_x, model_fn, a, a.quick, a.n_train_fid,
                                                                a.n_heldout, a.max_sweep))
    render(a, cache)


if __name__ == '__main__': main()

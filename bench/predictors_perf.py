"""Step time of the NeRN reference implementation (maorash/NeRN) against weightnb's predictor steps, in one process:
the reference's training step, weightnb's faithful `mode='nern'` step (the same work), its faster variant
(`fmd='blocks', grads='all'`), a recon-only step and a decoupled phase-2 step, as ratios to the reference.

    python bench/predictors_perf.py --render-only                 # rebuild predictors_perf.md from the JSON
    python bench/predictors_perf.py --threads 2 --repeats 7       # the measurement (minutes; needs the reference, below)
    python bench/predictors_perf.py --quick                       # 2 repeats, hidden 32, batch 32 (seconds)

Setting (the issue-16 comparison): ResNet-20 with option-B shortcuts on CIFAR-shaped inputs (3 x 32 x 32, random
weights: step time does not depend on them), predictor hidden 140, kernel batch 4,096, data batch 256, KD and FMD
weights 1e-4, Ranger as the reference configures it. Each variant takes one warm-up step, then `--repeats` rounds in
which every variant takes one step in turn (interleaved, so load changes on a shared machine hit all variants alike).

The reference: `--ref DIR` holds the `NeRN/` package; when DIR is missing it is extracted with `git archive` from the
mirror `--ref-git` (default /work/.mirror/maorash+NeRN/repo). Its extra dependencies (pyrallis, einops) go in
`--ref-pkgs` (default bench/_out/nern_pkgs: `pip install --target bench/_out/nern_pkgs pyrallis==0.3.1 einops==0.8.2`).
It runs offline; its loggers (clearml, tensorboard) are stubbed out, as a step never calls them. Without the reference
the script stops with a message and writes nothing.
"""
from __future__ import annotations
import os, statistics, subprocess, sys, time, types
from pathlib import Path

import torch

from _common import bench_parser, parse, read_json, write_json, write_results, md_table, rel, environment, environment_line, BenchError, ROOT
from weightnb import predictors as P
from weightnb.models import resnet20

MIRROR = Path('/work/.mirror/maorash+NeRN/repo')
OUT_REF, OUT_PKGS = ROOT / 'bench' / '_out' / 'nern_ref', ROOT / 'bench' / '_out' / 'nern_pkgs'
LABELS = {'reference': 'NeRN reference (maorash/NeRN), one training step',
          'nern': "weightnb `mode='nern'` (faithful defaults: the same work)",
          'nern_blocks_all': "weightnb `mode='nern', fmd='blocks', grads='all'` (faster variant)",
          'nern_blocks_batch': "weightnb `mode='nern', fmd='blocks'` (block maps, batch grads)",
          'recon': 'weightnb recon-only step (decoupled phase 1)',
          'phase2': 'weightnb decoupled phase-2 step (KD only, all kernels)'}


def reference(ref:Path, git:Path, pkgs:Path)->types.ModuleType:
    "Import the reference's pieces (extracting them from the git mirror first if needed); a clear error when it cannot."
    if not (ref / 'NeRN').exists():
        if not git.exists(): raise BenchError(f'no NeRN reference at {ref} and no mirror at {git}: pass --ref DIR (a maorash/NeRN checkout)')
        ref.mkdir(parents=True, exist_ok=True)
        tar = subprocess.run(['git', f'--git-dir={git}', 'archive', 'HEAD', 'NeRN'], capture_output=True, check=True).stdout
        subprocess.run(['tar', '-x', '-C', str(ref)], input=tar, check=True)
    sys.path.insert(0, str(ref)); sys.path.append(str(pkgs))
    sys.modules.setdefault('clearml', types.SimpleNamespace(Logger=object, Task=object))   # loggers: imported, never used by a step
    tb = types.ModuleType('torch.utils.tensorboard'); tb.SummaryWriter = object; sys.modules['torch.utils.tensorboard'] = tb
    try:
        import NeRN.options, NeRN.tasks.resnet20, NeRN.predictors.factory, NeRN.predictors.predictor  # noqa: F401
        import NeRN.loss.attention_loss, NeRN.loss.distillation_loss, NeRN.loss.reconstruction_loss  # noqa: F401
        import NeRN.optimization.optimizer, NeRN.optimization.scheduler  # noqa: F401
    except ImportError as e:
        raise BenchError(f'the NeRN reference does not import ({e}); install its dependencies: '
                         f'pip install --target {rel(pkgs)} pyrallis==0.3.1 einops==0.8.2') from e
    return NeRN


def ref_step_fn(NeRN, hidden:int, batch:int, kernels:int, x:torch.Tensor):
    "The body of the reference's `Trainer.train` loop (no logging, no evaluation; ResNet-20 configs use no loss warm-up)."
    from NeRN.options import Config, NeRNConfig, EmbeddingsConfig, PermutationsConfig, OptimizationConfig, TaskConfig
    cfg = Config(original_model_path='none.pt', epochs=None, num_iterations=10_000, batch_size=batch, loss_warmup_iterations=0,
                 nern=NeRNConfig(distillation_loss_type='StableKLDivLoss', num_blocks=5, hidden_layer_size=hidden,
                                 weights_batch_method='random_weighted_batch', weights_batch_size=kernels,
                                 attention_loss_weight=1e-4, distillation_loss_weight=1e-4,
                                 embeddings=EmbeddingsConfig(enc_levels=40, base=0.76, permutations=PermutationsConfig(permute_mode=None))),
                 task=TaskConfig(task_name='cifar10', original_model_name='ResNet20'),
                 optim=OptimizationConfig(optimizer_type='ranger', lr=5e-3, ranger_use_gc=False), logging=None)
    original = NeRN.tasks.resnet20.ResNet20('B').eval()
    recon = NeRN.tasks.resnet20.ReconstructedResNet20(original, cfg, device='cpu', sampling_mode='center')
    predictor = NeRN.predictors.factory.NeRNPredictorFactory(cfg, input_size=recon.output_size).get_predictor()
    original.requires_grad_(False); recon.eval(); recon.requires_grad_(True)
    opt = NeRN.optimization.optimizer.OptimizerFactory.get(list(predictor.parameters()), cfg)
    sched = NeRN.optimization.scheduler.LRSchedulerFactory.get(opt, cfg)
    rl, al = NeRN.loss.reconstruction_loss.L2ReconstructionLoss(), NeRN.loss.attention_loss.L2BatchedAttentionLoss()
    dl = NeRN.loss.distillation_loss.StableKLDivLoss()
    shapes = recon.get_learnable_weights_shapes(); _, pes = recon.get_indices_and_positional_embeddings()
    orig_w = original.get_learnable_weights()
    def step(i):
        opt.zero_grad()
        rw = NeRN.predictors.predictor.NeRNPredictorBase.predict_all(predictor, pes, orig_w, shapes)
        rw = recon.sample_weights_by_shapes(rw); recon.update_weights(rw)
        uw = recon.get_learnable_weights()
        o_out, o_maps = original.get_feature_maps(x); r_out, r_maps = recon.get_feature_maps(x)
        loss = cfg.nern.reconstruction_loss_weight * rl(uw, orig_w) + 1e-4 * al(r_maps, o_maps) + 1e-4 * dl(r_out, o_out)
        for w in uw: w.grad = None
        loss.backward(); torch.autograd.backward(rw, [w.grad for w in uw])
        opt.step(); sched.check_and_step(i)
    n_params = sum(p.numel() for p in predictor.parameters())
    return step, dict(predictor_params=n_params, predicted_kernels=sum(s[0] * s[1] for s in shapes))


def our_step_fn(mode:str, hidden:int, kernels:int, x:torch.Tensor, **kw):
    "The body of `train_phase`'s loop for the last phase of `mode` (phase 2 for 'decoupled')."
    ph = P.replace(P.mode_phases(mode, steps=10_000, phase2_steps=10_000, **kw)[-1], batch_size=kernels)
    pm = P.PredictedModel(resnet20(10, 3, 'B').eval(), P.KernelPredictor(240, hidden), permutation=None); pm.train()
    o = P.make_optimizer(pm.predictor.parameters(), ph.opt, lr=ph.lr, wd=ph.wd, betas=ph.betas)
    s = torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=ph.steps, eta_min=ph.min_lr); g = torch.Generator().manual_seed(0)
    def step(i):
        idx = P.kernel_batch(pm.kernel_norms, ph.batch_size, ph.p_uniform, g)
        loss, _ = P.phase_loss(pm, ph, idx, x if ph.uses_net else None)
        o.zero_grad(set_to_none=True); loss.backward()
        if ph.clip: torch.nn.utils.clip_grad_norm_(pm.predictor.parameters(), ph.clip)
        o.step(); s.step()
    return step, dict(predictor_params=sum(p.numel() for p in pm.predictor.parameters()), predicted_kernels=pm.n_kernels)


def measure(NeRN, hidden:int, batch:int, kernels:int, repeats:int)->dict:
    "Warm-up, then `repeats` interleaved rounds of one step per variant; per-step seconds of each."
    torch.manual_seed(0); x = torch.randn(batch, 3, 32, 32)
    fns = {'reference': ref_step_fn(NeRN, hidden, batch, kernels, x), 'nern': our_step_fn('nern', hidden, kernels, x),
           'nern_blocks_all': our_step_fn('nern', hidden, kernels, x, fmd='blocks', grads='all'),
           'nern_blocks_batch': our_step_fn('nern', hidden, kernels, x, fmd='blocks'),
           'recon': our_step_fn('recon', hidden, kernels, x), 'phase2': our_step_fn('decoupled', hidden, kernels, x)}
    load0 = os.getloadavg()
    for f, _ in fns.values(): f(0)
    times = {k: [] for k in fns}
    for i in range(1, repeats + 1):
        for k, (f, _) in fns.items():
            t = time.perf_counter(); f(i); times[k].append(time.perf_counter() - t)
    return dict(hidden=hidden, batch=batch, kernels=kernels, repeats=repeats, threads=torch.get_num_threads(),
                load_before=load0, load_after=os.getloadavg(), cpus=os.cpu_count(), work={k: w for k, (_, w) in fns.items()}, seconds=times)


def _q(v, q): return statistics.quantiles(v, n=4)[q] if len(v) >= 2 else v[0]


def render(path:Path, out:Path, cmd:str)->Path:
    r = read_json(path, 'the predictor step timings'); t = r['seconds']; ref = t['reference']
    med = {k: statistics.median(v) for k, v in t.items()}
    paired = {k: [a / b for a, b in zip(ref, v)] for k, v in t.items()}
    rows = [[LABELS[k], f"{med[k]:.3f}", f"{_q(v, 0):.3f}–{_q(v, 2):.3f}", f"{min(v):.3f}–{max(v):.3f}",
             f"**{med['reference'] / med[k]:.2f}×**", f"{statistics.median(paired[k]):.2f} ({min(paired[k]):.2f}–{max(paired[k]):.2f})",
             f"{r['work'][k]['predictor_params']:,} / {r['work'][k]['predicted_kernels']:,}"] for k, v in t.items()]
    eq = r['work']['reference'] == r['work']['nern']
    sp, sb = med['reference'] / med['nern'], med['reference'] / med['nern_blocks_all']
    L = [f"One process, {r['threads']} torch thread(s), {r['cpus']} logical CPUs; ResNet-20 (option-B shortcuts) on CIFAR-shaped inputs, "
         f"predictor hidden {r['hidden']}, kernel batch {r['kernels']:,}, data batch {r['batch']}; one warm-up step per variant, then "
         f"{r['repeats']} interleaved rounds of one step each. Load average (1 min) {r['load_before'][0]:.1f} before and "
         f"{r['load_after'][0]:.1f} after, on {r['cpus']} CPUs: other jobs were running, so absolute times are inflated and noisy; "
         'the ratios, measured side by side, are what counts.', '',
         *md_table(rows, ['step', 'median s', 'quartiles s', 'min–max s', 'reference median / this median', 'paired ratio per round: median (min–max)',
                          'predictor params / predicted kernels']), '',
         f"- Equal work: the faithful step and the reference's predict the same {r['work']['nern']['predicted_kernels']:,} kernels with the same "
         f"{r['work']['nern']['predictor_params']:,}-parameter predictor ({'same counts' if eq else '**counts differ**'}); it is "
         f"{sp:.2f}× the reference's speed by medians and faster in {sum(x > 1 for x in paired['nern'])} of {len(paired['nern'])} paired "
         f"rounds, so equal work is {'at least as fast as' if sp >= 1 else '**slower than**'} the reference. That the two steps compute "
         'the same losses and gradients is tested in `tests/test_predictors.py` (`test_nern_step_gradients_equal_the_reference`).',
         f"- The faster variant (block-output FMD, gradients through all kernels) runs at {sb:.2f}× the reference's speed, "
         f"{med['nern'] / med['nern_blocks_all']:.2f}× the faithful step's.",
         f"- A recon-only step costs {100 * med['recon'] / med['reference']:.1f} % of a reference step and a decoupled phase-2 step "
         f"{100 * med['phase2'] / med['reference']:.0f} %.", '', environment_line(r.get('env'))]
    return write_results(out / 'predictors_perf.md', 'Predictor step time: the NeRN reference vs weightnb, one run', cmd, L, sources=f'`{rel(path)}`')


def main(argv=None):
    ap = bench_parser(__doc__, 'predictors_perf', seeds=None)
    ap.add_argument('--repeats', type=int, default=7)
    ap.add_argument('--ref', type=Path, default=OUT_REF, help='folder holding the NeRN/ package of maorash/NeRN')
    ap.add_argument('--ref-git', type=Path, default=MIRROR, help='git mirror of maorash/NeRN to extract --ref from')
    ap.add_argument('--ref-pkgs', type=Path, default=OUT_PKGS, help='pip --target folder with pyrallis and einops')
    a = parse(ap, argv)
    path = a.out / 'predictors' / ('perf_nern_quick.json' if a.quick else 'perf_nern.json')
    if not a.render_only:
        NeRN = reference(a.ref, a.ref_git, a.ref_pkgs)
        hidden, batch, kernels, reps = (32, 32, 512, 2) if a.quick else (140, 256, 4096, a.repeats)
        r = measure(NeRN, hidden, batch, kernels, reps)
        write_json(path, dict(r, command=a.command, env=environment('cpu'), nern_commit=subprocess.run(
            ['git', f'--git-dir={a.ref_git}', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip() or 'unknown'))
    render(path, a.out, a.command)


if __name__ == '__main__': main()

"""Table-2 follow-up: is the gap to the paper's recon-only level a budget effect? The full protocol of
bench/predictors.py with a longer phase 1 (default 10,000 reconstruction steps instead of 2,500), then the same
150-step decoupled phase 2.

    python bench/predictors_recon_long.py --render-only                    # rebuild the md from the committed JSON
    python bench/predictors_recon_long.py --hidden 140 --seeds 0,1,2       # ~15 min per seed, one CPU thread
    python bench/predictors_recon_long.py --quick                          # 200 steps, hidden 140, seed 0 (~2 min)

One JSON per run in <out>/predictors/recon_long/ (finished runs are skipped); the summary, next to the 2,500-step
runs of bench/predictors.py (<out>/predictors/full/), is <out>/predictors_recon_long.md.
"""
import re
from pathlib import Path

from _common import (bench_parser, parse, RunCache, write_results, mean_sd, sd_note, md_table, rel, resolve_device,
                     fashion_target, recon_then_decoupled)

FULL_STEPS, PHASE2_STEPS, BATCH = 2500, 150, 4096   # the full profile of bench/predictors.py
LEGACY_LAYERS = 'no_stem'   # runs stored before `layers` entered the config predicted every conv but the stem


def Cache(folder, device=None, command=None)->RunCache:
    "A `RunCache` that reads runs stored without `layers` in their config as `layers='no_stem'` and reuses a run only when its `layers` match."
    return RunCache(folder, device, command, legacy_config={'layers': LEGACY_LAYERS})


def run(cache:RunCache, hidden:int, steps:int, seeds:list[int], device:str, eval_every:int, layers:str=LEGACY_LAYERS):
    "Recon-only then decoupled per seed; keys `recon_h{hidden}_steps{steps}[_{layers}]_s{seed}` (the layers tag only when not 'no_stem')."
    target, dls = fashion_target(device)
    cfg = dict(batch_size=BATCH, eval_every=eval_every, layers=layers)
    tag = f'_steps{steps}' + ('' if layers == LEGACY_LAYERS else f'_{layers}')
    for s in seeds: recon_then_decoupled(cache, target, dls, hidden, s, steps, PHASE2_STEPS, cfg, tag=tag)


def rows_of(folder:Path, pattern:str, default_steps:int)->dict:
    "(hidden, steps) -> lists over the seeds whose recon-only and decoupled runs both finished."
    runs, rows = Cache(folder).all() if folder.exists() else {}, {}
    for k, r in runs.items():
        m = re.fullmatch(pattern, k)
        if not m or (d := runs.get(k.replace('recon_', 'decoupled_', 1))) is None or r['config']['layers'] != LEGACY_LAYERS: continue
        row = rows.setdefault((int(m['h']), int(m['steps'] or default_steps)), dict(recon=[], decoupled=[], rmse=[], wall=[], seeds=[]))
        row['recon'].append(r['metrics']['recon']['test_acc']); row['rmse'].append(r['metrics']['recon']['recon'])
        row['decoupled'].append(d['metrics']['phase2']['test_acc']); row['wall'].append(r['wall_s'] + d['wall_s']); row['seeds'].append(m['s'])
    return rows


def render(out:Path, cmd:str):
    base = out / 'predictors'
    long = rows_of(base / 'recon_long', r'recon_h(?P<h>\d+)_steps(?P<steps>\d+)_s(?P<s>\d+)', FULL_STEPS)
    full = rows_of(base / 'full', r'recon_h(?P<h>\d+)(?P<steps>)_s(?P<s>\d+)', FULL_STEPS)
    rows = {k: v for k, v in full.items() if k[0] in {h for h, _ in long}} | long
    table = [[h, f'{steps:,}', ','.join(v['seeds']), mean_sd(v['recon']), mean_sd(v['decoupled']), f"{sum(v['rmse']) / len(v['rmse']):.4f}",
              'mixed GPU / CPU' if (h, steps) in full and (h, steps) not in long else f"{sum(v['wall']) / len(v['wall']):.0f}"]
             for (h, steps), v in sorted(rows.items())]
    L = ['Test accuracy in % on the Fashion-MNIST test images; validation-selected checkpoints; decoupled = 150 KD steps at lr 5e-4 '
         f"from that row's recon-only predictor. {sd_note([len(v['seeds']) for v in rows.values()])} The {FULL_STEPS:,}-step rows are "
         f"the Table-2 runs of `bench/predictors.py` (`{rel(base / 'full')}/`). Wall time: both phases, mean over seeds, one torch "
         'thread on the shared 2-core CPU (each JSON\'s `wall_s`). Predicted layers: every conv but the stem (`layers=\'no_stem\'`, '
         'as these runs were made; their JSON predates the recorded config); runs with other `layers` are not in this table. '
         'Discussion in `predictors.md`.', '',
         *md_table(table, ['hidden', 'recon steps', 'seeds', 'recon-only', 'decoupled', 'kernel RMSE (recon-only)', 'wall s per seed'])]
    if not rows: L = ['No finished runs yet.']
    write_results(out / 'predictors_recon_long.md', 'Predictor phase-1 budget: recon-only and decoupled at 2,500 vs longer reconstruction',
                  cmd, L, sources=f'`{rel(base / "recon_long")}/` and `{rel(base / "full")}/`')


def main(argv=None):
    ap = bench_parser(__doc__, 'predictors_recon_long', seeds=(0, 1, 2))
    ap.add_argument('--steps', type=int, default=10000, help='reconstruction steps of phase 1')
    ap.add_argument('--hidden', type=int, default=140)
    ap.add_argument('--eval-every', type=int, default=1000)
    ap.add_argument('--layers', default=LEGACY_LAYERS, help="predicted layers (default 'no_stem', as the committed runs; 'all' adds the stem)")
    a = parse(ap, argv)
    if a.quick: a.steps, a.seeds, a.eval_every = 200, [0], 100
    if not a.render_only:
        device = str(resolve_device(a.device))
        run(Cache(a.out / 'predictors' / 'recon_long', device, a.command), a.hidden, a.steps, a.seeds, device, a.eval_every, a.layers)
    render(a.out, a.command)


if __name__ == '__main__': main()

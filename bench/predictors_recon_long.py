# Table-2 follow-up: is the gap to the paper's recon-only level a budget effect? The full profile's protocol with a
# longer phase 1 (default 10,000 reconstruction steps instead of 2,500), then the same 150-step decoupled phase 2.
# One JSON per run in bench/results/predictors/recon_long/ (finished runs are skipped); every run so far is
# summarised, next to the 2,500-step runs of the full profile, in bench/results/predictors_recon_long.md.
# Run from the repository root (one torch thread per process; seeds and sizes can be split over processes):
#   python bench/predictors_recon_long.py --hidden 140 --steps 10000 --seeds 0,1,2   # ~13 min per seed on this CPU
#   python bench/predictors_recon_long.py --report-only
import sys, json, re, argparse
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parent))
import predictors as B
from weightnb.core import write_text_atomic

OUT = B.ROOT / 'bench/results/predictors/recon_long'
FULL = B.ROOT / 'bench/results/predictors/full'


def run(hidden:int, steps:int, seeds:list[int]):
    c = dict(B.PROFILES['full']); OUT.mkdir(parents=True, exist_ok=True)
    target, dls = B.fashion_target(c)
    cfg = dict(batch_size=c['batch_size'], eval_every=1000)
    for s in seeds: B.recon_then_decoupled(OUT, target, dls, hidden, s, steps, c['phase2_steps'], cfg, tag=f'_steps{steps}')


def _runs(folder:Path, pattern:str)->dict:
    "(hidden, steps) -> {'recon': [test acc per seed], 'decoupled': [...], 'rmse': [...], 'wall': [...]} for finished seeds."
    rows = {}
    for f in sorted(folder.glob('recon_h*.json')):
        m = re.fullmatch(pattern, f.stem)
        if not m: continue
        h, steps, s = int(m['h']), int(m['steps'] or B.PROFILES['full']['steps']), m['s']
        dec = folder / f.name.replace('recon_', 'decoupled_', 1)
        if not dec.exists(): continue
        r, d = json.loads(f.read_text()), json.loads(dec.read_text())
        row = rows.setdefault((h, steps), dict(recon=[], decoupled=[], rmse=[], wall=[], seeds=[]))
        row['recon'].append(r['metrics']['recon']['test_acc']); row['rmse'].append(r['metrics']['recon']['recon'])
        row['decoupled'].append(d['metrics']['phase2']['test_acc']); row['wall'].append(r['wall_s'] + d['wall_s'])
        row['seeds'].append(s)
    return rows


def report()->str:
    rows = _runs(FULL, r'recon_h(?P<h>\d+)(?P<steps>)_s(?P<s>\d+)')
    long = _runs(OUT, r'recon_h(?P<h>\d+)_steps(?P<steps>\d+)_s(?P<s>\d+)')
    rows = {k: v for k, v in rows.items() if k[0] in {h for h, _ in long}} | long
    L = ['# Predictor phase-1 budget: recon-only and decoupled at 2,500 vs longer reconstruction', '',
         'Regenerate: `.venv/bin/python bench/predictors_recon_long.py --hidden H --steps N --seeds 0,1,2` per row, then '
         '`--report-only`. Test accuracy in % on the 10,000 Fashion-MNIST test images, mean ± std over the seeds listed; '
         'validation-selected checkpoints; decoupled = 150 KD steps at lr 5e-4 from that row\'s recon-only predictor. '
         'The 2,500-step rows are the full profile\'s Table-2 runs (`predictors/full/`).', '',
         '| hidden | recon steps | seeds | recon-only | decoupled | kernel RMSE (recon-only) | wall s per seed (both phases, one torch thread) |',
         '|---|---|---|---|---|---|---|']
    for (h, steps), v in sorted(rows.items()):
        wall = f"{sum(v['wall']) / len(v['wall']):.0f}" if steps != B.PROFILES['full']['steps'] else 'GPU / CPU mixed'
        L.append(f"| {h} | {steps:,} | {','.join(v['seeds'])} | {B._ms(v['recon'])} | {B._ms(v['decoupled'])} | "
                 f"{sum(v['rmse']) / len(v['rmse']):.4f} | {wall} |")
    return '\n'.join(L) + '\n'


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description='Table-2 follow-up: longer reconstruction (phase 1) budgets.')
    ap.add_argument('--steps', type=int, default=10000, help='reconstruction steps of phase 1')
    ap.add_argument('--hidden', type=int, default=140)
    ap.add_argument('--seeds', default='0,1,2')
    ap.add_argument('--report-only', action='store_true')
    a = ap.parse_args()
    torch.set_num_threads(1)
    if not a.report_only: run(a.hidden, a.steps, [int(s) for s in a.seeds.split(',')])
    md = report(); write_text_atomic(B.ROOT / 'bench/results/predictors_recon_long.md', md); print(md)

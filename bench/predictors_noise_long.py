"""Table-8 follow-up: the data-free phase 2 (KD on U[-1, 1] noise) run four times longer (600 steps instead of 150)
from the saved recon_h140_s0 predictor of bench/predictors.py's full profile, validation scored every 100 steps.

    python bench/predictors_noise_long.py --render-only   # rebuild the md from the committed JSON
    python bench/predictors_noise_long.py                 # ~20 min on one CPU thread (needs predictors/full/recon_h140_s0.*)
    python bench/predictors_noise_long.py --quick         # 20 steps (needs the same predictor weights)

Writes <out>/predictors/noise_long_h140_s0.json and <out>/predictors_noise_long.md.
"""
from pathlib import Path

from _common import (bench_parser, parse, RunCache, read_json, write_results, md_table, rel, resolve_device,
                     fashion_target, load_predictor, RESULTS)
from weightnb import predictors as P

HIDDEN, SEED, LR = 140, 0, 5e-4
LAYERS = 'no_stem'   # the layers recon_h140_s0 of the full profile was trained on (its JSON predates the recorded config)


def run(out:Path, steps:int, eval_every:int, device:str, cmd:str)->Path:
    path = out / 'predictors' / f'noise_long_h{HIDDEN}_s{SEED}.json'
    if path.exists(): return path
    target, dls = fashion_target(device)
    pred = load_predictor(RunCache(RESULTS / 'predictors' / 'full'), f'recon_h{HIDDEN}_s{SEED}', HIDDEN)
    def train():
        r = P.train_predictor(target, HIDDEN, 'decoupled', dls, steps=0, phase2_steps=steps, phase2_lr=LR, inputs='noise', seed=SEED,
                              predictor=pred, batch_size=4096, eval_every=eval_every, layers=LAYERS)
        return dict(steps=steps, lr=LR, metrics=r.metrics, scores=[(h['step'], h['score']) for h in r.history if 'score' in h])
    RunCache(path.parent, device, cmd).run(path.stem, train, dict(hidden=HIDDEN, seed=SEED, steps=steps, lr=LR, layers=LAYERS))
    return path


def render(out:Path, cmd:str):
    path = out / 'predictors' / f'noise_long_h{HIDDEN}_s{SEED}.json'
    r = read_json(path, 'the long noise phase 2'); m = r['metrics']
    L = [f"Decoupled phase 2 on U[−1, 1] noise inputs for {r['steps']} steps (lr {r['lr']:g}, kernel batch 4,096, KD batch 128) from "
         f"the recon-only predictor `recon_h{HIDDEN}_s{SEED}` of the full profile; one seed, so no ± ; {r['wall_s']:.0f} s wall time. "
         f"Predicted layers: every conv but the stem (`layers={r.get('config', {}).get('layers', LAYERS)!r}`; a JSON without a config is "
         "read as this, the layers of that predictor).", '',
         *md_table([['phase 1 (recon-only)', 0, f"{m['phase1']['val_acc']*100:.2f}"]] +
                   [['noise phase 2', step, f'{v*100:.2f}'] for step, v in r['scores']], ['model', 'noise KD steps', 'validation acc']), '',
         f"Test accuracy of the kept checkpoint: {m['phase1']['test_acc']*100:.2f} % (phase 1) → {m['phase2']['test_acc']*100:.2f} % "
         f"(phase 2, {m['phase2']['steps']} steps). Discussion beside Table 8 in `predictors.md`."]
    write_results(out / 'predictors_noise_long.md', f'Data-free phase 2, {r["steps"]} steps (hidden {HIDDEN}, seed {SEED})', cmd, L,
                  sources=f'`{rel(path)}`')


def main(argv=None):
    ap = bench_parser(__doc__, 'predictors_noise_long', seeds=None)
    ap.add_argument('--steps', type=int, default=600)
    ap.add_argument('--eval-every', type=int, default=100)
    a = parse(ap, argv)
    if a.quick: a.steps, a.eval_every = 20, 10
    if not a.render_only: run(a.out, a.steps, a.eval_every, str(resolve_device(a.device)), a.command)
    render(a.out, a.command)


if __name__ == '__main__': main()

# Table-8 follow-up: the data-free phase 2 run four times longer (600 steps instead of 150) from the saved
# recon_h140_s0 predictor of the full profile, validation scored every 100 steps.
# Run from the repository root after `bench/predictors.py` (needs bench/results/predictors/full/recon_h140_s0.*):
#   python bench/predictors_noise_long.py        # ~20 min on one CPU thread
import sys, json, time
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parent))
import predictors as B
from weightnb import predictors as P

torch.set_num_threads(1)
out = B.ROOT / 'bench/results/predictors/full'
target, dls = B.fashion_target(dict(B.PROFILES['full']))
steps, lr = 600, 5e-4
t0 = time.time()
r = P.train_predictor(target, 140, 'decoupled', dls, steps=0, phase2_steps=steps, phase2_lr=lr, inputs='noise', seed=0,
                      predictor=B.load_predictor(out, 'recon_h140_s0', 140), batch_size=4096, eval_every=100)
res = dict(steps=steps, lr=lr, wall_s=time.time() - t0, metrics=r.metrics,
           scores=[(h['step'], h['score']) for h in r.history if 'score' in h])
(B.ROOT / 'bench/results/predictors/noise_long_h140_s0.json').write_text(json.dumps(res, indent=1))
print(json.dumps(res))

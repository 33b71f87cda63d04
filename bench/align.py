"""Contrastive alignment of weights, datasets and results (issue 15): zoo, encoders, shared encoder, conditional sampling.

    .venv/bin/python bench/align.py zoo --n-models 360          # generate the zoo (resumable; one torch thread)
    .venv/bin/python bench/align.py run [--quick]                # encoders, alignment, sampling -> bench/results/align.md
"""
import argparse, json, sys, time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
WORK = ROOT / 'results' / '_zoo_align'       # git-ignored (bench/results/_zoo*/)
ZOO_DIR = WORK / 'zoo'

def align_zoo_spec():
    "The thesis zoo at our scale (see align.md for what was scaled down and why)."
    from weightnb.zoo import ZooSpec, thesis_policy
    return ZooSpec(arch='zoo_cnn_small', dataset='fashion-mnist', n_classes=3,
                   opt=['adam', 'sgd'], lr={'loguniform': [3e-4, 3e-2]}, wd={'loguniform': [1e-6, 1e-3]},
                   batch_size=[64, 128], schedule='constant',
                   checkpoints=thesis_policy(early=(1, 2), final_mean=8., final_std=1.5, final_clip=(6, 11)),
                   n_train=4000, n_val=500, n_test=1000, seed=15)

def cmd_zoo(args):
    torch.set_num_threads(1)
    from weightnb.zoo import generate_zoo
    t0 = time.time()
    zoo = generate_zoo(align_zoo_spec(), ZOO_DIR, args.n_models, progress=False)
    print(f'{len(zoo)} models in {ZOO_DIR}, {time.time()-t0:.0f} s', flush=True)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    z = sub.add_parser('zoo'); z.add_argument('--n-models', type=int, default=360)
    args = ap.parse_args(argv)
    {'zoo': cmd_zoo}[args.cmd](args)

if __name__ == '__main__': main()

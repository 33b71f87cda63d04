"""Train the reference ResNet-20 on Fashion-MNIST (the checkpoint the other benches and tutorials start from).

    python bench/train_resnet20.py --render-only         # rebuild bench/results/train_resnet20.md from the JSON
    python bench/train_resnet20.py --device cuda         # full run: 16 epochs (~1.5 min on an H100; ~35 min on 2 CPU cores)
    python bench/train_resnet20.py --quick               # 1 epoch on 2,000 images (writes under bench/_out/quick/)

Writes `<out>/resnet20_fashion_mnist.safetensors`, `<out>/resnet20_fashion_mnist.json` (per-epoch history, test
accuracy, environment) and `<out>/train_resnet20.md`; an interrupted run resumes from `<out>/_resume/` at the last epoch.
"""
from __future__ import annotations
import time
from functools import partial
from pathlib import Path

from _common import (bench_parser, parse, read_json, write_json, write_results, environment, environment_line, md_table, rel,
                     resolve_device)
from weightnb.core import seed_everything
from weightnb.data import dataloaders, random_crop_flip
from weightnb.models import resnet20, save_model
from weightnb.train import fit, evaluate


def train(a, out:Path, name:str)->Path:
    device = resolve_device(a.device); seed = a.seeds[0]
    seed_everything(seed)
    dls = dataloaders('fashion-mnist', batch_size=a.batch_size, n_train=a.n_train, seed=seed)
    model = resnet20(10, in_chans=1, shortcut=a.shortcut)
    t0 = time.perf_counter()
    hist = fit(model, dls.train, epochs=a.epochs, lr=a.lr, wd=5e-4, val_dl=dls.val, augment=partial(random_crop_flip, pad=2),
               progress=False, device=device, checkpoint=out / '_resume' / f'{name}.pt')   # resumes after an interruption
    test = evaluate(model, dls.test)
    save_model(model, out / f'{name}.safetensors', dataset='fashion-mnist', test_acc=test['acc'], epochs=a.epochs)
    args = dict(epochs=a.epochs, lr=a.lr, batch_size=a.batch_size, shortcut=a.shortcut, n_train=a.n_train, seed=seed, device=str(device))
    return write_json(out / f'{name}.json', dict(command=a.command, args=args, test=test, history=hist,
                      seconds_total=time.perf_counter() - t0, seconds_per_epoch=sum(h['seconds'] for h in hist) / max(len(hist), 1),
                      env=environment(str(device))))


def render(js:Path, md:Path, cmd:str):
    r = read_json(js, 'the ResNet-20 training record'); a, h = r['args'], r['history']
    env = r.get('env')
    where = environment_line(env) if env else (
        f"Machine as recorded: device {r['machine']['device']} (the GPU model was not recorded), torch {r['machine']['torch']}, "
        f"{r['machine']['platform']}." if 'machine' in r else environment_line(None))
    L = [f"Made by `{r.get('command', 'python bench/train_resnet20.py')}`" + ('' if 'command' in r else ' (the script\'s defaults then, on a GPU; the run predates '
         'recorded commands)') + f": ResNet-20 (shortcut {a['shortcut']}), {a['epochs']} epochs, SGD with Nesterov momentum 0.9, "
         f"lr {a['lr']} one-cycle, wd 5e-4, batch {a['batch_size']}, random crop (pad 2) + flip, the 90 % / 10 % train / validation "
         f"split of the training set (seed {a['seed']})" + (f", first {a['n_train']:,} training images" if a.get('n_train') else '') +
         f". {where}", '',
         *md_table([['test accuracy', f"**{r['test']['acc']*100:.2f} %** on {r['test']['n']:,} images (loss {r['test']['loss']:.3f})"],
                    ['validation accuracy after the last epoch', f"{h[-1]['val_acc']*100:.2f} %" if 'val_acc' in h[-1] else '—'],
                    ['time per epoch (mean over epochs)', f"{r['seconds_per_epoch']:.1f} s"],
                    ['total time (training + test)', f"{r['seconds_total']:.0f} s"]], ['quantity', 'value']), '',
         'Validation accuracy per epoch: ' + ', '.join(f"{x['val_acc']*100:.1f}" for x in h if 'val_acc' in x) + ' %.', '',
         f"Weights: `{rel(js.with_suffix('.safetensors'))}`; per-epoch history: `{rel(js)}`."]
    write_results(md, 'The reference ResNet-20 on Fashion-MNIST', cmd, L, sources=f'`{rel(js)}`')


def main(argv=None):
    ap = bench_parser(__doc__, 'train_resnet20', seeds=(0,))
    ap.add_argument('--epochs', type=int, default=16)
    ap.add_argument('--lr', type=float, default=0.1)
    ap.add_argument('--batch-size', type=int, default=128)
    ap.add_argument('--shortcut', default='A')
    ap.add_argument('--n-train', type=int, default=None)
    a = parse(ap, argv)
    if a.quick: a.epochs, a.n_train = 1, 2000
    name = 'resnet20_fashion_mnist' + ('' if a.shortcut == 'A' else f'_{a.shortcut}')
    js = a.out / f'{name}.json'
    if not a.render_only: train(a, a.out, name)
    render(js, a.out / 'train_resnet20.md', a.command)


if __name__ == '__main__': main()

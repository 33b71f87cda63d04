"""Train ResNet-20 on Fashion-MNIST (the checkpoint other notebooks start from) and record time per epoch.

    .venv/bin/python bench/train_resnet20.py              # full run (~16 epochs, ~30 min on 2 CPU cores)
    .venv/bin/python bench/train_resnet20.py --epochs 1 --n-train 2000 --out /tmp/quick   # smoke run

Writes `<out>/resnet20_fashion_mnist.safetensors` (+ `.json` with the per-epoch history and test accuracy).
"""
import argparse, json, platform, time
from pathlib import Path
import torch
from functools import partial
from weightnb.core import seed_everything, default_device, write_text_atomic
from weightnb.data import dataloaders, random_crop_flip
from weightnb.models import resnet20, save_model
from weightnb.train import fit, evaluate

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument('--epochs', type=int, default=16)
p.add_argument('--lr', type=float, default=0.1)
p.add_argument('--batch-size', type=int, default=128)
p.add_argument('--shortcut', default='A')
p.add_argument('--n-train', type=int, default=None)
p.add_argument('--seed', type=int, default=0)
p.add_argument('--out', default=str(Path(__file__).parent/'results'))
args = p.parse_args()

seed_everything(args.seed)
dls = dataloaders('fashion-mnist', batch_size=args.batch_size, n_train=args.n_train, seed=args.seed)
model = resnet20(10, in_chans=1, shortcut=args.shortcut)
name = 'resnet20_fashion_mnist' + ('' if args.shortcut == 'A' else f'_{args.shortcut}')
out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
t0 = time.perf_counter()
hist = fit(model, dls.train, epochs=args.epochs, lr=args.lr, wd=5e-4, val_dl=dls.val,
           augment=partial(random_crop_flip, pad=2), progress=False,
           checkpoint=out/'_resume'/f'{name}.pt')     # rerunning after an interruption continues from the last epoch
test = evaluate(model, dls.test)
save_model(model, out/f"{name}.safetensors", dataset="fashion-mnist", test_acc=test["acc"], epochs=args.epochs)
write_text_atomic(out/f'{name}.json', json.dumps(dict(
    args=vars(args), test=test, history=hist, seconds_total=time.perf_counter() - t0,
    seconds_per_epoch=sum(h['seconds'] for h in hist) / max(len(hist), 1),
    machine=dict(cpu_threads=torch.get_num_threads(), device=str(default_device()), torch=torch.__version__,
                 platform=platform.platform())), indent=1))
print(f"test acc {test['acc']:.4f}  loss {test['loss']:.4f}  ({(time.perf_counter()-t0)/60:.1f} min)")

"""Reference zoo: the small zoo CNN (2464 parameters) on Fashion-MNIST, varied seeds and hyperparameters.

Resumable: rerun the same command and finished models are skipped. One torch thread (the machine is shared).

    .venv/bin/python bench/zoo.py --n-models 120 --minutes 25            # generate (stops after the time budget)
    .venv/bin/python bench/zoo.py --report-only                          # just rewrite the results section

The section "## Zoo generation" of bench/results/zoo.md is (re)written; other sections are kept.
"""
import argparse, json, re, time, statistics, subprocess
from pathlib import Path

import torch

from weightnb.zoo import ZooSpec, generate_zoo, Zoo

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / 'results' / 'zoo.md'

def reference_spec(n_train:int, epochs:int, n_val:int, n_test:int)->ZooSpec:
    return ZooSpec(arch='zoo_cnn_small', dataset='fashion-mnist',
                   lr={'loguniform': [1e-3, 3e-2]}, wd={'loguniform': [1e-6, 1e-3]}, opt=['adam', 'sgd'],
                   init=['kaiming_uniform', 'kaiming_normal', 'xavier_uniform', 'xavier_normal'],
                   activation=['relu', 'tanh', 'leakyrelu', 'gelu'], dropout=[0.0, 0.1], batch_size=[64, 128],
                   epochs=epochs, checkpoints=list(range(epochs + 1)), schedule='constant', seed=0,
                   n_train=n_train, n_val=n_val, n_test=n_test)

def du(path:Path)->float:
    return sum(p.stat().st_size for p in path.rglob('*') if p.is_file()) / 2**20

def report(out:Path, cmd:str, wall:float|None):
    zoo = Zoo(out); spec = zoo.spec
    done = [json.loads((m.path / 'done').read_text()) for m in zoo]
    if not done: print('no finished models yet'); return
    secs = [d['seconds'] for d in done]; accs = sorted(d['final_test_acc'] for d in done)
    div = sum(d['status'] != 'done' for d in done)
    df = zoo.frame()
    last = df[df.epoch == df.epoch.max()]
    per_img_epoch = statistics.median(s / (spec.epochs * spec.n_train) for s in secs)
    full_model = per_img_epoch * 25 * 54000            # 25 epochs on the full 54k training split (6k held out for val)
    by_opt = last.groupby('opt').test_acc.median().to_dict()
    by_act = last.groupby('activation').test_acc.median().round(3).to_dict()
    lines = [
        '## Zoo generation', '',
        f'Measured {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())} on the shared 2-core CPU machine (no GPU; the load '
        'average was 6-9 from other jobs, so times are pessimistic), `torch.set_num_threads(1)`, executor `local`, workers=1.', '',
        f'Command: `{cmd}`', '',
        f'Spec (`{out.relative_to(ROOT.parent) if out.is_relative_to(ROOT.parent) else out}/spec.json`): zoo_cnn_small on Fashion-MNIST, '
        f'n_train={spec.n_train} (first images of the seeded 90 % split), n_val={spec.n_val}, n_test={spec.n_test}, '
        f'{spec.epochs} epochs, checkpoints at epochs {spec.checkpoints} (0 = initialisation), constant lr; sampled per model: '
        f'seed, lr ~ logU{spec.lr["loguniform"]}, wd ~ logU{spec.wd["loguniform"]}, opt {spec.opt}, init {spec.init}, '
        f'activation {spec.activation}, dropout {spec.dropout}, batch size {spec.batch_size}.', '',
        '| quantity | value |', '|---|---|',
        f'| finished models | {len(done)} ({div} diverged) |',
        f'| checkpoints | {len(df)} |',
        f'| time per model (median / min / max) | {statistics.median(secs):.1f} s / {min(secs):.1f} s / {max(secs):.1f} s |',
        f'| total training time (sum over models) | {sum(secs)/60:.1f} min |',
        *([f'| wall time of the last generating run (reruns resume: models finished earlier are skipped) | {wall/60:.1f} min |'] if wall else []),
        f'| final test accuracy min / median / max | {accs[0]:.3f} / {statistics.median(accs):.3f} / {accs[-1]:.3f} |',
        f'| final test accuracy quartiles | {accs[len(accs)//4]:.3f} / {accs[(3*len(accs))//4]:.3f} |',
        f'| median final test acc by optimizer | {", ".join(f"{k}: {v:.3f}" for k, v in by_opt.items())} |',
        f'| median final test acc by activation | {", ".join(f"{k}: {v:.3f}" for k, v in by_act.items())} |',
        f'| zoo size on disk | {du(out):.1f} MiB |', '',
        f'Estimate for the full reference zoo (100 models × 25 epochs on all 54k training images, checkpoints 0-25): '
        f'{per_img_epoch*1e6:.0f} µs per training image-epoch (median, including the per-epoch val/test evaluation) gives '
        f'~{full_model/60:.0f} min per model and ~{100*full_model/3600:.0f} h for 100 models on one such core; '
        f'`executor="process"` or `"ray"` divides this by the number of free cores, and a GPU makes it data-loading bound. '
        f'Size: 26 checkpoints × ~10 KiB per model ≈ {26*10*100/1024:.0f} MiB per 100 models.', '',
        'The generated zoo lives in an underscore folder (skipped by nbdev; not in .gitignore, so commit it or not on purpose); regenerate it with '
        'the command above (deterministic given the spec seed).', '']
    text = RESULTS.read_text() if RESULTS.exists() else '# Model zoos and re-basin\n\n'
    section = '\n'.join(lines)
    if '## Zoo generation' in text:
        text = re.sub(r'## Zoo generation\n.*?(?=\n## |\Z)', lambda _: section.rstrip('\n') + '\n', text, flags=re.S)
    else: text = text.rstrip('\n') + '\n\n' + section
    RESULTS.parent.mkdir(parents=True, exist_ok=True); RESULTS.write_text(text)
    print(section)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default=str(ROOT / 'results' / '_zoo_fmnist_small'))
    ap.add_argument('--n-models', type=int, default=120)
    ap.add_argument('--n-train', type=int, default=5000)
    ap.add_argument('--n-val', type=int, default=1000)
    ap.add_argument('--n-test', type=int, default=2000)
    ap.add_argument('--epochs', type=int, default=5)
    ap.add_argument('--minutes', type=float, default=None, help='stop starting new models after this many minutes')
    ap.add_argument('--report-only', action='store_true')
    a = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(a.out)
    cmd = (f'.venv/bin/python bench/zoo.py --n-models {a.n_models} --n-train {a.n_train} --n-val {a.n_val} '
           f'--n-test {a.n_test} --epochs {a.epochs}' + (f' --minutes {a.minutes:g}' if a.minutes else ''))
    if a.report_only: return report(out, cmd, None)
    spec = reference_spec(a.n_train, a.epochs, a.n_val, a.n_test)
    t0 = time.perf_counter()
    for n in range(1, a.n_models + 1):        # one model per call: a time budget can stop between models
        if a.minutes is not None and time.perf_counter() - t0 > 60 * a.minutes: print('time budget reached'); break
        zoo = generate_zoo(spec, out, n, progress=False)
        s = json.loads((out / f'model_{n-1:04d}' / 'done').read_text())
        print(f"model {n-1}: {s['status']} test_acc={s['final_test_acc']:.3f} {s['seconds']:.1f}s "
              f"elapsed={(time.perf_counter()-t0)/60:.1f}min", flush=True)
    report(out, cmd, time.perf_counter() - t0)

if __name__ == '__main__': main()

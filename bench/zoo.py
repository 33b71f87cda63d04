"""Reference zoo: the small zoo CNN (2464 parameters) on Fashion-MNIST, varied seeds and hyperparameters.

    python bench/zoo.py --render-only          # rebuild bench/results/zoo.md from bench/results/zoo.json
    python bench/zoo.py --stats-only           # recompute zoo.json from the packed zoo (seconds), then render
    python bench/zoo.py --minutes 25           # generate the 120 models (resumable), pack them, stats, render
    python bench/zoo.py --quick                # 4 models, 300 training images, 1 epoch (~1 min)

Generation writes member folders into the git-ignored `<out>/_zoo_fmnist_small/` (finished models are skipped on a
rerun), then packs them into the one committed file `<out>/zoo_fmnist_small.safetensors` (`Zoo.pack`); the statistics
in zoo.json and zoo.md are read from the packed file with `weightnb.zoo.Zoo`. The separately trained populations of the
re-basin bench are reported in rebasin.md, not here.
"""
from __future__ import annotations
import json, statistics, time
from pathlib import Path

from _common import bench_parser, parse, read_json, write_json, write_results, environment, environment_line, md_table, rel
from weightnb.zoo import ZooSpec, generate_zoo, Zoo

NAME = 'zoo_fmnist_small'


def reference_spec(n_train:int, epochs:int, n_val:int, n_test:int)->ZooSpec:
    return ZooSpec(arch='zoo_cnn_small', dataset='fashion-mnist',
                   lr={'loguniform': [1e-3, 3e-2]}, wd={'loguniform': [1e-6, 1e-3]}, opt=['adam', 'sgd'],
                   init=['kaiming_uniform', 'kaiming_normal', 'xavier_uniform', 'xavier_normal'],
                   activation=['relu', 'tanh', 'leakyrelu', 'gelu'], dropout=[0.0, 0.1], batch_size=[64, 128],
                   epochs=epochs, checkpoints=list(range(epochs + 1)), schedule='constant', seed=0,
                   n_train=n_train, n_val=n_val, n_test=n_test)


def generate(folder:Path, spec:ZooSpec, n_models:int, minutes:float|None)->float:
    "Train members one call at a time (a time budget can stop between models); returns the wall time."
    t0 = time.perf_counter()
    for n in range(1, n_models + 1):
        if minutes is not None and time.perf_counter() - t0 > 60 * minutes: print('time budget reached'); break
        zoo = generate_zoo(spec, folder, n, progress=False)
        s = zoo[n - 1].status if len(zoo) >= n else {}
        print(f"model {n-1}: {s.get('status')} test_acc={s.get('final_test_acc', float('nan')):.3f} elapsed={(time.perf_counter()-t0)/60:.1f}min", flush=True)
    return time.perf_counter() - t0


def stats(path:Path, wall:float|None)->dict:
    "Generation statistics of the zoo at `path` (a packed file or a folder)."
    zoo = Zoo(path); spec = zoo.spec
    done = [m.status for m in zoo]
    df = zoo.frame(); last = df[df.epoch == df.epoch.max()]
    size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob('*') if p.is_file())
    return dict(path=rel(path), spec=json.loads(spec.to_json()) if spec is not None else None, n_models=len(done),
                n_diverged=sum(d.get('status') != 'done' for d in done), n_checkpoints=len(df),
                seconds=[d['seconds'] for d in done], final_test_acc=[d['final_test_acc'] for d in done],
                median_test_acc_by_opt=last.groupby('opt').test_acc.median().to_dict(),
                median_test_acc_by_activation=last.groupby('activation').test_acc.median().to_dict(),
                size_bytes=size, wall_seconds=wall, env=environment('cpu'))


def render(js:Path, md:Path, cmd:str):
    r = read_json(js, 'zoo statistics'); s = r['spec']
    secs, accs = r['seconds'], sorted(r['final_test_acc'])
    per_img_epoch = statistics.median(x / (s['epochs'] * s['n_train']) for x in secs)
    full_model = per_img_epoch * 25 * 54000     # 25 epochs on the full 54k training split
    q = lambda f: accs[int(f * len(accs))]
    gen = (f"python bench/zoo.py --n-models {r['n_models']} --n-train {s['n_train']} --n-val {s['n_val']} --n-test {s['n_test']} "
           f"--epochs {s['epochs']}")
    L = [f"The zoo trained by `{gen}` (resumable; the spec, and so every member, is determined by these flags), statistics computed "
         f"by `{r.get('command', '?')}` from `{r['path']}` with `weightnb.zoo.Zoo`. "
         f"{environment_line(r.get('env'))} Member training times were recorded by the run that trained each member (one torch "
         'thread, executor `local`, on the shared 2-core CPU).', '',
         f"Spec: {s['arch']} on {s['dataset']}, n_train={s['n_train']} (first images of the seeded 90 % split), n_val={s['n_val']}, "
         f"n_test={s['n_test']}, {s['epochs']} epochs, checkpoints at epochs {s['checkpoints']} (0 = initialisation), {s['schedule']} lr; "
         f"sampled per model: seed, lr ~ logU{s['lr']['loguniform']}, wd ~ logU{s['wd']['loguniform']}, opt {s['opt']}, init {s['init']}, "
         f"activation {s['activation']}, dropout {s['dropout']}, batch size {s['batch_size']}.", '',
         *md_table([
             ['finished models', f"{r['n_models']} ({r['n_diverged']} diverged)"],
             ['checkpoints', f"{r['n_checkpoints']}"],
             ['training time per model (median / min / max)', f"{statistics.median(secs):.1f} s / {min(secs):.1f} s / {max(secs):.1f} s"],
             ['total training time (sum over models)', f"{sum(secs)/60:.1f} min"],
             *([['wall time of the last generating run (models finished earlier are skipped)', f"{r['wall_seconds']/60:.1f} min"]] if r.get('wall_seconds') else []),
             ['final test accuracy min / median / max', f"{accs[0]:.3f} / {statistics.median(accs):.3f} / {accs[-1]:.3f}"],
             ['final test accuracy quartiles', f"{q(0.25):.3f} / {q(0.75):.3f}"],
             ['median final test acc by optimizer', ', '.join(f'{k}: {v:.3f}' for k, v in r['median_test_acc_by_opt'].items())],
             ['median final test acc by activation', ', '.join(f'{k}: {v:.3f}' for k, v in r['median_test_acc_by_activation'].items())],
             ['packed zoo file size' if r['path'].endswith('.safetensors') else 'zoo folder size', f"{r['size_bytes']/2**20:.1f} MiB"]],
             ['quantity', 'value']), '',
         f"Estimate for a full-size zoo (100 models × 25 epochs on all 54k training images): {per_img_epoch*1e6:.0f} µs per training "
         f"image-epoch (median over members, including the per-epoch val/test evaluation) gives ~{full_model/60:.0f} min per model and "
         f"~{100*full_model/3600:.0f} h for 100 models on one such core; `executor='process'` or `'ray'` divides this by the number of "
         'free cores. This is an extrapolation, not a measurement.']
    write_results(md, 'Reference model zoo', cmd, L, sources=f'`{rel(js)}`')


def main(argv=None):
    ap = bench_parser(__doc__, 'zoo', seeds=None)
    for k, v in dict(n_models=120, n_train=5000, n_val=1000, n_test=2000, epochs=5).items():
        ap.add_argument('--' + k.replace('_', '-'), type=int, default=v)
    ap.add_argument('--minutes', type=float, default=None, help='stop starting new models after this many minutes')
    ap.add_argument('--stats-only', action='store_true', help='no training: statistics from the existing packed zoo')
    a = parse(ap, argv)
    if a.quick: a.n_models, a.n_train, a.n_val, a.n_test, a.epochs = 4, 300, 200, 200, 1
    folder, packed, js = a.out / f'_{NAME}', a.out / f'{NAME}.safetensors', a.out / 'zoo.json'
    if not a.render_only:
        wall = None
        if not a.stats_only:
            wall = generate(folder, reference_spec(a.n_train, a.epochs, a.n_val, a.n_test), a.n_models, a.minutes)
            Zoo(folder).pack(packed)
        write_json(js, dict(command=a.command, **stats(packed if packed.exists() else folder, wall)))
    render(js, a.out / 'zoo.md', a.command)


if __name__ == '__main__': main()

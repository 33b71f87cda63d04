"""Dashboard speed (issue 13): on the reference ResNet-20 and 2,000 Fashion-MNIST test images, the time from a click
to the first point of a 1-D interpolation (goal <= 3 s), the whole 11-point curve against eleven plain `evaluate`
passes (goal <= 1.2x), one point per call or several alphas per vmapped pass (`points_per_pass`), and an S_ratio
redraw for ResNet-56 (goal < 0.5 s). Timings are interleaved within each repetition so load changes hit all variants."""
import os, statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_parser, parse, write_json, read_json, write_results, md_table, environment, environment_line, resolve_device

ap = bench_parser(__doc__.splitlines()[0], 'dashboards')
ap.add_argument('--n-test', type=int, default=2000, help='test images (default 2000)')
ap.add_argument('--reps', type=int, default=2, help='repetitions of every timing (default 2)')
ap.add_argument('--chunks', default='1,4', help='points_per_pass values to compare (default 1,4)')
a = parse(ap)
if a.quick: a.n_test, a.reps, a.chunks = 500, 1, '1,4'
OUT = a.out / 'dashboards.json'


def measure():
    from weightnb.models import load_model, resnet56
    from weightnb.data import load_dataset
    from weightnb.train import evaluate, preload_batches
    from weightnb import spectral
    from weightnb.dashboards import LandscapeDashboard, SRatioDashboard
    from _common import ROOT
    dev = resolve_device(a.device); load0 = os.getloadavg()[0]
    model = load_model(ROOT / 'bench/results/resnet20_fashion_mnist.safetensors', device=dev).eval()
    test = load_dataset('fashion-mnist', 'test')
    batches = preload_batches([(test.x[i:i + 500], test.y[i:i + 500]) for i in range(0, a.n_test, 500)], dev)
    models = {'original': model, 'low-pass': spectral.lowpass_model(model, 0.75, 'layer3')}
    chunks = [int(c) for c in a.chunks.split(',')]
    dash = {k: LandscapeDashboard(models, batches, points_per_pass=k, device=dev, auto=False) for k in chunks}
    for d in dash.values(): d.set(a='original', b='low-pass', lo=0., hi=1., steps=11)
    evaluate(model, batches); dash[chunks[0]].run()                      # warm-up (first-call allocations)
    rows = {'evaluate x11': []} | {f'dashboard k={k}': [] for k in chunks}
    cpu = {n: [] for n in rows}                                            # CPU seconds of this process: less load-dependent
    first, first_cpu = {k: [] for k in chunks}, {k: [] for k in chunks}
    for rep in range(a.reps):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(11): evaluate(model, batches)
        rows['evaluate x11'].append(time.perf_counter() - t0); cpu['evaluate x11'].append(time.process_time() - c0)
        for k, d in dash.items():
            d.cache.clear()
            t0, c0 = time.perf_counter(), time.process_time(); job = d.start()   # what the Run button does
            while not any(i == job.id and n >= 1 for i, n in d.draws): time.sleep(0.002)
            first[k].append(time.perf_counter() - t0); first_cpu[k].append(time.process_time() - c0)
            d.wait(); rows[f'dashboard k={k}'].append(time.perf_counter() - t0); cpu[f'dashboard k={k}'].append(time.process_time() - c0)
            assert d.error is None and len(d.figure.data[0].y) == 11, d.message.value
        print(f'rep {rep}:', {n: round(v[-1], 2) for n, v in rows.items()}, {k: round(v[-1], 2) for k, v in first.items()}, flush=True)
    ref = dash[chunks[0]].figure.data[0].y
    diffs = {k: max(abs(x - y) for x, y in zip(d.figure.data[0].y, ref)) for k, d in dash.items()}

    sr_models = {'a': resnet56(), 'b': resnet56()}
    s = SRatioDashboard(sr_models, reference=resnet56(), device=dev, auto=False)
    s.run(); compute, redraw = [], []
    for _ in range(max(a.reps, 3)):
        s.cache.clear(); t0 = time.perf_counter(); s.set(view='difference').run(); compute.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); s.set(view='absolute').run(); redraw.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); s.set(view='difference').run(); redraw.append(time.perf_counter() - t0)
    return dict(n_test=a.n_test, reps=a.reps, chunks=chunks, curve_s=rows, curve_cpu_s=cpu, first_point_s={str(k): v for k, v in first.items()},
                first_point_cpu_s={str(k): v for k, v in first_cpu.items()},
                loss_max_abs_diff_vs_k1={str(k): v for k, v in diffs.items()}, s_ratio_resnet56=dict(compute_s=compute, redraw_s=redraw),
                load_avg=[load0, os.getloadavg()[0]], env=environment(str(dev)), command=a.command)


def reading(r):
    "Sentences read off the numbers (so they change when the numbers do)."
    med = lambda v: statistics.median(v)
    f1, f1c = med(r['first_point_s']['1']), med(r['first_point_cpu_s']['1'])
    ratio = med(r['curve_cpu_s']['dashboard k=1']) / med(r['curve_cpu_s']['evaluate x11'])
    out = [f"Reading: with one α per call the first point costs {f1c:.2f} CPU s ({'within' if f1c <= 3 else 'above'} the 3 s goal on an "
           f"otherwise idle core) and took {f1:.2f} s of wall time in this run ({'within' if f1 <= 3 else 'above'} the goal); "
           f"the whole curve costs {ratio:.2f}× the CPU of eleven `evaluate` passes ({'within' if ratio <= 1.2 else 'above'} the 1.2× goal)."]
    for k in r['chunks']:
        if k == 1: continue
        rk = med(r['curve_cpu_s'][f'dashboard k={k}']) / med(r['curve_cpu_s']['dashboard k=1'])
        out.append(f"Evaluating {k} α per vmapped pass (`landscape.interpolate(points_per_pass={k})`) costs {rk:.2f}× the CPU of one α per "
                   f"call here ({'slower' if rk > 1 else 'faster'}), so `LandscapeDashboard` keeps `points_per_pass=1` by default on the CPU"
                   f"{'' if rk > 1 else ' (revisit: batching measured faster)'}" + ('.' if r['env'].get('gpu') else '; no GPU was available to this run.'))
    return [' '.join(out)]


def render(r):
    med = lambda v: statistics.median(v)
    ev, evc = med(r['curve_s']['evaluate x11']), med(r['curve_cpu_s']['evaluate x11'])
    rows = [['eleven `evaluate` passes', '—', f'{ev:.2f}', f'{evc:.2f}', '1.00×', '1.00×', '—']]
    for k in r['chunks']:
        t, tc = med(r['curve_s'][f'dashboard k={k}']), med(r['curve_cpu_s'][f'dashboard k={k}'])
        f, fc = med(r['first_point_s'][str(k)]), med(r['first_point_cpu_s'][str(k)])
        rows.append([f'dashboard, {k} α per call' + (' (default)' if k == 1 else ''), f'{f:.2f} ({fc:.2f} CPU)', f'{t:.2f}', f'{tc:.2f}',
                     f'{t / ev:.2f}×', f'{tc / evc:.2f}×', f"{r['loss_max_abs_diff_vs_k1'][str(k)]:.1e}"])
    sr = r['s_ratio_resnet56']
    lines = [
        f"Reference ResNet-20 (`bench/results/resnet20_fashion_mnist.safetensors`), {r['n_test']:,} Fashion-MNIST test images in "
        f"batches of 500, original → low-pass copy (`layer3`, D0 = 0.75), 11 α in [0, 1]. Times are medians of {r['reps']} "
        "interleaved repetitions, in seconds; 'first point' is from `start()` (what the Run button calls) to the first "
        "point drawn into the `FigureWidget`; the curve time includes every redraw.", '',
        *md_table(rows, ['what', 'first point (s)', '11-point curve (s)', 'curve CPU (s)', 'wall vs evaluate ×11',
                         'CPU vs evaluate ×11', 'max |Δ loss| vs 1 α per call']), '',
        "CPU seconds (`time.process_time`, all threads of the process) are the load-independent comparison: on a shared "
        "machine the wall time of a pass depends on what else runs at that moment.", '',
        f"Goals: first point ≤ 3 s, curve ≤ 1.2× eleven `evaluate` passes. The 1-minute load average was "
        f"{r['load_avg'][0]:.1f} at the start and {r['load_avg'][1]:.1f} at the end of the run (on {r['env'].get('cpu_count')} logical "
        "CPUs)" + (", so absolute times are inflated" if max(r['load_avg']) > 2 else "") + "; the ratios are measured side by side.", '',
        *reading(r), '',
        '## S_ratio, ResNet-56', '',
        *md_table([['compute (3 models, uncached)', f"{med(sr['compute_s']):.3f}"], ['redraw (view toggle, cached)', f"{med(sr['redraw_s']):.3f}"]],
                  ['SRatioDashboard, two ResNet-56 against a reference', 'median (s)']), '',
        'Goal: redraw < 0.5 s.', '', environment_line(r['env']),
    ]
    write_results(a.out / 'dashboards.md', 'Dashboard speed', r['command'], lines, sources='`dashboards.json`')


r = read_json(OUT, 'dashboard timings') if a.render_only else write_json(OUT, measure()) and read_json(OUT)
render(r)

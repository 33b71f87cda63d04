"""The one skeleton every bench script uses: shared flags, environment stamp, a cache of finished runs,
atomic JSON, and markdown results rendered from that JSON.

A bench script reads like this:

    from _common import bench_parser, parse, RunCache, write_results, md_table
    ap = bench_parser('What this script reproduces.', 'predictors')
    ap.add_argument('--hidden', type=int, default=140)       # its own flags
    a = parse(ap)                                            # threads set, a.out / a.command / a.seeds resolved
    cache = RunCache(a.out / 'predictors')                   # one JSON per finished run, skipped when it exists
    if not a.render_only: r = cache.run('recon_h140_s0', lambda: dict(acc=...), config=dict(hidden=140, seed=0))
    write_results(a.out / 'predictors.md', 'Title', a.command, body_lines)   # first line: the exact command

Conventions (see bench/README.md):
- `python bench/NAME.py` is the full run; `--quick` a minutes-long run of the same code path on tiny settings, which
  writes under `bench/_out/quick/` (git-ignored) unless `--out` says otherwise, so it never overwrites committed results.
- `--render-only` rebuilds the markdown from the JSON already on disk without computing anything.
- Results files are generated, never edited by hand; each starts with the command that wrote it.
- Every ± in a results file is the sample standard deviation (n - 1) over the n seeds named in its header (`mean_sd`).
Scripts import only this module and the library, never each other.
"""
from __future__ import annotations
import argparse, hashlib, json, math, os, platform, shlex, statistics, subprocess, sys, time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch

ROOT = Path(__file__).resolve().parents[1]          # the repository root, whatever the current directory
RESULTS = ROOT / 'bench' / 'results'                # committed results
QUICK_OUT = ROOT / 'bench' / '_out' / 'quick'       # default --out of --quick runs (git-ignored)
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))   # `python bench/NAME.py` finds weightnb from a checkout

from weightnb.core import WeightnbError, ConfigError, write_text_atomic  # noqa: E402


class BenchError(WeightnbError):
    "A bench script was asked for something it cannot do (e.g. render results whose JSON does not exist)."


# ---------------------------------------------------------------------------------------------------------------
# flags
def _seed_list(s:str)->list[int]:
    try: return [int(x) for x in s.split(',') if x.strip()]
    except ValueError: raise argparse.ArgumentTypeError(f'--seeds takes comma-separated integers such as 0,1,2, not {s!r}')


def bench_parser(description:str, # first line of the script's docstring, or the whole docstring
                 name:str|None=None, # script name (default: the running file's stem)
                 seeds:Sequence[int]|None=(0,), # default --seeds of the full run
                 )->argparse.ArgumentParser:
    "An `ArgumentParser` with the shared flags `--quick`, `--device`, `--seeds`, `--out`, `--render-only`, `--threads`."
    ap = argparse.ArgumentParser(prog=f'python bench/{name or Path(sys.argv[0]).stem}.py', description=description,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='minutes-long run of the same code on tiny settings '
                    f'(writes under {QUICK_OUT.relative_to(ROOT)}/ unless --out is given)')
    ap.add_argument('--device', default='cpu', help="'cpu', 'cuda' or 'cuda:N' (default cpu)")
    ap.add_argument('--seeds', type=_seed_list, default=list(seeds) if seeds is not None else None,
                    help=f'comma-separated seeds (default {",".join(map(str, seeds)) if seeds else "the script default"})')
    ap.add_argument('--out', type=Path, default=None, help=f'results folder (default {RESULTS.relative_to(ROOT)}/)')
    ap.add_argument('--render-only', action='store_true', help='rebuild the markdown from the JSON on disk; compute nothing')
    ap.add_argument('--threads', type=int, default=1, help='torch CPU threads (default 1: the machine is shared)')
    return ap


def command(argv:Sequence[str]|None=None, script:str|None=None)->str:
    "The exact command line that ran this script, relative to the repository root."
    argv = list(sys.argv if argv is None else argv)
    script = script or argv[0]
    p = Path(script).resolve()
    rel = p.relative_to(ROOT) if p.is_relative_to(ROOT) else Path(script)
    return shlex.join(['python', str(rel), *argv[1:]])


def parse(ap:argparse.ArgumentParser, argv:Sequence[str]|None=None)->argparse.Namespace:
    "Parse, set torch threads, resolve `out` (a Path) and add `command` (the exact command line)."
    a = ap.parse_args(argv)
    torch.set_num_threads(max(1, a.threads))
    if a.out is None: a.out = QUICK_OUT if a.quick else RESULTS
    a.out = Path(a.out).resolve()
    a.command = command(None if argv is None else [sys.argv[0], *argv])
    return a


def resolve_device(device:str|None)->torch.device:
    "The library's device resolution (explicit 'cuda' without a GPU is an error, not a silent CPU run)."
    import weightnb.core as core
    if hasattr(core, 'resolve_device'): return core.resolve_device(device)
    d = torch.device(device or 'cpu')
    if d.type == 'cuda' and not torch.cuda.is_available():
        raise BenchError(f"--device {device} asked for a GPU but torch sees none; use --device cpu")
    return d


# ---------------------------------------------------------------------------------------------------------------
# environment stamp
def _cpu_model()->str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'): return line.split(':', 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine()


def git_commit()->str:
    "HEAD's short hash, with '+dirty' when tracked files differ from it ('unknown' outside git)."
    try:
        h = subprocess.run(['git', 'rev-parse', '--short=12', 'HEAD'], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=ROOT, capture_output=True,
                               text=True, timeout=30).stdout.strip()
        return (h + ('+dirty' if dirty else '')) if h else 'unknown'
    except (OSError, subprocess.SubprocessError): return 'unknown'


def environment(device:str|None=None)->dict:
    "Versions, CPU/GPU, threads and git commit: stored in every run's JSON and printed under each results table."
    import numpy, weightnb
    env = dict(time_utc=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), python=platform.python_version(),
               torch=torch.__version__, numpy=numpy.__version__, weightnb=weightnb.__version__,
               platform=platform.platform(), cpu=_cpu_model(), cpu_count=os.cpu_count(),
               torch_threads=torch.get_num_threads(), git=git_commit(), device=str(device or 'cpu'))
    if torch.cuda.is_available(): env['gpu'] = torch.cuda.get_device_name(0)
    return env


def environment_line(env:dict|None)->str:
    "One sentence describing an environment stamp (or saying there is none)."
    if not env: return 'Environment: not recorded (run made before the bench skeleton stamped runs).'
    gpu = f", GPU {env['gpu']}" if env.get('gpu') else ''
    return (f"Environment: {env.get('time_utc', '?')}, weightnb {env.get('weightnb', '?')} at git {env.get('git', '?')}, "
            f"torch {env.get('torch', '?')}, Python {env.get('python', '?')}, {env.get('cpu', '?')} "
            f"({env.get('cpu_count', '?')} logical CPUs){gpu}, {env.get('torch_threads', '?')} torch thread(s), "
            f"device {env.get('device', '?')}.")


# ---------------------------------------------------------------------------------------------------------------
# JSON
def _default(o):
    if hasattr(o, 'item'): return o.item()          # numpy / torch scalars
    if hasattr(o, 'tolist'): return o.tolist()
    if isinstance(o, (set, tuple)): return list(o)
    if isinstance(o, Path): return str(o)
    raise TypeError(f'{type(o).__name__} is not JSON serialisable')


def write_json(path:str|Path, obj)->Path:
    "Write `obj` as indented JSON atomically (a crash never leaves half a file)."
    path = Path(path); path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(obj, indent=1, default=_default) + '\n')
    return path


def read_json(path:str|Path, what:str='bench results'):
    "Read a JSON file, naming it when it is missing or invalid."
    path = Path(path)
    if not path.exists(): raise BenchError(f'{what}: {path} does not exist; run the script without --render-only first')
    try: return json.loads(path.read_text())
    except json.JSONDecodeError as e: raise ConfigError(f'{what}: {path} is not valid JSON ({e}); delete it to recompute') from e


def config_key(prefix:str, config:dict, n:int=10)->str:
    "A file-safe key for a run: `prefix` plus a short hash of its config (sorted JSON)."
    h = hashlib.sha1(json.dumps(config, sort_keys=True, default=_default).encode()).hexdigest()[:n]
    return f'{prefix}_{h}' if prefix else h


class RunCache:
    """One JSON per finished run in `folder`; a run whose JSON exists is loaded, not recomputed (resume after a stop).
    `legacy_config` gives config values that runs stored before the key existed had implicitly (e.g. {'layers': 'no_stem'}):
    they are filled in on reading, and a stored run is reused only when those values match the new config."""
    def __init__(self, folder:str|Path, device:str|None=None, command:str|None=None, legacy_config:dict|None=None):
        self.folder, self.device, self.command, self.legacy = Path(folder), device, command, dict(legacy_config or {})

    def path(self, key:str)->Path: return self.folder / f'{key}.json'
    def __contains__(self, key:str)->bool: return self.path(key).exists()
    def keys(self)->list[str]: return sorted(p.stem for p in self.folder.glob('*.json'))
    def get(self, key:str, default=None):
        "The stored result of run `key`, or `default` when it has not finished."
        if key not in self: return default
        r = read_json(self.path(key), f'run {key}')
        if self.legacy and isinstance(r, dict):
            for k, v in self.legacy.items(): r.setdefault('config', {}).setdefault(k, v)
        return r
    def all(self)->dict:
        "Every finished run in the folder, by key."
        return {k: self.get(k) for k in self.keys()}

    def run(self, key:str, fn:Callable[[], dict], config:dict|None=None)->dict:
        "`fn()` (a dict) unless `key` finished already; stores it with its config, wall time, command and environment."
        if key in self:
            r = self.get(key)
            for k in self.legacy if config is not None else ():
                if r['config'][k] != config.get(k):
                    raise ConfigError(f'{self.path(key)} holds a run with {k}={r["config"][k]!r}, this run asks for '
                                      f'{k}={config.get(k)!r}; delete it or choose another --out')
            if self.legacy and set(r['config']) == set(self.legacy): return r   # stored before configs were recorded
            if config is not None and 'config' in r and json.loads(json.dumps(config, default=_default)) != r['config']:
                raise ConfigError(f'{self.path(key)} holds a run with a different config ({r["config"]} vs {config}); '
                                  'delete it or choose another --out')
            return r
        t0 = time.perf_counter(); r = fn()
        r = dict(r, wall_s=time.perf_counter() - t0)
        if config is not None: r['config'] = config
        r.setdefault('command', self.command or command())
        r.setdefault('env', environment(self.device))
        write_json(self.path(key), r)
        print(key, {k: v for k, v in r.items() if isinstance(v, (int, float, str)) and k not in ('command',)}, flush=True)
        return r


# ---------------------------------------------------------------------------------------------------------------
# statistics and markdown
def mean_sd(vals:Sequence[float], scale:float=100, digits:int=2, missing:str='not run')->str:
    "'mean ± sd' with the sample standard deviation (n - 1); a single value alone; `missing` when empty."
    vals = [v for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals: return missing
    if len(vals) == 1: return f'{vals[0] * scale:.{digits}f}'
    return f'{statistics.mean(vals) * scale:.{digits}f} ± {statistics.stdev(vals) * scale:.{digits}f}'


def sd_note(ns:Iterable[int]|int)->str:
    "The sentence every table with ± carries: what ± is and over how many seeds."
    ns = sorted({ns} if isinstance(ns, int) else set(ns))
    if ns == [1]: return 'One seed per value, so no ± is given.'
    n = ' or '.join(map(str, ns)) if ns else '?'
    return f'± is the sample standard deviation (n − 1 in the denominator) over n = {n} seeds; a value without ± is a single run.'


def fmt(v, digits:int=2, scale:float=1, missing:str='—')->str:
    "A table cell: numbers formatted, None as `missing`, everything else as str."
    if v is None: return missing
    if isinstance(v, bool): return 'yes' if v else 'no'
    if isinstance(v, int) and scale == 1: return f'{v:,}'
    if isinstance(v, (int, float)): return f'{v * scale:.{digits}f}'
    return str(v)


def md_table(rows:Sequence[Sequence|dict], # rows as lists of cells, or dicts keyed by column
             headers:Sequence[str]|None=None, # column titles (default: the first dict's keys)
             digits:int=2, # decimals of float cells
             )->list[str]:
    "Markdown table lines from rows of cells (strings kept, numbers formatted by `fmt`)."
    if rows and isinstance(rows[0], dict):
        headers = list(headers or rows[0]); rows = [[r.get(h) for h in headers] for r in rows]
    if headers is None: raise BenchError('md_table needs headers when rows are lists')
    cell = lambda v: v if isinstance(v, str) else fmt(v, digits)
    return (['| ' + ' | '.join(headers) + ' |', '|' + '---|' * len(headers)] +
            ['| ' + ' | '.join(cell(v) for v in r) + ' |' for r in rows])


def write_results(path:str|Path, title:str, cmd:str, lines:Sequence[str], sources:str|None=None)->Path:
    "Write a generated results file: the command that wrote it first, then the title and `lines`."
    path = Path(path)
    head = [f'Generated by `{cmd}`' + (f' from {sources}' if sources else '') + '; do not edit by hand.', '', f'# {title}', '']
    text = '\n'.join([*head, *lines]).rstrip('\n') + '\n'
    path.parent.mkdir(parents=True, exist_ok=True); write_text_atomic(path, text)
    print(f'wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}')
    return path


def rel(path:str|Path)->str:
    "A path relative to the repository root, for results files."
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def plot_xy(path:str|Path, xs, ys, xlabel:str, ylabel:str, hline:float|None=None, labels=None, logx:bool=False):
    "A small static line plot (matplotlib, Agg) for a results file."
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.4)); ax.plot(xs, ys, 'o-')
    for x, y, t in zip(xs, ys, labels or []): ax.annotate(t, (x, y), textcoords='offset points', xytext=(4, -11), fontsize=8)
    if logx: ax.set_xscale('log')
    elif all(isinstance(x, int) for x in xs): ax.set_xticks(list(xs))
    if hline is not None: ax.axhline(hline, ls=':', c='r', label='original'); ax.legend(loc='lower right')
    ax.set_xlabel(xlabel); ax.set_ylabel(ylabel); fig.tight_layout(); fig.savefig(path, dpi=100); plt.close(fig)


# ---------------------------------------------------------------------------------------------------------------
# predictor runs (shared by predictors.py, predictors_recon_long.py, predictors_noise_long.py)
PREDICTOR_RUNS = RESULTS / 'predictors'             # one JSON per finished predictor run (hours of compute: never delete)
TARGET = RESULTS / 'resnet20_fashion_mnist.safetensors'   # written by bench/train_resnet20.py


def fashion_target(device:str='cpu', n_train:int|None=None, n_val:int|None=None, n_test:int|None=None):
    "The reference ResNet-20 and its Fashion-MNIST loaders (validation = the 10 % split, seed 0, that training held out)."
    from weightnb.data import dataloaders
    from weightnb.models import load_model
    kw = {k: v for k, v in dict(n_val=n_val, n_test=n_test).items() if v is not None}
    dls = dataloaders('fashion-mnist', batch_size=128, val_fraction=0.1, seed=0, n_train=n_train, **kw)
    return load_model(TARGET).eval().to(device), dls


def slim_result(res)->dict:
    "The JSON-worthy part of a `PredictorResult`: final metrics and the validated points of its history."
    return dict(metrics=res.metrics, history=[h for h in res.history if 'score' in h])


def trained_predictor(cache:RunCache, key:str, fn:Callable, config:dict|None=None)->dict:
    "`cache.run` for a `train_predictor` call; also keeps the predictor weights (`key.predictor.safetensors`, git-ignored)."
    from weightnb.core import save_weights
    def run():
        res = fn(); save_weights(res.predictor.state_dict(), cache.folder / f'{key}.predictor.safetensors'); return slim_result(res)
    return cache.run(key, run, config)


def load_predictor(cache:RunCache, key:str, hidden:int):
    "The saved predictor of run `key` (raises a clear error when its weights were not kept)."
    from weightnb.core import load_weights
    from weightnb import predictors as P
    path = cache.folder / f'{key}.predictor.safetensors'
    if not path.exists(): raise BenchError(f'{path} not found: rerun {key} (delete {key}.json) to recreate its predictor weights')
    pred = P.KernelPredictor(240, hidden); pred.load_state_dict(load_weights(path)); return pred


def recon_then_decoupled(cache:RunCache, target, dls, hidden:int, seed:int, steps:int, phase2_steps:int, cfg:dict, tag:str=''):
    "A recon-only run and the decoupled phase 2 that starts from its best predictor (keys `recon_h{hidden}{tag}_s{seed}`, `decoupled_...`)."
    from weightnb import predictors as P
    key = f'h{hidden}{tag}_s{seed}'
    conf = dict(hidden=hidden, seed=seed, steps=steps, **cfg)
    trained_predictor(cache, f'recon_{key}', lambda: P.train_predictor(target, hidden, 'recon', dls, steps=steps, seed=seed, **cfg),
                      dict(conf, mode='recon'))
    trained_predictor(cache, f'decoupled_{key}', lambda: P.train_predictor(
        target, hidden, 'decoupled', dls, steps=0, phase2_steps=phase2_steps, seed=seed,
        predictor=load_predictor(cache, f'recon_{key}', hidden), **cfg), dict(conf, mode='decoupled', phase2_steps=phase2_steps))


def _selftest():
    "Checks of this module (`python bench/_common.py`): cache skip and config mismatch, sample sd, tables, results header."
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        cache, calls = RunCache(d, command='python bench/x.py'), []
        r = cache.run('k', lambda: calls.append(1) or dict(acc=0.5), config=dict(h=1))
        assert cache.run('k', lambda: calls.append(1) or dict(acc=0.9), config=dict(h=1))['acc'] == 0.5 and len(calls) == 1
        assert r['command'] == 'python bench/x.py' and 'git' in r['env'] and r['config'] == dict(h=1)
        try: cache.run('k', lambda: dict(acc=1.), config=dict(h=2)); raise AssertionError('a changed config must not reuse a run')
        except ConfigError: pass
        assert mean_sd([0.9, 0.92, 0.94]) == '92.00 ± 2.00' and mean_sd([0.5]) == '50.00' and mean_sd([]) == 'not run'
        assert md_table([dict(a=1, b=0.123)]) == ['| a | b |', '|---|---|', '| 1 | 0.12 |']
        p = write_results(Path(d) / 'x.md', 'T', 'python bench/x.py --quick', ['body'])
        assert p.read_text().splitlines()[0].startswith('Generated by `python bench/x.py --quick`')
        try: read_json(Path(d) / 'missing.json'); raise AssertionError('missing JSON must raise')
        except BenchError: pass
    print('bench/_common.py: all checks passed')


if __name__ == '__main__': _selftest()

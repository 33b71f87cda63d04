"""Issue 19: hostile and careless inputs, before (commit b0f9d9a) and after (this tree).

    python bench/reliability.py                 # both versions, then bench/results/reliability.md (~10 min, 1 CPU thread)
    python bench/reliability.py --quick         # the current tree only, written under bench/_out/quick/
    python bench/reliability.py --render-only   # rebuild the markdown from bench/results/reliability.json

Every case runs the public API the same way against both versions: the old code from a git worktree
(`git worktree add --detach /tmp/wt_before b0f9d9a`, imported through PYTHONPATH), the new one from this checkout.
Each version runs in its own worker process (`--worker`), each case in a try/except with its own temporary folder;
cases that need processes of their own (two concurrent `generate_zoo`, the console script) start them. A case ends
as one of: `ok` (the right result), `wrong` (it returned, but the result is wrong: silently wrong), `error` (a specific
weightnb error), `misleading` (a weightnb error whose message lacks what it must name), `raw` (a torch / scipy / json /
Python exception). The after worker also measures the cost of the NaN/Inf check that `evaluate` now runs.
"""
from __future__ import annotations
import contextlib, io, json, os, subprocess, sys, tempfile, time, traceback, warnings
from pathlib import Path

BEFORE = 'b0f9d9a'
HERE = Path(__file__).resolve()
CASES = []          # (id, issue item, owner, expected statuses, must_mention, fn)


def case(item:str, owner:str, expect=('error',), mention:tuple=()):
    "Register a case: `fn(tmp)` returns ('ok' | 'wrong' | 'skip', detail) or raises."
    def deco(fn): CASES.append((fn.__name__, item, owner, tuple(expect), tuple(mention), fn)); return fn
    return deco


# =====================================================================================================================
# worker: the cases (only the public API of weightnb; runs against whichever weightnb PYTHONPATH provides)
def _digits_batches(n=2, bs=64):
    from weightnb.data import dataloaders
    return [b for _, b in zip(range(n), dataloaders('digits', batch_size=bs).test)]

def _bn_net():
    import torch.nn as nn
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 10))

def _tiny():
    import torch.nn as nn
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 10))

def _spec(**kw):
    from weightnb.zoo import ZooSpec
    return ZooSpec(**{**dict(arch='zoo_cnn_small', dataset='fashion-mnist', lr=1e-3, wd=0., opt='adam', epochs=2,
                             checkpoints=[0, 1, 2], n_train=256, n_val=64, n_test=128, batch_size=64), **kw})

def _zoo(tmp, n=1, **kw):
    from weightnb.zoo import generate_zoo
    return generate_zoo(_spec(**kw), tmp / 'zoo', n, progress=False)

def _floats(x)->list[float]:
    "Every number in a target (a number, tensor, or dict/list of them)."
    if isinstance(x, dict): return [v for y in x.values() for v in _floats(y)]
    if isinstance(x, (list, tuple)): return [v for y in x for v in _floats(y)]
    return [float(v) for v in x.flatten().tolist()] if hasattr(x, 'flatten') else [float(x)]

def _same(a, b):
    import torch
    return list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


# --- silently wrong today (issue items 1-13) -------------------------------------------------------------------------
@case('1', 'C (zoo)', expect=('ok', 'error'))
def zoo_member_missing_later_checkpoints(tmp):
    from weightnb.core import WeightnbError
    from weightnb.zoo import Zoo
    zoo = _zoo(tmp); name = zoo[0].name
    for e in (1, 2): (zoo[0].path / f'epoch_{e:03d}.safetensors').unlink()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        try:
            z = Zoo(tmp / 'zoo'); listed = name in [m.name for m in z]
            got = z[name].state_dict() if listed else None; raised = None
        except WeightnbError as e: listed, got, raised = None, None, f'{type(e).__name__}: {e}'
    noticed = raised or next((str(x.message) for x in w if name in str(x.message)), None)
    retrained = (_zoo(tmp)[0].path / 'epoch_002.safetensors').exists()
    if noticed and retrained: return 'ok', f'noticed ({noticed[:110]}); listed={listed}; generate_zoo retrained it'
    return 'wrong', f"state_dict() returned {'an earlier epoch' if got is not None else 'nothing'} unnoticed; generate_zoo retrained={retrained}"

@case('2', 'A2 (landscape)', expect=('ok',))
def interpolate_bn_extrapolation(tmp):
    import torch
    from weightnb.landscape import interpolate
    a, b = _bn_net(), _bn_net()
    with torch.no_grad(): a[1].running_var.fill_(1.); b[1].running_var.fill_(4.)
    df = interpolate(a, b, [-0.5, 0., 1., 1.5], eval_fn=_digits_batches())
    losses = [float(x) for x in df['loss']]
    if all(x == x and abs(x) != float('inf') for x in losses): return 'ok', f'losses {[round(x, 3) for x in losses]}'
    return 'wrong', f'losses {losses} (NaN beside an accuracy)'

@case('3', 'A1 (models)', expect=('ok',), mention=('suffix',))
def save_model_pt_round_trip(tmp):
    from weightnb.models import save_model, load_model, zoo_cnn_small
    m = zoo_cnn_small(hidden=7); save_model(m, tmp / 'm.pt')
    back = load_model(tmp / 'm.pt')
    if back.arch == m.arch and _same(m.state_dict(), back.state_dict()): return 'ok', 'm.pt loads back the same model'
    return 'wrong', 'loaded a different model'

@case('3', 'A1 (cli)', expect=('ok',))
def cli_train_out_pt(tmp):
    from weightnb.models import load_model
    rc, out, err = _cli('train', '--arch', 'resnet20', '--dataset', 'digits', '--epochs', '1', '--n-train', '128', '--quiet',
                        '--out', str(tmp / 'x.pt'))
    if rc != 0: return 'wrong', f'exit {rc}: {err.strip()[-200:]}'
    try: load_model(tmp / 'x.pt'); return 'ok', 'exit 0 and x.pt loads with load_model'
    except Exception as e: return 'wrong', f'exit 0 but the file does not load: {type(e).__name__}: {str(e)[:150]}'

@case('4', 'A1 (train)')
def fit_empty_loader(tmp):
    from weightnb.train import fit
    h = fit(_tiny(), [], epochs=2, progress=False, device='cpu')
    return 'wrong', f'returned {len(h)} epochs, first {h[0] if h else None}'

@case('5', 'A1 (models)', expect=('ok',))
def float64_save_load(tmp):
    import torch
    from weightnb.models import save_model, load_model, zoo_cnn_small
    m = zoo_cnn_small().double()
    with torch.no_grad(): m.fc2.weight[0, 0] = 1 / 3
    back = load_model(save_model(m, tmp / 'm.safetensors'))
    w = back.fc2.weight
    if w.dtype == torch.float64 and w[0, 0].item() == 1 / 3: return 'ok', 'float64, same values'
    return 'wrong', f'came back {w.dtype}, 1/3 stored as {w[0, 0].item():.17g}'

@case('6', 'A1 (train)')
def reestimate_bn_empty(tmp):
    import torch
    from weightnb.train import reestimate_bn
    m = _bn_net()
    with torch.no_grad(): m[1].running_var.fill_(3.)
    reestimate_bn(m, [])
    return 'wrong', f'returned; running_var now {m[1].running_var[0].item()} (was 3.0)'

@case('6', 'A1 (train)')
def reestimate_bn_zero_batches(tmp):
    import torch
    from weightnb.train import reestimate_bn
    m = _bn_net()
    with torch.no_grad(): m[1].running_var.fill_(3.)
    reestimate_bn(m, _digits_batches(), n_batches=0)
    return 'wrong', f'returned; running_var now {m[1].running_var[0].item()} (was 3.0)'

@case('7', 'C (zoo)', expect=('ok', 'error'))
def member_without_metrics(tmp):
    import math
    zoo = _zoo(tmp, n=2); (zoo[0].path / 'metrics.jsonl').unlink()
    from weightnb.zoo import Zoo, ZooDataset
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always'); z = Zoo(tmp / 'zoo'); df = z.frame(); ds = ZooDataset(z)
    nan_acc = bool(df['test_acc'].isna().any()) if 'test_acc' in df else False
    targets = [v for i in range(len(ds)) for v in _floats(ds[i][1])]
    nan_t = any(math.isnan(t) for t in targets)
    named = [str(x.message)[:120] for x in w if zoo[0].name in str(x.message)]
    if not nan_t and (not nan_acc or named): return 'ok', f'no NaN targets; NaN metric columns={nan_acc}, warned: {named[0] if named else "-"}'
    return 'wrong', f'NaN test_acc in frame()={nan_acc} without a warning naming the member; NaN targets in ZooDataset={nan_t}'

@case('8', 'A1 (models)')
def create_model_hidden_zero(tmp):
    import torch
    from weightnb.models import create_model
    m = create_model('zoo_cnn_small', hidden=0)
    out = m(torch.randn(2, 1, 28, 28))
    return 'wrong', f'built; output ignores the input: {bool(torch.equal(out[0], out[1]))}'

@case('9', 'A1 (train)')
def evaluate_nan_weights(tmp):
    import torch
    from weightnb.train import evaluate
    m = _tiny()
    with torch.no_grad(): m[0].weight[0, 0, 0, 0] = float('nan')
    r = evaluate(m, _digits_batches())
    return 'wrong', f"loss {r['loss']}, acc {r['acc']:.3f}"

@case('10', 'C (zoo)', expect=('ok', 'error'))
def two_processes_same_zoo(tmp):
    code = ("import sys, json; sys.path.insert(0, %r); from reliability import _spec; from weightnb.zoo import generate_zoo; "
            "generate_zoo(_spec(epochs=3, checkpoints=[0, 3]), sys.argv[1], 3, progress=False)") % str(HERE.parent)
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    ps = [subprocess.Popen([sys.executable, '-c', code, str(tmp / 'zoo')], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
          for _ in range(2)]
    res = [(p.wait(timeout=600), p.stderr.read()) for p in ps]
    rows = {d.name: len((d / 'metrics.jsonl').read_text().splitlines()) for d in sorted((tmp / 'zoo').glob('model_*'))
            if (d / 'metrics.jsonl').exists()}
    dup = {k: v for k, v in rows.items() if v != 4}
    last = [err.strip().splitlines()[-1][:120] if err.strip() else '' for _, err in res]
    clean = all(rc == 0 or line.startswith('weightnb.') for (rc, _), line in zip(res, last))
    if not dup and clean and len(rows) == 3:
        return 'ok', f'exit codes {[rc for rc, _ in res]} ({"; ".join(x for x in last if x)}); 3 members, 4 metrics rows each'
    return 'wrong', f'exit codes {[rc for rc, _ in res]} ({"; ".join(last)}); members with duplicated rows: {dup}, members {len(rows)}'


@case('11', 'C (zoo)')
def zoospec_checkpoints_beyond_epochs(tmp):
    zoo = _zoo(tmp, epochs=2, checkpoints=[5, 10])
    files = list((tmp / 'zoo').glob('model_*/epoch_*.safetensors'))
    return 'wrong', f'trained {len(zoo)} member(s), saved {len(files)} checkpoint files'

@case('12', 'A1 (train)', expect=('ok', 'error'))
def fit_resume_longer_cosine(tmp):
    return _resume_case(tmp, 'cosine')

@case('12', 'A1 (train)', expect=('ok', 'error'))
def fit_resume_longer_onecycle(tmp):
    return _resume_case(tmp, 'onecycle')

def _resume_case(tmp, schedule):
    from weightnb.core import seed_everything
    from weightnb.data import dataloaders
    from weightnb.train import fit
    def run(epochs, stop=None, ckpt=None):
        seed_everything(0); dl = dataloaders('digits', batch_size=64).train
        cbs = [lambda e, *_: e == stop] if stop is not None else []
        return fit(_tiny(), dl, epochs=epochs, opt='adam', lr=1e-2, schedule=schedule, callbacks=cbs, progress=False,
                   checkpoint=ckpt, device='cpu')
    run(2, stop=0, ckpt=tmp / 'fit.pt')
    with warnings.catch_warnings(): warnings.simplefilter('ignore'); resumed = run(4, ckpt=tmp / 'fit.pt')
    straight = run(4)
    lr_r, lr_s = [h['lr'] for h in resumed], [h['lr'] for h in straight]
    if all(abs(a - b) <= 1e-12 + 1e-9 * abs(b) for a, b in zip(lr_r[1:], lr_s[1:])): return 'ok', 'resumed lr = uninterrupted 4-epoch lr'
    return 'wrong', f'lr after epochs 2-4: resumed {[f"{x:.2e}" for x in lr_r[1:]]} vs uninterrupted {[f"{x:.2e}" for x in lr_s[1:]]}'

@case('13', 'A1 (core)', expect=('ok',))
def atomic_file_mode(tmp):
    from weightnb.core import write_text_atomic, save_weights
    old = os.umask(0o022)
    try: write_text_atomic(tmp / 'a.json', '{}'); save_weights(_tiny(), tmp / 'w.safetensors')
    finally: os.umask(old)
    modes = {f: oct((tmp / f).stat().st_mode & 0o777) for f in ('a.json', 'w.safetensors')}
    return ('ok' if set(modes.values()) == {'0o644'} else 'wrong'), f'umask 022 -> {modes}'


# --- raw or misleading errors today ------------------------------------------------------------------------------------
@case('state dicts', 'A1 (models)', expect=('ok',))
def load_model_module_prefix(tmp):
    from weightnb.core import save_weights
    from weightnb.models import load_model, resnet20
    m = resnet20(in_chans=1); sd = {f'module.{k}': v for k, v in m.state_dict().items()}
    save_weights(sd, tmp / 'dp.safetensors', metadata=dict(arch='cifar_resnet', arch_kwargs=json.dumps(m.arch)))
    back = load_model(tmp / 'dp.safetensors')
    return ('ok' if _same(m.state_dict(), back.state_dict()) else 'wrong'), 'module. prefix stripped'

@case('state dicts', 'A1 (models)', mention=('unexpected', 'extra'))
def load_model_extra_key(tmp):
    import torch
    from weightnb.core import save_weights
    from weightnb.models import load_model, zoo_cnn_small
    m = zoo_cnn_small(); sd = dict(m.state_dict(), extra=torch.ones(1))
    save_weights(sd, tmp / 'x.safetensors', metadata=dict(arch='zoo_cnn', arch_kwargs=json.dumps(m.arch)))
    load_model(tmp / 'x.safetensors'); return 'wrong', 'loaded'

@case('state dicts', 'C (zoo)', mention=('model_0000',))
def zoo_member_model_bad_keys(tmp):
    import torch
    from weightnb.core import save_weights, load_weights
    zoo = _zoo(tmp); p = zoo[0].path / 'epoch_002.safetensors'
    sd = load_weights(p); sd['extra'] = torch.ones(1); save_weights(sd, p)
    from weightnb.zoo import Zoo
    Zoo(tmp / 'zoo')[0].model(); return 'wrong', 'loaded'

@case('state dicts', 'A1 (train)', mention=("opt=",))
def fit_resume_other_optimizer(tmp):
    from weightnb.train import fit
    dl = _digits_batches(2)
    fit(_tiny(), dl, epochs=2, opt='adam', lr=1e-3, progress=False, checkpoint=tmp / 'f.pt', device='cpu',
        callbacks=[lambda e, *_: e == 0])
    fit(_tiny(), dl, epochs=2, opt='sgd', lr=1e-3, progress=False, checkpoint=tmp / 'f.pt', device='cpu')
    return 'wrong', 'resumed an Adam run with SGD'

@case('state dicts', 'A1 (train)', mention=('f.pt',))
def fit_resume_other_architecture(tmp):
    from weightnb.train import fit
    dl = _digits_batches(2)
    fit(_tiny(), dl, epochs=2, opt='adam', lr=1e-3, progress=False, checkpoint=tmp / 'f.pt', device='cpu',
        callbacks=[lambda e, *_: e == 0])
    fit(_bn_net(), dl, epochs=2, opt='adam', lr=1e-3, progress=False, checkpoint=tmp / 'f.pt', device='cpu')
    return 'wrong', 'resumed into another architecture'

@case('float64', 'A1 (train)', expect=('ok',))
def evaluate_float64(tmp):
    from weightnb.train import evaluate
    r = evaluate(_tiny().double(), _digits_batches()); return 'ok', f"acc {r['acc']:.3f}"

@case('float64', 'A1 (train)', expect=('ok',))
def fit_float64(tmp):
    from weightnb.train import fit
    h = fit(_tiny().double(), _digits_batches(), epochs=1, opt='adam', lr=1e-3, progress=False, device='cpu')
    return 'ok', f"loss {h[-1]['train_loss']:.3f}"

@case('float64', 'A2 (spectral)', expect=('ok',))
def frequency_sweep_float64(tmp):
    from weightnb.spectral import frequency_sweep
    from weightnb.models import resnet20
    df = frequency_sweep(resnet20(in_chans=1).double(), [1.0], groups='stage', eval_fn=_digits_batches(1))
    return 'ok', f'{len(df)} rows'

@case('float64', 'A2 (landscape)', expect=('ok',))
def interpolate_float64(tmp):
    from weightnb.landscape import interpolate
    df = interpolate(_bn_net().double(), _bn_net().double(), [0., 1.], eval_fn=_digits_batches(1))
    return 'ok', f'{len(df)} rows'

@case('JSON', 'C (zoo)', mention=('spec.json',))
def zoo_spec_not_json(tmp):
    _zoo(tmp); (tmp / 'zoo' / 'spec.json').write_text('{"arch": ')
    from weightnb.zoo import Zoo
    z = Zoo(tmp / 'zoo'); z.spec; _zoo(tmp); return 'wrong', 'opened and resumed'

@case('JSON', 'C (zoo)', mention=('config.json',))
def zoo_member_config_not_json(tmp):
    zoo = _zoo(tmp); (zoo[0].path / 'config.json').write_text('{bad')
    from weightnb.zoo import Zoo
    Zoo(tmp / 'zoo').frame(); return 'wrong', 'frame() built'

@case('NaN', 'C (rebasin)', mention=('NaN',))
def align_nan_weights(tmp):
    import torch
    from weightnb.models import zoo_cnn_small
    from weightnb.rebasin import align
    a, b = zoo_cnn_small(), zoo_cnn_small()
    with torch.no_grad(): b.conv2.weight[0, 0, 0, 0] = float('nan')
    align(b, a); return 'wrong', 'aligned a model holding NaN'

@case('empty', 'A1 (data)')
def class_subset_empty(tmp):
    from weightnb.data import load_dataset, class_subset
    ds = class_subset(load_dataset('digits'), []); return 'wrong', f'returned {len(ds)} images'

@case('empty', 'A1 (data)')
def dataloaders_n_train_zero(tmp):
    from weightnb.data import dataloaders
    d = dataloaders('digits', n_train=0); return 'wrong', f'train split of {len(d.train.dataset)} images'

@case('empty', 'B (predictors)')
def progressive_zero_seeds(tmp):
    from weightnb.data import dataloaders
    from weightnb.models import resnet20
    from weightnb.predictors import progressive
    r = progressive(resnet20(in_chans=1), 8, rounds=1, seeds=0, dls=dataloaders('digits', batch_size=64), robustness=False, steps=1)
    return 'wrong', f'returned {type(r).__name__}'

@case('empty', 'A2 (robustness)')
def ood_accuracy_no_severities(tmp):
    from weightnb.robustness import ood_accuracy
    r = ood_accuracy(_tiny(), _digits_batches(1), severities=()); return 'wrong', f'returned {r!r}'[:200]

@case('empty', 'A1 (models)', mention=('width',))
def negative_width(tmp):
    from weightnb.models import create_model
    create_model('cifar_resnet', n_blocks=1, width=-4); return 'wrong', 'built'

@case('empty', 'C (zoo)', mention=('lr',))
def zoospec_malformed_distribution(tmp):
    _zoo(tmp, lr={'loguniform': [1e-3]}); return 'wrong', 'trained'

@case('device', 'A1 (core)', mention=('GPU',))
def cuda_without_gpu(tmp):
    import torch
    if torch.cuda.is_available(): return 'skip', 'this machine has a GPU'
    from weightnb.train import fit
    fit(_tiny(), _digits_batches(), epochs=1, device='cuda', progress=False); return 'wrong', 'trained'

@case('state-dict inputs', 'A2 (landscape)', expect=('ok', 'error'))
def interpolate_state_dicts(tmp):
    import inspect
    from weightnb.landscape import interpolate, plane
    a, b, c = _bn_net(), _bn_net(), _bn_net()
    kw = dict(template=_bn_net()) if 'template' in inspect.signature(interpolate).parameters else {}
    df = interpolate(a.state_dict(), b.state_dict(), [0., 1.], eval_fn=_digits_batches(1), **kw)
    df2 = plane(a.state_dict(), b.state_dict(), c.state_dict(), grid=2, eval_fn=_digits_batches(1), **kw)
    return 'ok', f'{len(df)} + {len(df2)} points'

@case('messages', 'B (predictors)', mention=('permutation',))
def permutation_misspelt(tmp):
    from weightnb.models import resnet20
    from weightnb.predictors import PredictedModel, KernelPredictor
    PredictedModel(resnet20(in_chans=1), KernelPredictor(), permutation='in-filter'); return 'wrong', 'built'

@case('messages', 'B (predictors)', mention=('predictor=KernelPredictor(kernel_size=5)',))
def five_by_five_kernels_hint(tmp):
    from weightnb.models import zoo_cnn_small
    from weightnb.predictors import PredictedModel, KernelPredictor
    PredictedModel(zoo_cnn_small(), KernelPredictor()); return 'wrong', 'built'

@case('messages', 'B (predictors)', mention=('conv1',))
def permutation_dict_missing_layer(tmp):
    from weightnb.models import resnet20
    from weightnb.predictors import PredictedModel, KernelPredictor, smoothness_permutation
    m = resnet20(in_chans=1); perm = smoothness_permutation(m, cache=False); perm.pop('conv1', None)
    PredictedModel(m, KernelPredictor(), permutation=perm); return 'wrong', 'built'

@case('align_zoo retry', 'C (rebasin)', expect=('ok',))
def align_zoo_retry_after_failure(tmp):
    from weightnb.models import zoo_cnn_large
    from weightnb.rebasin import align_zoo
    from weightnb.zoo import Zoo
    zoo = _zoo(tmp, n=2)
    try: align_zoo(zoo, zoo_cnn_large(), tmp / 'aligned', progress=False); first = 'succeeded?!'
    except Exception as e: first = f'{type(e).__name__}'
    align_zoo(Zoo(tmp / 'zoo'), zoo[0].name, tmp / 'aligned', progress=False)
    return 'ok', f'first call with a wrong reference: {first}; the retry aligned {len(Zoo(tmp / "aligned"))} members'

@case('pretrained offline', 'A1 (models)', mention=('torch hub cache',))
def resnet18_pretrained_offline(tmp):
    from weightnb.models import resnet18
    import socket
    os.environ['TORCH_HOME'] = str(tmp); old = socket.getdefaulttimeout(); socket.setdefaulttimeout(20)
    try: resnet18(pretrained=True); return 'ok', 'downloaded'
    finally: os.environ.pop('TORCH_HOME'); socket.setdefaulttimeout(old)


# --- the command line ----------------------------------------------------------------------------------------------------
def _cli(*argv):
    "Run `weightnb.cli.main(argv)` in this process: (exit code, stdout, stderr); an escaping exception is a traceback."
    from weightnb.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: rc = main(list(argv))
        except SystemExit as e: rc = e.code
        except Exception: traceback.print_exc(); rc = 'traceback'
    return rc, out.getvalue(), err.getvalue()

def _cli_case(flag, *argv):
    def fn(tmp):
        rc, out, err = _cli(*argv)
        lines = err.strip().splitlines()
        if rc == 'traceback' or 'Traceback' in err:
            raise _Raw(f'traceback: {lines[-1][:200] if lines else ""}')
        if rc == 2 and len(lines) == 1 and lines[0].startswith('weightnb: error:') and flag in lines[0]:
            raise _UserError(lines[0])
        if rc == 2: raise _Misleading(f'exit 2 with {len(lines)} line(s): {" / ".join(lines)[-220:]}')
        return 'wrong', f'exit {rc}: {" / ".join(lines)[-200:]}'
    fn.__name__ = 'cli ' + ' '.join(argv)
    return fn

class _Raw(Exception): pass
class _UserError(Exception): pass
class _Misleading(Exception): pass

for _flag, _argv in [('--arch-kwargs', ['--arch-kwargs', '{bad']), ('--arch-kwargs', ['--arch-kwargs', '[1]']),
                     ('--arch-kwargs', ['--arch-kwargs', '{"depth": 3}']), ('--device', ['--device', 'cuda']),
                     ('--n-train', ['--n-train', '0']), ('--lr', ['--lr', '-1']), ('--batch-size', ['--batch-size', '0']),
                     ('--out', ['--out', 'model.txt'])]:
    _fn = _cli_case(_flag, 'train', '--dataset', 'digits', '--epochs', '1', *_argv)
    CASES.append((_fn.__name__, 'command line', 'A1 (cli)', ('error',), (_flag,), _fn))


# --- running the cases ------------------------------------------------------------------------------------------------------
def run_case(name, item, owner, expect, mention, fn)->dict:
    from weightnb.core import WeightnbError
    t0 = time.perf_counter(); status = detail = None
    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
        warnings.simplefilter('ignore')
        try: status, detail = fn(Path(d))
        except _UserError as e: status, detail = 'error', str(e)
        except _Misleading as e: status, detail = 'misleading', str(e)
        except _Raw as e: status, detail = 'raw', str(e)
        except WeightnbError as e:
            msg = ' '.join(str(e).split())
            status = 'misleading' if any(m not in msg for m in mention) else 'error'
            detail = f'{type(e).__name__}: {msg}'
        except Exception as e: status, detail = 'raw', f'{type(e).__name__}: {" ".join(str(e).split())}'
    detail = (detail or '').replace(str(Path(d).resolve()), '<tmp>').replace(d, '<tmp>')
    return dict(id=name, item=item, owner=owner, expect=list(expect), status=status, detail=detail[:400],
                seconds=round(time.perf_counter() - t0, 2))


def check_cost(n_images:int=2000, repeats:int=5)->dict:
    "Seconds of `check_finite` vs one `evaluate` pass (which now includes it), ResNet-20 and the small zoo CNN."
    import torch
    from weightnb.core import check_finite
    from weightnb.data import dataloaders
    from weightnb.models import resnet20, zoo_cnn_small
    from weightnb.train import evaluate, preload_batches
    rows = []
    for name, model, data, n in [('ResNet-20', resnet20(in_chans=1), 'fashion-mnist', n_images),
                                 ('zoo CNN small', zoo_cnn_small(), 'fashion-mnist', 1000)]:
        batches = preload_batches(dataloaders(data, n_test=n, eval_batch_size=500).test, 'cpu')
        evaluate(model, batches); check_finite(model)          # warm-up
        ev, ck = [], []
        for _ in range(repeats):
            t = time.perf_counter(); evaluate(model, batches); ev.append(time.perf_counter() - t)
            t = time.perf_counter()
            for _ in range(20): check_finite(model)
            ck.append((time.perf_counter() - t) / 20)
        ev, ck = min(ev), min(ck)
        rows.append(dict(model=name, images=n, evaluate_s=ev, check_s=ck, share=ck / ev, threads=torch.get_num_threads()))
    return dict(rows=rows, repeats=repeats)


def worker(out:Path, cost:bool):
    import torch, weightnb
    torch.set_num_threads(1)
    res = dict(weightnb_file=weightnb.__file__, cases=[])
    for c in CASES:
        r = run_case(*c); res['cases'].append(r)
        print(f"{r['status']:>10}  {r['seconds']:6.1f}s  {r['id']}: {r['detail'][:110]}", flush=True)
    if cost: res['check_cost'] = check_cost()
    out.write_text(json.dumps(res, indent=1))


# =====================================================================================================================
# driver: worktree for the old commit, one worker per version, the results table
def before_tree()->Path:
    from _common import ROOT
    wt = Path('/tmp/wt_before')
    if not (wt / 'weightnb' / '__init__.py').exists():
        subprocess.run(['git', 'worktree', 'add', '--detach', str(wt), BEFORE], cwd=ROOT, check=True, capture_output=True)
    return wt


def run_worker(tree:Path, cost:bool)->dict:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / 'res.json'
        env = {**os.environ, 'PYTHONPATH': str(tree), 'WEIGHTNB_OFFLINE': '1', 'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
        cmd = [sys.executable, str(HERE), '--worker', str(out)] + (['--cost'] if cost else [])
        subprocess.run(cmd, env=env, cwd=d, check=True)
        res = json.loads(out.read_text())
    if not res['weightnb_file'].startswith(str(tree)):
        raise RuntimeError(f"the worker imported {res['weightnb_file']}, not the tree {tree}")
    return res


VERDICT = {'ok': 'right result', 'wrong': '**silently wrong**', 'error': 'specific error', 'misleading': 'misleading error',
           'raw': 'raw exception', 'skip': 'skipped', None: '—'}

def render(res:dict, path:Path, cmd:str):
    from _common import write_results, md_table, environment_line
    before = {c['id']: c for c in res.get('before', {}).get('cases', [])}
    after = res['after']['cases']
    rows, n_fixed = [], 0
    for c in after:
        b = before.get(c['id'], {})
        fixed = c['status'] in c['expect'] or c['status'] == 'skip'; n_fixed += fixed
        cell = lambda r: f"{VERDICT[r.get('status')]}: {r.get('detail', '')[:160]}".replace('|', '/') if r else '—'
        rows.append([c['item'], c['owner'], f"`{c['id']}`", cell(b), cell(c), 'yes' if fixed else '**no**'])
    counts = lambda cs: ', '.join(f"{sum(x['status'] == s for x in cs)} {VERDICT[s].strip('*')}" for s in ('ok', 'wrong', 'error', 'misleading', 'raw', 'skip'))
    lines = [f"{len(after)} cases. Before ({BEFORE}): {counts(list(before.values())) if before else 'not run'}. "
             f"After: {counts(after)}. As wanted after: {n_fixed} of {len(after)}.", '',
             'A case is *as wanted* when it ends in the right result or, where no result can be right, a specific weightnb '
             'error that names what it must (the `expect` column of the JSON). Owners: A1 core/data/models/train/cli, '
             'A2 spectral/landscape/robustness, B predictors, C zoo/rebasin.', '']
    lines += md_table(rows, ['issue item', 'owner', 'case', f'before ({BEFORE})', 'after', 'as wanted'])
    if 'check_cost' in res['after']:
        cc = res['after']['check_cost']
        lines += ['', '## Cost of the NaN/Inf check in `evaluate`', '',
                  f"`check_finite(model)` alone vs one `evaluate` pass that includes it, CPU, {cc['rows'][0]['threads']} torch "
                  f"thread, best of {cc['repeats']} (check: mean of 20 calls); Fashion-MNIST test images preloaded in batches of 500. "
                  'Both are timed in the same run, so machine load affects them alike. On a GPU the evaluation pass is '
                  'faster and the share larger; that was not measured (no GPU in the session that ran this).', '']
        lines += md_table([[r['model'], r['images'], f"{r['evaluate_s'] * 1e3:.1f}", f"{r['check_s'] * 1e3:.3f}", f"{r['share']:.2%}"]
                           for r in cc['rows']], ['model', 'images', 'evaluate (ms)', 'check (ms)', 'share of evaluate'])
    lines += ['', environment_line(res.get('env'))]
    write_results(path, 'Reliability: hostile inputs before and after issue 19', cmd, lines, sources=f'`{path.with_suffix(".json").name}`')


def main():
    if '--worker' in sys.argv:
        i = sys.argv.index('--worker'); return worker(Path(sys.argv[i + 1]), '--cost' in sys.argv)
    sys.path.insert(0, str(HERE.parent))
    from _common import bench_parser, parse, write_json, read_json, environment, ROOT
    a = parse(bench_parser(__doc__.split('\n')[0], 'reliability'))
    js = a.out / 'reliability.json'
    if a.render_only: res = read_json(js, 'reliability results')
    else:
        res = dict(command=a.command, env=environment(a.device), after=run_worker(ROOT, cost=True))
        if not a.quick: res['before'] = run_worker(before_tree(), cost=False)
        write_json(js, res)
    render(res, a.out / 'reliability.md', res.get('command', a.command))   # the command that computed the JSON


if __name__ == '__main__': main()

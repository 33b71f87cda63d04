"""Issue 19, core / data / models / train / cli: hostile and careless inputs get the right result or a specific
weightnb error. One test per root; the parametrised cases are siblings of the same root.

(Helpers C and A2 test the zoo/rebasin and analysis cases in test_reliability_zoo.py / test_reliability_analysis.py.)"""
import os, subprocess, sys, urllib.error, warnings
from pathlib import Path

import pytest, torch
from torch import nn

from weightnb.core import (ConfigError, CheckpointError, StateDictMismatchError, NonFiniteWeightsError,
                           DeviceError, DownloadError, resolve_device, save_weights, write_text_atomic,
                           read_json, load_state_dict_checked, seed_everything)
from weightnb.data import dataloaders, load_dataset, class_subset, noise_dataset, make_loader, split_datasets
from weightnb.models import create_model, save_model, load_model, resnet18, resnet20, zoo_cnn_small
from weightnb.train import fit, evaluate, reestimate_bn, preload_batches, make_optimizer

DIGITS = dataloaders('digits', batch_size=64, n_train=256)
EXE = Path(sys.executable).parent/'weightnb'
NO_GPU = not torch.cuda.is_available()


def tiny(): return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 10))
def bn_net(): return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 10))


# --- 3. weight files: the suffix is checked first, and .pt round-trips with the architecture -------------------------
@pytest.mark.parametrize('suffix', ['.safetensors', '.pt', '.pth'])
def test_save_model_round_trips_every_supported_suffix(tmp_path, suffix):
    m = zoo_cnn_small(hidden=7)
    back = load_model(save_model(m, tmp_path/f'm{suffix}', note='x'))
    assert back.arch == m.arch and all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), back.state_dict().values()))


@pytest.mark.parametrize('name', ['m.txt', 'm', 'm.ckpt'])
def test_unknown_suffix_is_refused_before_writing(tmp_path, name):
    with pytest.raises(CheckpointError, match='Unknown weight-file suffix'): save_model(zoo_cnn_small(), tmp_path/name)
    with pytest.raises(CheckpointError, match='Unknown weight-file suffix'): save_weights(zoo_cnn_small(), tmp_path/name)
    assert list(tmp_path.iterdir()) == []


# --- 5. the stored dtype wins on load ----------------------------------------------------------------------------------
@pytest.mark.parametrize('suffix', ['.safetensors', '.pt'])
def test_float64_model_comes_back_float64_bit_exact(tmp_path, suffix):
    m = zoo_cnn_small().double()
    with torch.no_grad(): m.fc2.weight[0, 0] = 1 / 3        # not representable in float32
    back = load_model(save_model(m, tmp_path/f'm{suffix}'))
    assert back.fc2.weight.dtype == torch.float64 and back.fc2.weight[0, 0].item() == 1 / 3


# --- one checked loading path --------------------------------------------------------------------------------------------
def test_state_dict_mismatches_name_every_key_and_the_file(tmp_path):
    sd = {f'module.{k}': v for k, v in resnet20(in_chans=1).state_dict().items()}
    load_state_dict_checked(resnet20(in_chans=1), sd)       # a uniform DataParallel prefix is fine
    p = save_weights(zoo_cnn_small(), tmp_path/'small.safetensors', metadata=dict(arch='zoo_cnn_large', arch_kwargs='{}'))
    with pytest.raises(StateDictMismatchError, match=r'small\.safetensors does not fit ZooCNN: .*shape mismatches'): load_model(p)
    sd = resnet20().state_dict(); sd['extra'] = torch.ones(1); del sd['fc.bias']
    with pytest.raises(StateDictMismatchError, match=r"1 missing \(fc.bias\); 1 unexpected \(extra\)"):
        load_state_dict_checked(resnet20(), sd, where='x')


# --- 4. empty loaders are errors, not 'loss 0, accuracy 0' -----------------------------------------------------------------
@pytest.mark.parametrize('train_dl,val_dl,match', [
    ([], None, 'train_dl has no batches'),
    (make_loader(load_dataset('digits').subset(range(10)), batch_size=64, drop_last=True), None, 'train_dl has no batches'),
    (DIGITS.train, [], 'val_dl has no batches'),
    ((b for b in DIGITS.train), None, 'must have a length'),
])
def test_fit_refuses_empty_or_unsized_loaders(train_dl, val_dl, match):
    m = tiny(); before = [p.detach().clone() for p in m.parameters()]
    with pytest.raises(ConfigError, match=match): fit(m, train_dl, epochs=2, val_dl=val_dl, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))


# --- 6. BN re-estimation without data leaves the statistics alone --------------------------------------------------------
@pytest.mark.parametrize('dl,n_batches,match', [([], None, 'no batches'), (None, 0, 'n_batches must be a positive integer'),
                                                (iter([]), None, 'no batches')])
def test_reestimate_bn_without_data_keeps_statistics(dl, n_batches, match):
    m = bn_net(); fit(m, DIGITS.train, epochs=1, progress=False, device='cpu')
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(ConfigError, match=match): reestimate_bn(m, DIGITS.train if dl is None else dl, n_batches)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


def test_reestimate_bn_failing_midway_restores_statistics():
    m = bn_net().eval(); before = {k: v.clone() for k, v in m.state_dict().items()}
    batches = [DIGITS.train.dataset.x[:8], torch.ones(8, 3, 8, 8)]       # the second batch has the wrong channel count
    with pytest.raises(RuntimeError): reestimate_bn(m, batches)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items()) and m[1].momentum == 0.1


# --- 8. every width, channel and class count is a positive int ---------------------------------------------------------------
@pytest.mark.parametrize('arch,kw,name', [
    ('zoo_cnn_small', dict(hidden=0), 'hidden'), ('zoo_cnn_small', dict(hidden=-3), 'hidden'),
    ('zoo_cnn_large', dict(num_classes=0), 'num_classes'), ('zoo_cnn_small', dict(in_chans=2.5), 'in_chans'),
    ('zoo_cnn_small', dict(img_size=True), 'img_size'), ('resnet20', dict(num_classes=0), 'num_classes'),
    ('cifar_resnet', dict(n_blocks=0), 'n_blocks'), ('cifar_resnet', dict(n_blocks=3, width=0), 'width'),
    ('resnet18', dict(num_classes=-1), 'num_classes'), ('resnet18', dict(in_chans=0), 'in_chans'),
])
def test_create_model_rejects_non_positive_sizes(arch, kw, name):
    with pytest.raises(ConfigError, match=f'{name} must be a positive integer'): create_model(arch, **kw)


def test_create_model_names_unknown_arguments():
    with pytest.raises(ConfigError, match='its arguments are: in_chans, num_classes'): create_model('zoo_cnn_small', depth=3)
    with pytest.raises(ConfigError, match='dropout must be in'): create_model('zoo_cnn_small', dropout=1.5)


# --- 9. evaluate refuses NaN / Inf weights ------------------------------------------------------------------------------------
@pytest.mark.parametrize('bad', [float('nan'), float('inf'), -float('inf')])
@pytest.mark.parametrize('where', ['0.weight', '1.running_var'])
def test_evaluate_refuses_non_finite_weights(bad, where):
    m = bn_net()
    with torch.no_grad(): m.state_dict()[where].view(-1)[0] = bad
    with pytest.raises(NonFiniteWeightsError, match=f"'{where}' has 1 NaN/inf"): evaluate(m, DIGITS.test)


# --- 12. resumed runs: a longer schedule continues, another optimizer or architecture is refused --------------------------
def _run(tmp, epochs, schedule, stop_after=None, opt='adam', model=tiny):
    seed_everything(0); dls = dataloaders('digits', batch_size=64, n_train=256); m = model()
    cbs = [lambda e, *_: e == stop_after] if stop_after is not None else []
    return m, fit(m, dls.train, epochs=epochs, opt=opt, lr=1e-2, schedule=schedule, callbacks=cbs, progress=False,
                  checkpoint=None if tmp is None else tmp/'fit.pt', device='cpu')


@pytest.mark.parametrize('schedule', ['cosine', 'onecycle', 'constant'])
def test_resume_with_more_epochs_follows_the_new_schedule(tmp_path, schedule):
    _run(tmp_path, 2, schedule, stop_after=0)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always'); _, resumed = _run(tmp_path, 4, schedule)
    _, straight = _run(None, 4, schedule)
    assert len(resumed) == 4
    assert [h['lr'] for h in resumed[1:]] == pytest.approx([h['lr'] for h in straight[1:]], rel=1e-12, abs=1e-15)
    if schedule != 'constant': assert any('schedule was 8 steps long' in str(x.message) for x in w)


def test_resume_with_another_optimizer_or_schedule_is_refused(tmp_path):
    _run(tmp_path, 2, 'cosine', stop_after=0, opt='adam')
    with pytest.raises(CheckpointError, match="opt='adam', this call has opt='sgd'"): _run(tmp_path, 2, 'cosine', opt='sgd')
    with pytest.raises(CheckpointError, match="schedule='cosine', this call has schedule='onecycle'"): _run(tmp_path, 2, 'onecycle')
    with pytest.raises(StateDictMismatchError, match='resume checkpoint .*fit.pt does not fit'): _run(tmp_path, 2, 'cosine', model=bn_net)


def test_resume_from_a_legacy_checkpoint_of_another_optimizer_is_refused(tmp_path):
    _run(tmp_path, 2, 'cosine', stop_after=0, opt='adam')
    state = torch.load(tmp_path/'fit.pt', weights_only=True); del state['run']; torch.save(state, tmp_path/'fit.pt')
    with pytest.raises(CheckpointError, match="another optimizer than opt='sgd'"): _run(tmp_path, 2, 'cosine', opt='sgd')


# --- float64 models follow their dtype in evaluate, fit and BN re-estimation ------------------------------------------------
def test_float64_models_train_and_evaluate_in_float64():
    import copy
    seed_everything(0); m32 = tiny(); m64 = copy.deepcopy(m32).double()
    hists = []
    for m in (m32, m64):
        seed_everything(1); dls = dataloaders('digits', batch_size=64, n_train=256, seed=1)
        hists.append(fit(m, dls.train, epochs=2, opt='adam', lr=1e-2, val_dl=dls.val, progress=False, device='cpu'))
    assert m64[0].weight.dtype == torch.float64
    assert hists[1][-1]['val_loss'] == pytest.approx(hists[0][-1]['val_loss'], rel=1e-3)   # same run, other precision
    b = bn_net().double(); reestimate_bn(b, DIGITS.train, n_batches=2); assert b[1].running_mean.dtype == torch.float64


# --- empty and zero arguments in data ------------------------------------------------------------------------------------------
@pytest.mark.parametrize('call,match', [
    (lambda: class_subset(DIGITS.train.dataset, []), 'non-empty list'),
    (lambda: class_subset(DIGITS.train.dataset, 3), 'non-empty list'),
    (lambda: class_subset(DIGITS.train.dataset, [1.5]), 'label ints'),
    (lambda: class_subset(DIGITS.train.dataset, ['cat']), "'cat' is not one of"),
    (lambda: dataloaders('digits', n_train=0), 'n_train must be a positive integer'),
    (lambda: dataloaders('digits', n_val=-1), 'n_val must be a positive integer'),
    (lambda: dataloaders('digits', n_test=2.5), 'n_test must be a positive integer'),
    (lambda: dataloaders('digits', batch_size=0), 'batch_size must be a positive integer'),
    (lambda: split_datasets('digits', classes=[]), 'non-empty list'),
    (lambda: noise_dataset((1, 8, 8), 0), 'n must be a positive integer'),
    (lambda: make_optimizer(tiny().parameters(), 'adam', lr=0), 'lr must be a positive number'),
    (lambda: make_optimizer(tiny().parameters(), 'adam', wd=-1), 'wd'),
    (lambda: preload_batches(DIGITS.test, 'cpu', n_batches=0), 'n_batches must be a positive integer'),
    (lambda: fit(tiny(), DIGITS.train, epochs=1.5), 'epochs must be an integer'),
])
def test_empty_and_zero_arguments_are_config_errors(call, match):
    with pytest.raises(ConfigError, match=match): call()


# --- devices are resolved in one place ---------------------------------------------------------------------------------------
@pytest.mark.skipif(not NO_GPU, reason='this machine has a GPU')
@pytest.mark.parametrize('call', [lambda: resolve_device('cuda'), lambda: fit(tiny(), DIGITS.train, device='cuda', progress=False),
                                  lambda: preload_batches(DIGITS.test, 'cuda:0'), lambda: resolve_device('cuda:1')])
def test_cuda_without_a_gpu_is_a_device_error(call):
    with pytest.raises(DeviceError, match='no usable NVIDIA GPU'): call()


def test_device_errors_on_any_machine(monkeypatch):
    with pytest.raises(ConfigError, match='is not a device'): resolve_device('gpu')
    with pytest.raises(DeviceError, match=r'asks for GPU 99|no usable NVIDIA GPU'): resolve_device('cuda:99')
    monkeypatch.setenv('WEIGHTNB_DEVICE', 'cuda:99')
    with pytest.raises(DeviceError, match=r"\$WEIGHTNB_DEVICE='cuda:99'"): resolve_device()


# --- pretrained weights offline ---------------------------------------------------------------------------------------------------
def test_pretrained_resnet18_offline_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path)); monkeypatch.setenv('WEIGHTNB_OFFLINE', '1')
    with pytest.raises(DownloadError, match=r'torch hub cache'): resnet18(pretrained=True)
    monkeypatch.setenv('WEIGHTNB_OFFLINE', '0')                   # network allowed, but it fails
    def no_network(*a, **k): raise urllib.error.URLError('[Errno -3] Temporary failure in name resolution')
    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', no_network)
    with pytest.raises(DownloadError, match=r'the download failed: URLError'): resnet18(pretrained=True)


# --- 13. atomic files get the usual mode ---------------------------------------------------------------------------------------------
def test_atomic_files_honour_the_umask(tmp_path):
    old = os.umask(0o007)
    try:
        save_weights(tiny(), tmp_path/'w.safetensors'); write_text_atomic(tmp_path/'a.txt', 'x')
        fit(tiny(), DIGITS.train, epochs=1, progress=False, checkpoint=tmp_path/'fit.pt', device='cpu')
        for f in ('w.safetensors', 'a.txt', 'fit.pt'): assert (tmp_path/f).stat().st_mode & 0o777 == 0o660, f
    finally: os.umask(old)


def test_read_json_names_the_file(tmp_path):
    (tmp_path/'spec.json').write_text('{"epochs": 3,')
    with pytest.raises(ConfigError, match=r'zoo spec .*spec.json is not valid JSON'): read_json(tmp_path/'spec.json', 'zoo spec')


# --- the command line: one error boundary, every flag checked before training -------------------------------------------------------
def cli(*args, timeout=300):
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, 'WEIGHTNB_OFFLINE': '1'})


CLI_CASES = [(['train', '--arch-kwargs', '{bad'], '--arch-kwargs'), (['train', '--arch-kwargs', '[1]'], '--arch-kwargs'),
             (['train', '--arch', 'zoo_cnn_small', '--dataset', 'digits', '--arch-kwargs', '{"depth": 3}'], '--arch-kwargs'),
             (['train', '--arch', 'zoo_cnn_small', '--dataset', 'digits', '--arch-kwargs', '{"hidden": 0}'], '--arch-kwargs'),
             (['train', '--n-train', '0'], '--n-train'), (['train', '--lr', '-1'], '--lr'), (['train', '--lr', 'nan'], '--lr'),
             (['train', '--batch-size', '0'], '--batch-size'), (['train', '--epochs', '0'], '--epochs'),
             (['train', '--out', 'model.txt'], '--out'), (['demo', '--dataset', 'nope'], '--dataset'),
             (['train', '--arch', 'vgg11', '--dataset', 'digits'], '--arch')]
if NO_GPU: CLI_CASES.append((['train', '--device', 'cuda'], '--device'))


def test_cli_user_errors_are_one_line_naming_the_flag():
    from weightnb.cli import main
    import contextlib, io
    for argv, flag in CLI_CASES:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()): rc = main(argv)
        msg = err.getvalue()
        assert rc == 2 and msg.startswith('weightnb: error: ') and msg.count('\n') == 1 and flag in msg, (argv, msg)


def test_cli_console_script_exit_code_and_no_traceback(tmp_path):
    r = cli('train', '--lr', '-1', '--out', str(tmp_path/'m.safetensors'))
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'Traceback' not in r.stderr and not (tmp_path/'m.safetensors').exists()


def test_cli_train_out_pt_round_trips(tmp_path):
    r = cli('train', '--arch', 'resnet20', '--dataset', 'digits', '--epochs', '1', '--n-train', '200', '--quiet',
            '--opt', 'adam', '--lr', '0.003', '--out', str(tmp_path/'m.pt'))
    assert r.returncode == 0, r.stderr
    assert load_model(tmp_path/'m.pt').arch['in_chans'] == 1


@pytest.mark.parametrize('n_steps', [1, 2, 3, 4, 5])
def test_onecycle_works_for_very_short_runs(n_steps):
    dl = [(DIGITS.test.dataset.x[:16], DIGITS.test.dataset.y[:16])] * n_steps
    hist = fit(tiny(), dl, epochs=1, schedule='onecycle', progress=False, device='cpu')   # 4 steps: ZeroDivisionError in torch
    assert len(hist) == 1


@pytest.mark.skipif(not NO_GPU, reason='this machine has a GPU')
@pytest.mark.parametrize('suffix', ['.safetensors', '.pt'])
def test_loading_onto_cuda_without_a_gpu_is_a_device_error(tmp_path, suffix):
    from weightnb.core import load_weights
    p = save_model(zoo_cnn_small(), tmp_path/f'm{suffix}')
    with pytest.raises(DeviceError): load_weights(p, 'cuda')
    with pytest.raises(DeviceError): load_model(p, device='cuda')

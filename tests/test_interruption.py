"""Interruption (issue 17): SIGKILL a real subprocess in the middle of `fit`, `train_predictor`, `generate_zoo` and the
`weightnb predict` command, resume it from what it left on disk, and get exactly what an uninterrupted run with the same
seed gives (CPU, sklearn digits).

Each kill lands between two saved states (mid-epoch for `fit`, between two resume files for the predictor, with a zoo
member half written), so the resumed run has to throw away work the killed one did and redo it identically."""
import json, os, signal, subprocess, sys, textwrap
from pathlib import Path


from weightnb.core import load_weights, tensor_hash

RUNNER = textwrap.dedent("""
    import json, os, signal, sys
    from pathlib import Path
    import torch; torch.set_num_threads(1)
    from weightnb.core import seed_everything, save_weights
    kind, work, kill_at = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    work.mkdir(parents=True, exist_ok=True)
    calls = [0]
    def tick():                      # SIGKILL ourselves on the kill_at-th call (0: never)
        calls[0] += 1
        if calls[0] == kill_at: os.kill(os.getpid(), signal.SIGKILL)

    if kind == 'fit':
        from weightnb.data import dataloaders
        from weightnb.models import create_model
        from weightnb.train import fit
        seed_everything(0)
        dls = dataloaders('digits', batch_size=50, n_train=300, n_val=100, n_test=100, seed=0)
        model = create_model('resnet20', num_classes=10, in_chans=1)
        def augment(x): tick(); return x
        hist = fit(model, dls.train, epochs=4, opt='sgd', lr=0.05, schedule='cosine', val_dl=dls.val, augment=augment,
                   checkpoint=work / 'fit.ckpt', progress=False, device='cpu')
        save_weights(model, work / 'result.safetensors')
        out = [{k: v for k, v in h.items() if k != 'seconds'} for h in hist]
    elif kind in ('predictor', 'predictor_kd'):
        import weightnb.predictors as P
        from weightnb.data import dataloaders
        from weightnb.models import create_model
        seed_everything(0)
        dls = dataloaders('digits', batch_size=64 if kind == 'predictor_kd' else 100, n_train=200, n_val=100, n_test=100, seed=0)
        target = create_model('resnet20', num_classes=10, in_chans=1)
        real = P.kernel_batch
        def kernel_batch(*a, **k): tick(); return real(*a, **k)
        P.kernel_batch = kernel_batch
        if kind == 'predictor':
            res = P.train_predictor(target, 8, 'recon', dls, steps=250, batch_size=512, eval_every=50, checkpoint=work / 'ck',
                                    seed=0, device='cpu')
        else:                        # decoupled: phase 2 is KD on training batches (4 per pass over 200 images, shuffled)
            res = P.train_predictor(target, 8, 'decoupled', dls, steps=20, phase2_steps=230, batch_size=512, eval_every=50,
                                    checkpoint=work / 'ck', seed=0, device='cpu')
        save_weights(res.predictor, work / 'result.safetensors')
        out = {ph: {k: v for k, v in m.items() if k != 'seconds'} for ph, m in res.metrics.items()}
    else:
        import weightnb.zoo as Z
        spec = Z.ZooSpec.from_json(sys.argv[4])
        real = Z.ZooMember.write_checkpoint
        def write_checkpoint(self, *a, **k): p = real(self, *a, **k); tick(); return p
        Z.ZooMember.write_checkpoint = write_checkpoint
        zoo = Z.generate_zoo(spec, work / 'zoo', 2, device='cpu', progress=False)
        out = {m.name: m.metrics for m in zoo}
    (work / 'result.json').write_text(json.dumps(out))
""")

ZOO_SPEC = dict(arch='resnet20', dataset='digits', lr={'loguniform': [1e-3, 1e-2]}, wd=0., opt=['adam', 'sgd'], batch_size=50,
                epochs=2, checkpoints=[0, 1, 2], n_train=200, n_val=100, n_test=100, seed=11)


def _run(kind:str, work:Path, kill_at:int=0):
    from weightnb.zoo import ZooSpec
    args = [sys.executable, '-c', RUNNER, kind, str(work), str(kill_at), ZooSpec(**ZOO_SPEC).to_json()]
    env = dict(os.environ, OMP_NUM_THREADS='1', WEIGHTNB_OFFLINE='1', WEIGHTNB_DEVICE='cpu')
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)


def _interrupted_equals_clean(kind:str, tmp_path:Path, kill_at:int)->tuple[Path, Path]:
    clean = _run(kind, tmp_path / 'clean'); assert clean.returncode == 0, clean.stderr[-2000:]
    killed = _run(kind, tmp_path / 'resumed', kill_at)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
    assert not (tmp_path / 'resumed' / 'result.json').exists()
    resumed = _run(kind, tmp_path / 'resumed'); assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = (json.loads((tmp_path / d / 'result.json').read_text()) for d in ('clean', 'resumed'))
    assert a == b
    return tmp_path / 'clean', tmp_path / 'resumed'


def test_fit_killed_mid_epoch_resumes_exactly(tmp_path):
    # 300 images / 50 = 6 batches per epoch; batch 16 is in epoch 3, after epoch 2's resume file was written
    a, b = _interrupted_equals_clean('fit', tmp_path, kill_at=16)
    assert tensor_hash(load_weights(a / 'result.safetensors')) == tensor_hash(load_weights(b / 'result.safetensors'))


def test_train_predictor_killed_between_resume_files_resumes_exactly(tmp_path):
    # resume files every 100 steps: the kill at step 150 loses 50 steps that the resumed run redoes
    a, b = _interrupted_equals_clean('predictor', tmp_path, kill_at=150)
    assert tensor_hash(load_weights(a / 'result.safetensors')) == tensor_hash(load_weights(b / 'result.safetensors'))


def test_kd_phase_killed_between_resume_files_resumes_exactly(tmp_path):
    # phase 2 (KD) resume files every 100 steps: the kill at its step 150 (call 170) is mid-pass over the shuffled
    # training batches, so the resumed run must draw the batches the uninterrupted one drew at steps 101-230
    a, b = _interrupted_equals_clean('predictor_kd', tmp_path, kill_at=170)
    assert tensor_hash(load_weights(a / 'result.safetensors')) == tensor_hash(load_weights(b / 'result.safetensors'))


def test_generate_zoo_killed_mid_member_resumes_exactly(tmp_path):
    # 3 checkpoints per member: the 5th write is epoch 1 of the second member, which is then half written
    a, b = _interrupted_equals_clean('zoo', tmp_path, kill_at=5)
    from weightnb.zoo import Zoo
    za, zb = Zoo(a / 'zoo'), Zoo(b / 'zoo')
    assert za.names == zb.names == ['model_0000', 'model_0001']
    for m in za:
        assert m.epochs == zb[m.name].epochs == [0, 1, 2]
        for e in m.epochs: assert tensor_hash(m.state_dict(e)) == tensor_hash(zb[m.name].state_dict(e))


PREDICT = ['predict', '--hidden', '8', '--steps', '600', '--kernel-batch', '256', '--n-train', '100', '--n-val', '100',
           '--n-test', '100', '--device', 'cpu', '--quiet']


def test_cli_predict_killed_after_a_resume_file_resumes_exactly(tmp_path):
    """`weightnb predict` SIGKILLed as soon as its first resume file (step 100 of 600) is on disk: the same command
    again finishes the run, and its predictor, materialised model and metrics equal an uninterrupted run's."""
    import time, torch
    from weightnb.models import create_model, save_model
    torch.manual_seed(0)
    save_model(create_model('resnet20', num_classes=10, in_chans=1), tmp_path / 'target.safetensors', dataset='digits')
    cmd = [str(Path(sys.executable).parent / 'weightnb'), *PREDICT, '--model', str(tmp_path / 'target.safetensors'), '--out']
    env = dict(os.environ, OMP_NUM_THREADS='1', WEIGHTNB_OFFLINE='1')
    spawn = lambda d: subprocess.Popen(cmd + [str(tmp_path / d)], env=env, stdout=subprocess.DEVNULL,
                                       stderr=open(tmp_path / f'{d}.err', 'w'))
    clean, killed = spawn('clean'), spawn('resumed')              # the uninterrupted run goes alongside
    ck, t0 = tmp_path / 'resumed' / 'checkpoint' / 'recon.pt', time.monotonic()
    while not ck.exists() and killed.poll() is None and time.monotonic() - t0 < 240: time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL, (tmp_path / 'resumed.err').read_text()[-2000:]
    assert 100 <= torch.load(ck, weights_only=True)['step'] < 600         # killed mid-training, after a resume file
    assert not (tmp_path / 'resumed' / 'model.safetensors').exists()
    resumed = subprocess.run(cmd + [str(tmp_path / 'resumed')], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert clean.wait(timeout=300) == 0, (tmp_path / 'clean.err').read_text()[-2000:]
    for f in ('predictor.safetensors', 'model.safetensors'):
        a, b = (load_weights(tmp_path / d / f) for d in ('clean', 'resumed'))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f
    metrics = [json.loads((tmp_path / d / 'metrics.json').read_text())['recon'] for d in ('clean', 'resumed')]
    for m in metrics: m.pop('seconds')
    assert metrics[0] == metrics[1]

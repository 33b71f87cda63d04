"The weightnb console script."
import json, subprocess, sys, os
from pathlib import Path
import pytest
import weightnb

EXE = Path(sys.executable).parent/'weightnb'


def run(*args, timeout=300):
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, 'WEIGHTNB_OFFLINE': '1'})


def test_help_and_version():
    r = run('--help'); assert r.returncode == 0 and 'demo' in r.stdout and 'train' in r.stdout
    r = run('version'); assert r.returncode == 0 and r.stdout.strip() == f'weightnb {weightnb.__version__}'


def test_errors_are_reported_not_tracebacks():
    r = run('demo', '--dataset', 'nope', '--quiet')
    assert r.returncode == 2 and 'Unknown dataset' in r.stderr and 'Traceback' not in r.stderr


def test_train_saves_checkpoint(tmp_path):
    out = tmp_path/'m.safetensors'
    r = run('train', '--arch', 'resnet20', '--dataset', 'digits', '--epochs', '1', '--lr', '0.05', '--quiet',
            '--out', str(out))
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout[r.stdout.index('{'):])
    assert 0 <= res['test_acc'] <= 1 and out.exists()
    from weightnb.models import load_model
    assert load_model(out).arch['in_chans'] == 1


@pytest.mark.skipif(not Path('/usr/share/datasets/fashion-mnist').is_dir(), reason='Fashion-MNIST not installed')
def test_demo_end_to_end_small():
    r = run('demo', '--epochs', '2', '--n-train', '6000', '--quiet')
    assert r.returncode == 0, r.stderr
    acc = float(r.stdout.split('test accuracy ')[1].split('%')[0])
    assert acc > 30          # chance is 10 %

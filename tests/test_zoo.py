"""weightnb.zoo: resumability after kill -9, determinism across runs and executors, the optional Ray executor."""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest
import torch

from weightnb.core import ConfigError
from weightnb.zoo import ZooSpec, Zoo, generate_zoo, is_done

# ResNet-20 on sklearn digits (offline, instant to load): small enough for a test, heavy enough that a
# kill lands in the middle of a model. Checkpoints at every epoch, init included.
SPEC = ZooSpec(arch='resnet20', dataset='digits', lr={'loguniform': [1e-3, 1e-2]}, wd=0., opt=['adam', 'sgd'],
               init=['default', 'kaiming_normal'], batch_size=50, epochs=2, checkpoints=[0, 1, 2],
               n_train=200, n_val=100, n_test=100, seed=7)
N = 3

RUNNER = """
import sys, torch
torch.set_num_threads(1)
from weightnb.zoo import ZooSpec, generate_zoo
generate_zoo(ZooSpec.from_json(open(sys.argv[1]).read()), sys.argv[2], int(sys.argv[3]), progress=False)
"""

def _start(tmp_path:Path, out:Path):
    spec_file = tmp_path / 'spec_in.json'; spec_file.write_text(SPEC.to_json())
    env = dict(os.environ, OMP_NUM_THREADS='1', WEIGHTNB_DEVICE='cpu')
    return subprocess.Popen([sys.executable, '-c', RUNNER, str(spec_file), str(out), str(N)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

def _weights(out:Path)->dict[str, bytes]:
    "Relative path -> bytes of every checkpoint and config of the finished members."
    return {str(p.relative_to(out)): p.read_bytes() for d in sorted(out.glob('model_*')) if is_done(d)
            for p in sorted(d.iterdir()) if p.suffix in ('.safetensors',) or p.name == 'config.json'}

@pytest.fixture(scope='module')
def clean_zoo(tmp_path_factory):
    "A zoo generated in one uninterrupted subprocess."
    tmp = tmp_path_factory.mktemp('clean'); out = tmp / 'zoo'
    p = _start(tmp, out); _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err.decode()[-2000:]
    return out

def test_kill9_resume_is_clean_and_deterministic(tmp_path, clean_zoo):
    out = tmp_path / 'zoo'; p = _start(tmp_path, out)
    victim, deadline = None, time.time() + 240
    while time.time() < deadline and p.poll() is None:  # kill -9 while a member is half written, after one finished
        dirs = sorted(out.glob('model_*'))
        if any(is_done(d) for d in dirs) and dirs and not is_done(dirs[-1]) and (dirs[-1] / 'config.json').exists():
            victim = dirs[-1]; os.kill(p.pid, signal.SIGKILL); p.wait(); break
        time.sleep(0.005)
    assert victim is not None, f"the generator finished before it could be killed (rc={p.poll()})"
    finished_before = _weights(out)
    assert finished_before and not is_done(victim)
    mtimes = {k: (out / k).stat().st_mtime_ns for k in finished_before}
    p = _start(tmp_path, out); _, err = p.communicate(timeout=300)   # resume
    assert p.returncode == 0, err.decode()[-2000:]
    for k, b in finished_before.items():              # finished members were not touched ...
        assert (out / k).read_bytes() == b and (out / k).stat().st_mtime_ns == mtimes[k]
    resumed, clean = _weights(out), _weights(clean_zoo)
    assert set(resumed) == set(clean) and len(clean) == N * 4  # ... and everything equals an uninterrupted run
    for k in clean: assert resumed[k] == clean[k], k
    assert not list(victim.glob('.*.tmp'))            # the restarted member left no temporary files
    lines = (victim / 'metrics.jsonl').read_text().splitlines()
    assert [json.loads(l)['epoch'] for l in lines] == [0, 1, 2]   # restarted from scratch, not appended to
    idx = json.loads((out / 'index.json').read_text())
    assert idx['n_done'] == N and [m['name'] for m in idx['models']] == [f'model_{i:04d}' for i in range(N)]

def test_process_executor_matches(tmp_path, clean_zoo):
    zoo = generate_zoo(SPEC, tmp_path / 'zoo', N, executor='process', workers=2, progress=False)
    assert len(zoo) == N and _weights(tmp_path / 'zoo') == _weights(clean_zoo)

def test_frame_split_dataset(clean_zoo):
    zoo = Zoo(clean_zoo)
    df = zoo.frame()
    assert len(df) == N * 3 and set(df.epoch) == {0, 1, 2}
    assert (df.ggap - (df.train_acc - df.test_acc)).abs().max() < 1e-12
    assert df.groupby('model').split.nunique().max() == 1      # a model never straddles splits
    from weightnb.zoo import ZooDataset
    ds = ZooDataset(zoo, epochs=[2])
    assert len(ds) == N and ds.weights.shape[0] == N
    m = zoo[0].model(2).eval()
    assert m(torch.zeros(2, 1, 8, 8)).shape == (2, 10)

def test_ray_missing_gives_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'ray', None)      # import ray -> ImportError
    with pytest.raises(ConfigError, match=r'pip install weightnb\[ray\]'):
        generate_zoo(SPEC, tmp_path / 'zoo', 1, executor='ray', progress=False)

def test_ray_executor_local_instance(tmp_path, clean_zoo, monkeypatch):
    ray = pytest.importorskip('ray')
    monkeypatch.setenv('RAY_USAGE_STATS_ENABLED', '0')
    monkeypatch.setenv('RAY_raylet_start_wait_time_s', '180')   # a loaded CI machine starts Ray's agents slowly
    try: zoo = generate_zoo(SPEC, tmp_path / 'zoo', N, executor='ray', workers=2, progress=False)
    except Exception as e:
        # Ray's raylet waits a fixed ~15 s for its dashboard agent; on an overloaded 2-core machine the agent
        # needs longer and the local node never comes up. That is the environment, not weightnb: skip, loudly.
        if 'timed out during startup' in str(e): pytest.skip(f'local Ray node could not start on this machine: {e}')
        raise
    assert not ray.is_initialized()                   # the Ray instance it started was shut down
    assert len(zoo) == N and _weights(tmp_path / 'zoo') == _weights(clean_zoo)

def test_pack_unpack_round_trip_is_bit_exact(tmp_path, clean_zoo):
    import pandas as pd
    zoo = Zoo(clean_zoo)
    pz = Zoo(zoo.pack(tmp_path / 'zoo.safetensors'))
    assert pz.packed is not None and pz.names == zoo.names and pz.spec == zoo.spec
    pd.testing.assert_frame_equal(pz.frame().drop(columns='path'), zoo.frame().drop(columns='path'))
    for a, b in zip(zoo, pz):
        assert a.config == b.config and a.metrics == b.metrics and a.status == b.status and a.epochs == b.epochs
    back = pz.unpack(tmp_path / 'back')
    files = lambda root: {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file() and p.name != '.lock'}
    assert files(back.path) == files(clean_zoo)       # every file, byte for byte (index and spec included)
    with pytest.raises(ConfigError, match='read-only'): pz[0].write_config({})

def test_committed_packed_reference_zoo():
    "The shared reference zoo is one packed file (its folder is not in git) and reads as the folder did."
    zoo = Zoo(Path(__file__).resolve().parent.parent / 'bench' / 'results' / 'zoo_fmnist_small.safetensors')
    df = zoo.frame()
    assert len(zoo) == 120 and len(df) == 720 and sorted(set(df.epoch)) == [0, 1, 2, 3, 4, 5]
    final = df[df.epoch == 5].test_acc
    assert [f'{v:.3f}' for v in (final.min(), final.median(), final.max())] == ['0.099', '0.718', '0.795']  # as in zoo.md
    m = zoo['model_0081'].model(5).eval()
    assert m(torch.zeros(2, 1, 28, 28)).shape == (2, 10)

"""Hostile and careless inputs to weightnb.zoo and weightnb.rebasin (issue 19): each gives the right result or a
specific weightnb error that names the file, member or argument; nothing silently wrong."""
import json, os, shutil, signal, subprocess, sys, time, warnings
from pathlib import Path

import pytest
import torch

import weightnb.rebasin as rebasin
from weightnb.core import (ConfigError, CheckpointError, NonFiniteWeightsError, ShapeMismatchError, StateDictMismatchError,
                           save_weights, load_weights)
from weightnb.models import zoo_cnn_small
from weightnb.rebasin import permutation_spec, apply_permutation, weight_matching, align, align_zoo
from weightnb.zoo import (ZooSpec, Zoo, ZooMember, ZooDataset, ZooLockedError, generate_zoo, zoo_lock, import_modelzoo)

torch.set_num_threads(1)
# two small zoo CNNs on 200 Fashion-MNIST images, one epoch: ~1-2 s per member
SPEC = ZooSpec(arch='zoo_cnn_small', dataset='fashion-mnist', lr=1e-3, wd=0., opt='adam', batch_size=50, epochs=1,
               checkpoints=[0, 1], n_train=200, n_val=100, n_test=100, seed=3)


@pytest.fixture(scope='module')
def tiny_zoo(tmp_path_factory):
    out = tmp_path_factory.mktemp('tiny') / 'zoo'
    generate_zoo(SPEC, out, 2, progress=False)
    return out

@pytest.fixture
def zoo_copy(tiny_zoo, tmp_path):
    "A private copy of the tiny zoo that a test may damage."
    return Path(shutil.copytree(tiny_zoo, tmp_path / 'zoo', ignore=shutil.ignore_patterns('.lock')))

def _weights(member_dir:Path)->dict:
    return {p.name: p.read_bytes() for p in sorted(member_dir.glob('epoch_*.safetensors'))}


# --- zoo: damaged, incomplete and unreadable members -------------------------------------------------------------

def test_damaged_member_detected_named_and_retrained(zoo_copy):
    before = _weights(zoo_copy / 'model_0001')
    (zoo_copy / 'model_0001' / 'epoch_001.safetensors').unlink()      # listed in `done`, now missing
    with pytest.warns(UserWarning, match=r"model_0001.*damaged"):
        zoo = Zoo(zoo_copy)
    assert zoo.names == ['model_0000']                                # left out, not silently shortened
    with pytest.raises(CheckpointError, match=r'model_0001.*damaged.*\[1\]'):
        zoo['model_0001'].state_dict()                                # never epoch 0 as "the last checkpoint"
    with pytest.warns(UserWarning, match=r"model_0001.*retrained"):
        generate_zoo(SPEC, zoo_copy, 2, progress=False)
    assert _weights(zoo_copy / 'model_0001') == before                # retrained, bit-identical
    with warnings.catch_warnings():
        warnings.simplefilter('error'); assert len(Zoo(zoo_copy)) == 2

def test_member_without_metrics_is_named_not_nan(zoo_copy):
    (zoo_copy / 'model_0000' / 'metrics.jsonl').unlink()
    zoo = Zoo(zoo_copy)
    assert not zoo['model_0000'].has_metrics and zoo['model_0000'].metrics == []
    with pytest.warns(UserWarning, match=r"model_0000.*metrics.jsonl"):
        df = zoo.frame()
    with pytest.warns(UserWarning, match=r"dropped 2 checkpoints of members \['model_0000'\]"):
        ds = ZooDataset(zoo)
    assert len(ds) == 2 and all(torch.isfinite(torch.tensor(list(p.values()))).all() for _, p in ds)
    assert set(df.model) == {'model_0000', 'model_0001'}
    (zoo_copy / 'model_0001' / 'metrics.jsonl').unlink()              # no member has metrics at all
    with pytest.warns(UserWarning), pytest.raises(ConfigError, match='metrics.jsonl'):
        ZooDataset(Zoo(zoo_copy))

@pytest.mark.parametrize('part', ['spec.json', 'model_0000/config.json', 'model_0000/done', 'model_0000/metrics.jsonl'])
def test_json_that_is_not_json_names_the_file(zoo_copy, part):
    (zoo_copy / part).write_text('{"lr": ')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        if part == 'spec.json':
            with pytest.raises(ConfigError, match=r'spec\.json.*not valid JSON'): generate_zoo(SPEC, zoo_copy, 2, progress=False)
            with pytest.raises(ConfigError, match=r'spec\.json'): Zoo(zoo_copy).spec
            return
        m = ZooMember(zoo_copy / 'model_0000')
        with pytest.raises(ConfigError, match=part.split('/')[1].replace('.', r'\.')):
            if part.endswith('config.json'): m.config
            elif part.endswith('done'): Zoo(zoo_copy)
            else: m.metrics

def test_import_modelzoo_params_not_json(tmp_path):
    t = tmp_path / 'mz' / 'trial_0'; (t / 'checkpoint_1').mkdir(parents=True)
    (t / 'params.json').write_text('{bad'); torch.save(zoo_cnn_small().state_dict(), t / 'checkpoint_1' / 'checkpoints')
    with pytest.raises(ConfigError, match=r'params\.json'):
        import_modelzoo(tmp_path / 'mz', tmp_path / 'out', progress=False)


# --- zoo: specs that cannot work fail before any training --------------------------------------------------------

def test_checkpoints_all_beyond_epochs_is_refused_before_training(tmp_path):
    out = tmp_path / 'zoo'
    with pytest.raises(ConfigError, match=r'exceed the 1 training epochs'):
        generate_zoo(ZooSpec(**{**SPEC.__dict__, 'checkpoints': [5, 10]}), out, 2, progress=False)
    assert not list(out.glob('model_*')) and not (out / 'spec.json').exists()

@pytest.mark.parametrize('field, value, msg', [
    ('lr', {'loguniform': [1e-3]}, 'needs two numbers'), ('lr', {'loguniform': 'abc'}, 'needs two numbers'),
    ('lr', {'uniform': [1, 'x']}, 'needs two numbers'), ('lr', {'gamma': [1, 2]}, 'Unknown distribution'),
    ('lr', {'loguniform': [0, 1]}, 'positive bounds'), ('lr', {'uniform': [2, 1]}, 'empty'),
    ('epochs', {'randint': [1.5, 3]}, 'integer bounds'), ('opt', [], 'empty list'),
    ('checkpoints', ['1'], 'integer epochs'), ('checkpoints', {'policy': 'other'}, 'Unknown checkpoint policy')])
def test_malformed_spec_distributions(tmp_path, field, value, msg):
    with pytest.raises(ConfigError, match=msg):
        generate_zoo(ZooSpec(**{**SPEC.__dict__, field: value}), tmp_path / 'zoo', 1, progress=False)
    assert not list((tmp_path / 'zoo').glob('model_*'))


# --- zoo: two generators on one folder ---------------------------------------------------------------------------

RUNNER = """
import sys, torch
torch.set_num_threads(1)
from weightnb.zoo import ZooSpec, generate_zoo
generate_zoo(ZooSpec.from_json(open(sys.argv[1]).read()), sys.argv[2], int(sys.argv[3]), progress=False)
"""

def test_second_generator_on_same_folder_refused_clearly(tmp_path, tiny_zoo):
    out = tmp_path / 'zoo'; (tmp_path / 'spec.json').write_text(SPEC.to_json())
    env = dict(os.environ, OMP_NUM_THREADS='1', WEIGHTNB_DEVICE='cpu')
    p = subprocess.Popen([sys.executable, '-c', RUNNER, str(tmp_path / 'spec.json'), str(out), '2'], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and p.poll() is None and 'pid' not in ((out / '.lock').read_text() if (out / '.lock').exists() else ''):
            time.sleep(0.01)
        assert p.poll() is None, p.stderr.read().decode()[-2000:]
        with pytest.raises(ZooLockedError, match=rf'being generated by pid {p.pid}'):
            generate_zoo(SPEC, out, 2, progress=False)
        os.kill(p.pid, signal.SIGKILL); p.wait()                      # the lock dies with its holder ...
    finally:
        if p.poll() is None: p.kill(); p.wait()
    generate_zoo(SPEC, out, 2, progress=False)                        # ... so the folder resumes
    for d in sorted(out.glob('model_*')):
        epochs = [json.loads(l)['epoch'] for l in (d / 'metrics.jsonl').read_text().splitlines()]
        assert epochs == [0, 1], (d, epochs)                         # no duplicated rows
        assert _weights(d) == _weights(tiny_zoo / d.name)

def test_lock_held_in_process(zoo_copy):
    with zoo_lock(zoo_copy):
        with pytest.raises(ZooLockedError, match='wait for it'): generate_zoo(SPEC, zoo_copy, 2, progress=False)
    assert len(generate_zoo(SPEC, zoo_copy, 2, progress=False)) == 2  # released on exit


# --- zoo: one checked loading path --------------------------------------------------------------------------------

def test_member_model_checks_keys(zoo_copy):
    m = ZooMember(zoo_copy / 'model_0000'); sd = m.state_dict(1); f = m.checkpoint_path(1)
    save_weights({'module.' + k: v for k, v in sd.items()}, f)          # a DataParallel prefix is stripped
    torch.testing.assert_close(ZooMember(m.path).model(1).state_dict()['fc2.bias'], sd['fc2.bias'])
    save_weights({k: v for k, v in sd.items() if k != 'fc2.bias'}, f)
    with pytest.raises(StateDictMismatchError, match=r'missing.*fc2\.bias'): ZooMember(m.path).model(1)
    save_weights({**sd, 'extra.weight': torch.zeros(1)}, f)
    with pytest.raises(StateDictMismatchError, match=r'unexpected.*extra\.weight'): ZooMember(m.path).model(1)
    save_weights({**sd, 'fc2.bias': torch.zeros(3)}, f)
    with pytest.raises(StateDictMismatchError, match=r'model_0000 epoch 1.*fc2\.bias'): ZooMember(m.path).model(1)


# --- rebasin ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
def test_weight_matching_non_finite_before_scipy(monkeypatch, bad):
    monkeypatch.setattr(rebasin, 'linear_sum_assignment', lambda *a, **k: pytest.fail('scipy was reached'))
    a, b = zoo_cnn_small(), zoo_cnn_small()
    with torch.no_grad(): b.conv2.weight[0, 0, 0, 0] = bad
    spec = permutation_spec(a)
    with pytest.raises(NonFiniteWeightsError, match=r'conv2\.weight'): weight_matching(spec, a, b)
    with pytest.raises(NonFiniteWeightsError, match=r'conv2\.weight'): weight_matching(spec, b, a)
    with pytest.raises(NonFiniteWeightsError): align(b, a)

def test_permutation_dict_and_state_dict_mismatches():
    m = zoo_cnn_small(); spec = permutation_spec(m); sd = m.state_dict()
    with pytest.raises(ConfigError, match=r"Unknown permutation names \['conv1'\]"):   # layer names instead of permutation names
        apply_permutation(spec, {'conv1': torch.arange(8)}, sd)
    with pytest.raises(ConfigError, match=r"perm\['P_conv1'\] must be a permutation of range\(8\)"):
        apply_permutation(spec, {'P_conv1': torch.arange(7)}, sd)
    partial = apply_permutation(spec, {'P_conv1': torch.arange(8).flip(0)}, sd)     # missing names: identity, documented
    assert torch.equal(partial['conv2.weight'], sd['conv2.weight'].flip(1)) and torch.equal(partial['fc1.weight'], sd['fc1.weight'])
    missing = {k: v for k, v in sd.items() if k != 'conv3.weight'}
    with pytest.raises(ShapeMismatchError, match=r"'conv3\.weight', which is not in the state dict"):
        apply_permutation(spec, {}, missing)
    with pytest.raises(ShapeMismatchError, match=r"conv3\.weight"): weight_matching(spec, sd, missing)

def _aligned_ok(path:Path, names):
    z = Zoo(path); assert z.names == names and all(z[n].config['aligned_to'] == 'model_0000' for n in names)

def test_align_zoo_validates_before_writing(zoo_copy, tmp_path):
    out = tmp_path / 'aligned'; out.mkdir(); (out / 'keep.txt').write_text('mine')
    with pytest.raises(ConfigError, match='not empty'): align_zoo(zoo_copy, 'model_0000', out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ['keep.txt']
    f = zoo_copy / 'model_0001' / 'epoch_001.safetensors'
    w = load_weights(f); w['fc1.weight'][0, 0] = float('nan'); save_weights(w, f)
    out2 = tmp_path / 'aligned2'
    with pytest.raises(NonFiniteWeightsError, match='model_0001'): align_zoo(zoo_copy, 'model_0000', out2, progress=False)
    assert not out2.exists() and not list(tmp_path.glob('.aligned2*'))  # nothing written, nothing blocks a retry

def test_align_zoo_failure_leaves_no_valid_looking_zoo_and_retry_works(zoo_copy, tmp_path, monkeypatch):
    out, calls, real = tmp_path / 'aligned', [], rebasin.weight_matching
    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 2: raise KeyboardInterrupt    # dies after the first member was written
        return real(*a, **k)
    monkeypatch.setattr(rebasin, 'weight_matching', flaky)
    with pytest.raises(KeyboardInterrupt): align_zoo(zoo_copy, 'model_0000', out, progress=False)
    assert not out.exists()                                           # never a smaller "valid" zoo
    partial = tmp_path / '.aligned.partial'
    with pytest.raises(CheckpointError, match='incomplete'): Zoo(partial)
    monkeypatch.setattr(rebasin, 'weight_matching', real)
    res = align_zoo(zoo_copy, 'model_0000', out, progress=False)     # the retry is not refused and starts afresh
    assert sorted(res) == ['model_0000', 'model_0001'] and not partial.exists()
    _aligned_ok(out, ['model_0000', 'model_0001'])
    assert json.loads((out / 'index.json').read_text())['n_done'] == 2

def test_align_zoo_on_packed_zoo(zoo_copy, tmp_path):
    packed = Zoo(zoo_copy).pack(tmp_path / 'tiny.safetensors')
    align_zoo(packed, 'model_0000', progress=False)
    _aligned_ok(tmp_path / 'tiny_aligned', ['model_0000', 'model_0001'])

@pytest.mark.parametrize('field,dist', [('lr', {'loguniform': [1]}), ('wd', {'uniform': [1, 'a']}), ('epochs', {'randint': [3]}),
                                        ('model_seed', {'gauss': [0, 1]})])
def test_malformed_distribution_names_the_field(field, dist):
    with pytest.raises(ConfigError, match=f"ZooSpec field '{field}'"): ZooSpec(**{field: dist}).sample(0)

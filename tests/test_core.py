"Safe weight I/O, error types, devices and conv-layer discovery."
import os, pickle, struct
from pathlib import Path
import pytest, torch
from torch import nn
from hypothesis import given, settings, strategies as st

from weightnb.core import (WeightnbError, CheckpointError, UnsafeCheckpointError, NoConvLayerError,
                           NonFiniteWeightsError, default_device, conv_layers, save_weights, load_weights,
                           weight_metadata, check_finite, atomic_path, tensor_hash, cache_dir)
from weightnb.models import resnet20, zoo_cnn_small


def test_default_device_env_override(monkeypatch):
    monkeypatch.setenv('WEIGHTNB_DEVICE', 'cpu')
    assert default_device() == torch.device('cpu')
    assert default_device('meta') == torch.device('meta')


def test_conv_layers_order_and_no_conv():
    names = [n for n, _ in conv_layers(resnet20(shortcut='B'))]
    assert names[0] == 'conv1' and names[1] == 'layer1.0.conv1' and 'layer2.0.shortcut.0' in names
    assert len(names) == 19 + 2
    with pytest.raises(NoConvLayerError, match='no nn.Conv2d'): conv_layers(nn.Sequential(nn.Linear(3, 3), nn.ReLU()))


@pytest.mark.parametrize('suffix', ['.safetensors', '.pt'])
def test_round_trip_keeps_order_and_values(tmp_path, suffix):
    m = resnet20(in_chans=1)
    p = save_weights(m, tmp_path/f'r{suffix}')
    sd = load_weights(p)
    assert list(sd) == list(m.state_dict())
    for k, v in m.state_dict().items(): assert torch.equal(sd[k], v)


def test_tied_and_noncontiguous_tensors_save(tmp_path):
    w = torch.randn(4, 6)
    sd = {'a': w, 'b': w, 'c': w.t()}          # shared storage and a non-contiguous view
    out = load_weights(save_weights(sd, tmp_path/'t.safetensors'))
    assert torch.equal(out['c'], w.t()) and torch.equal(out['a'], out['b'])


class _RunsCode:
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f'touch {self.marker}',))


def test_malicious_pickle_is_refused_and_not_executed(tmp_path):
    marker = tmp_path/'executed'
    torch.save({'weight': _RunsCode(marker)}, tmp_path/'evil.pt')
    with pytest.raises(UnsafeCheckpointError, match='refused'): load_weights(tmp_path/'evil.pt')
    assert not marker.exists()


def test_raw_pickle_with_pt_suffix_is_refused(tmp_path):
    marker = tmp_path/'executed'
    (tmp_path/'evil.pt').write_bytes(pickle.dumps(_RunsCode(marker)))
    with pytest.raises(CheckpointError): load_weights(tmp_path/'evil.pt')
    assert not marker.exists()


def test_truncated_and_garbage_safetensors(tmp_path):
    good = save_weights(resnet20(), tmp_path/'good.safetensors').read_bytes()
    for name, data in [('cut', good[:len(good)//2]), ('header', good[:20]), ('empty', b''),
                       ('garbage', os.urandom(1000)), ('huge_header', struct.pack('<Q', 2**62) + b'{}')]:
        p = tmp_path/f'{name}.safetensors'; p.write_bytes(data)
        with pytest.raises(CheckpointError, match='truncated or corrupt'): load_weights(p)


def test_truncated_pt_and_missing_and_bad_suffix(tmp_path):
    good = save_weights(resnet20(), tmp_path/'good.pt').read_bytes()
    (tmp_path/'cut.pt').write_bytes(good[:len(good)//3])
    with pytest.raises(CheckpointError, match='truncated or corrupt'): load_weights(tmp_path/'cut.pt')
    with pytest.raises(CheckpointError, match='No weight file'): load_weights(tmp_path/'nope.safetensors')
    (tmp_path/'w.npz').write_bytes(b'x')
    with pytest.raises(CheckpointError, match='suffix'): load_weights(tmp_path/'w.npz')
    with pytest.raises(CheckpointError, match='suffix'): save_weights(resnet20(), tmp_path/'w.npz')


def test_pt_holding_non_mapping(tmp_path):
    torch.save(torch.ones(3), tmp_path/'t.pt')
    with pytest.raises(CheckpointError, match='not a state dict'): load_weights(tmp_path/'t.pt')


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    p = save_weights({'w': torch.ones(2)}, tmp_path/'w.safetensors')
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            tmp.write_bytes(b'partial'); raise RuntimeError('crash mid-write')
    assert torch.equal(load_weights(p)['w'], torch.ones(2))
    assert [f.name for f in tmp_path.iterdir()] == ['w.safetensors']


def test_metadata_and_hash(tmp_path):
    p = save_weights(zoo_cnn_small(), tmp_path/'z.safetensors', metadata={'epoch': 5, 'lr': 0.1})
    assert weight_metadata(p) == {'epoch': '5', 'lr': '0.1'}
    m = zoo_cnn_small(); assert tensor_hash(m) == tensor_hash(m.state_dict())


def test_check_finite_names_tensor():
    m = zoo_cnn_small()
    with torch.no_grad(): m.fc1.weight[0, 0] = float('inf')
    with pytest.raises(NonFiniteWeightsError, match="'fc1.weight'"): check_finite(m)


def test_errors_are_weightnb_errors():
    for e in (CheckpointError, UnsafeCheckpointError, NoConvLayerError, NonFiniteWeightsError):
        assert issubclass(e, WeightnbError)


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv('WEIGHTNB_CACHE', str(tmp_path))
    assert cache_dir('x', 'y') == tmp_path/'x'/'y' and (tmp_path/'x'/'y').is_dir()


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=4), st.integers(0, 2**31 - 1))
def test_round_trip_property(shape, seed):
    import tempfile
    g = torch.Generator().manual_seed(seed)
    sd = {f'layer{i}.w': torch.randn(*shape[:i+1], generator=g) for i in range(len(shape))}
    with tempfile.TemporaryDirectory() as d:
        out = load_weights(save_weights(sd, Path(d)/'p.safetensors'))
    assert list(out) == list(sd) and all(torch.equal(out[k], v) for k, v in sd.items())

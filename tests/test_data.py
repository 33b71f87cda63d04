"Dataset loading (offline chain, clear errors), subsets, noise, splits, loaders, augmentation."
import time
import pytest, torch
from hypothesis import given, settings, strategies as st

from weightnb.core import UnknownDatasetError, DatasetNotFoundError, ConfigError
from weightnb.data import (load_dataset, class_subset, noise_dataset, train_val_split, dataloaders, random_crop_flip, DEBIAN_FASHION_MNIST)

DIGITS = load_dataset('digits')


def test_unknown_dataset():
    with pytest.raises(UnknownDatasetError, match='Known: fashion-mnist'): load_dataset('imagenet-22k')
    with pytest.raises(ConfigError, match="split must be"): load_dataset('digits', split='validation')


@pytest.mark.parametrize('name', ['mnist', 'cifar10', 'cifar100', 'stl10', 'svhn'])
def test_missing_data_offline_is_fast_and_clear(tmp_path, monkeypatch, name):
    monkeypatch.setenv('WEIGHTNB_OFFLINE', '1')
    monkeypatch.setenv('WEIGHTNB_CACHE', str(tmp_path/'cache'))
    monkeypatch.delenv('WEIGHTNB_DATA', raising=False)
    t0 = time.perf_counter()
    with pytest.raises(DatasetNotFoundError, match=r'WEIGHTNB_DATA'): load_dataset(name, 'test', root=tmp_path)
    assert time.perf_counter() - t0 < 60       # no network wait: fails at once (generous for loaded CI machines)


def test_download_attempt_fails_fast_without_network(tmp_path, monkeypatch):
    "With downloads allowed, an unreachable network must still end in a clear error, not a hang."
    monkeypatch.setenv('WEIGHTNB_OFFLINE', '0')
    monkeypatch.setenv('WEIGHTNB_CACHE', str(tmp_path/'cache'))
    monkeypatch.delenv('WEIGHTNB_DATA', raising=False)
    def no_network(*a, **k): raise OSError('network is unreachable')
    monkeypatch.setattr('urllib.request.urlopen', no_network)
    with pytest.raises(DatasetNotFoundError, match='download into'): load_dataset('mnist', 'test', root=tmp_path)


def test_fashion_mnist_error_names_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv('WEIGHTNB_OFFLINE', '1')
    monkeypatch.setenv('WEIGHTNB_CACHE', str(tmp_path/'cache'))
    monkeypatch.delenv('WEIGHTNB_DATA', raising=False)
    monkeypatch.setattr('weightnb.data.DEBIAN_FASHION_MNIST', tmp_path/'no-debian')
    with pytest.raises(DatasetNotFoundError, match='apt-get install dataset-fashion-mnist'):
        load_dataset('fashion-mnist', 'test', root=tmp_path)


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debian(tmp_path, monkeypatch):
    monkeypatch.setenv('WEIGHTNB_CACHE', str(tmp_path))           # a fresh cache: must unpack Debian's files
    monkeypatch.delenv('WEIGHTNB_DATA', raising=False)
    test = load_dataset('fashion-mnist', 'test')
    assert test.x.shape == (10000, 1, 28, 28) and test.classes[0] == 'T-shirt/top'
    assert abs(test.x.mean()) < 0.05 and abs(test.x.std() - 1) < 0.05
    assert (tmp_path/'data'/'FashionMNIST'/'raw'/'t10k-images-idx3-ubyte').exists()
    # $WEIGHTNB_DATA is searched before the cache
    monkeypatch.setenv('WEIGHTNB_DATA', str(tmp_path/'data'))
    assert len(load_dataset('fashion-mnist', 'train')) == 60000



@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_concurrent_first_unpack_is_not_corrupted(tmp_path):
    "Several processes loading Fashion-MNIST for the first time at once (one GPU shared by bench jobs) once got a"
    "half-written raw file through a shared '.part' name; each writer now has its own temp file."
    import gzip
    from concurrent.futures import ProcessPoolExecutor
    from weightnb.data import _unpack_debian_fashion_mnist
    with ProcessPoolExecutor(3) as ex: list(ex.map(_unpack_debian_fashion_mnist, [tmp_path] * 3))
    raw = tmp_path/'FashionMNIST'/'raw'
    src = DEBIAN_FASHION_MNIST/'t10k-images-idx3-ubyte.gz'
    assert (raw/'t10k-images-idx3-ubyte').read_bytes() == gzip.open(src).read()
    assert sorted(p.name for p in raw.iterdir()) == sorted(p.name[:-3] for p in DEBIAN_FASHION_MNIST.glob('*-ubyte.gz'))

@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=1, max_size=10, unique=True))
def test_class_subset_relabels_in_given_order(classes):
    sub = class_subset(DIGITS, classes)
    assert sub.classes == [str(c) for c in classes]
    for new, old in enumerate(classes):
        assert torch.equal(sub.x[sub.y == new], DIGITS.x[DIGITS.y == old])
    assert len(sub) == sum(int((DIGITS.y == c).sum()) for c in classes)


def test_class_subset_errors():
    with pytest.raises(ConfigError, match='do not exist'): class_subset(DIGITS, [3, 11])
    with pytest.raises(ConfigError, match='Duplicate'): class_subset(DIGITS, [3, 3])


def test_noise_dataset_range_and_determinism():
    a, b = noise_dataset((3, 4, 4), 500, seed=1), noise_dataset((3, 4, 4), 500, seed=1)
    assert torch.equal(a.x, b.x) and a.x.min() >= -1 and a.x.max() <= 1 and (a.y == -1).all()
    assert a.x.min() < -0.9 and a.x.max() > 0.9


def test_split_deterministic_disjoint_and_complete():
    tr, va = train_val_split(DIGITS, 0.2, seed=3)
    tr2, va2 = train_val_split(DIGITS, 0.2, seed=3)
    assert torch.equal(tr.x, tr2.x) and torch.equal(va.y, va2.y)
    assert len(tr) + len(va) == len(DIGITS) and abs(len(va) - 0.2 * len(DIGITS)) <= 1
    _, va3 = train_val_split(DIGITS, 0.2, seed=4)
    assert not torch.equal(va.y, va3.y)
    with pytest.raises(ConfigError): train_val_split(DIGITS, 1.5)


def test_dataloaders_shapes_and_subsetting():
    dls = dataloaders('digits', batch_size=32, classes=[0, 1, 2], n_train=100)
    assert len(dls.train.dataset) == 100 and set(dls.test.dataset.y.tolist()) <= {0, 1, 2}
    x, y = next(iter(dls.train))
    assert x.shape == (32, 1, 8, 8) and y.dtype == torch.long
    assert dls.info.name == 'digits'


def test_pixel_bounds():
    lo, hi = DIGITS.pixel_bounds
    assert torch.allclose(DIGITS.x.min(), lo.min(), atol=1e-5) and DIGITS.x.max() <= hi.max() + 1e-5


def test_random_crop_flip_is_a_shift_or_flip():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float).view(2, 1, 6, 6)
    torch.manual_seed(0)
    y = random_crop_flip(x, pad=1, flip=False)
    assert y.shape == x.shape
    # every output row is a (clamped) shifted row of the input
    assert set(y.flatten().tolist()) <= set(x.flatten().tolist())
    assert torch.equal(random_crop_flip(x, pad=0, flip=False), x)

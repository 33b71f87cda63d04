"Architectures: shapes, parameter counts, shortcut options, building from names and checkpoints."
import pytest, torch
from torch import nn
from weightnb.core import ConfigError, CheckpointError, save_weights, conv_layers
from weightnb.models import (resnet20, resnet32, resnet56, zoo_cnn_small, zoo_cnn_large, resnet18, ZooCNN,
                             create_model, save_model, load_model, n_params, ACTIVATIONS)


@pytest.mark.parametrize('fn,depth', [(resnet20, 20), (resnet32, 32), (resnet56, 56)])
@pytest.mark.parametrize('shortcut', ['A', 'B'])
def test_cifar_resnets(fn, depth, shortcut):
    m = fn(num_classes=7, in_chans=1, shortcut=shortcut)
    assert m(torch.randn(2, 1, 28, 28)).shape == (2, 7)
    n_conv3 = sum(1 for _, c in conv_layers(m) if c.kernel_size == (3, 3))
    assert n_conv3 + 1 == depth                               # 6n+1 conv layers + fc = 6n+2
    n_1x1 = sum(1 for _, c in conv_layers(m) if c.kernel_size == (1, 1))
    assert n_1x1 == (2 if shortcut == 'B' else 0)


def test_option_a_shortcut_is_parameter_free_identity_on_first_channels():
    m = resnet20(); blk = m.layer2[0]
    x = torch.randn(1, 16, 8, 8)
    s = blk.shortcut(x)
    assert s.shape == (1, 32, 4, 4) and sum(p.numel() for p in blk.shortcut.parameters()) == 0
    assert torch.equal(s[:, 8:24], x[:, :, ::2, ::2]) and s[:, :8].abs().sum() == 0


def test_bad_shortcut():
    with pytest.raises(ConfigError, match="shortcut must be"): resnet20(shortcut='C')


@pytest.mark.parametrize('act', list(ACTIVATIONS))
def test_zoo_cnn_variants(act):
    assert n_params(zoo_cnn_small(activation=act, dropout=0.2)) == 2464
    assert zoo_cnn_large(activation=act)(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_zoo_cnn_errors():
    with pytest.raises(ConfigError, match='too small'): zoo_cnn_small(img_size=8)
    with pytest.raises(ConfigError, match='size must be'): ZooCNN('medium')


def test_resnet18_adapter():
    m = resnet18(num_classes=5, in_chans=1, small_input=True)
    assert isinstance(m.maxpool, nn.Identity) and m.conv1.stride == (1, 1)
    assert m(torch.randn(2, 1, 32, 32)).shape == (2, 5)


def test_create_and_checkpoint(tmp_path):
    for arch, kw in [('resnet20', dict(in_chans=1, shortcut='B')), ('zoo_cnn_small', {}), ('resnet18', dict(num_classes=3, small_input=True))]:
        m = create_model(arch, **kw).eval()
        p = save_model(m, tmp_path/f'{arch}.safetensors', note='x')
        m2 = load_model(p).eval()
        x = torch.randn(2, m.arch['in_chans'], 32 if arch != 'zoo_cnn_small' else 28, 32 if arch != 'zoo_cnn_small' else 28)
        assert torch.equal(m(x), m2(x))
    with pytest.raises(ConfigError, match='Unknown architecture'): create_model('vit')
    save_weights(resnet20(), tmp_path/'plain.safetensors')
    with pytest.raises(CheckpointError, match='does not say which architecture'): load_model(tmp_path/'plain.safetensors')
    with pytest.raises(ConfigError, match='not built by weightnb'): save_model(nn.Linear(2, 2), tmp_path/'l.safetensors')

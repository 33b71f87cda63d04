"Tokenisation round trips, speed, standardisation, windows and haloing."
import time, pytest, torch
from hypothesis import given, settings, strategies as st
from weightnb.core import ConfigError, ShapeMismatchError
from weightnb.models import create_model, zoo_cnn_small
from weightnb.tokens import (tokenize, detokenize, Standardizer, halo_chunks, stitch, take_windows,
                             window_starts)

def _same(a, b): return list(a) == list(b) and all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)

@settings(max_examples=40, deadline=None)
@given(c_out=st.integers(1, 9), rest=st.lists(st.integers(1, 5), min_size=0, max_size=3), bias=st.booleans(),
       token_size=st.integers(1, 40), half=st.booleans())
def test_round_trip_is_bit_exact(c_out, rest, bias, token_size, half):
    g = torch.Generator().manual_seed(c_out * 7 + token_size)
    sd = {'a.weight': torch.randn(c_out, *rest, generator=g) if rest else torch.randn(c_out, 3, generator=g),
          'lone': torch.randn(5, generator=g), 'count': torch.tensor(3)}
    if bias: sd['a.bias'] = torch.randn(c_out, generator=g)
    if half: sd['lone'] = sd['lone'].half()
    t = tokenize(sd, token_size)
    assert t.tokens.shape[1] == token_size and t.mask.sum() == sum(v.numel() for k, v in sd.items() if k != 'count')
    assert _same(detokenize(t), sd)

def test_every_architecture_round_trips_with_and_without_bn():
    for name, kw in [('resnet20', {}), ('resnet32', {}), ('zoo_cnn_small', {}), ('zoo_cnn_large', {}), ('resnet18', {}),
                     ('cifar_resnet', dict(n_blocks=1)), ('zoo_cnn', {})]:
        sd = create_model(name, **kw).state_dict()
        for ignore_bn in (True, False): assert _same(detokenize(tokenize(sd, 100, ignore_bn)), sd), name

def test_resnet18_tokenises_fast():
    sd = create_model('resnet18').state_dict()
    torch.set_num_threads(1); times = []
    for _ in range(3): t0 = time.perf_counter(); t = tokenize(sd, 288); times.append(time.perf_counter() - t0)
    assert min(times) < 2.0, times                               # <= 1 s unloaded (bench/results/sane.md); margin for a shared machine
    assert t.positions[-1, 0] == len(t) - 1

def test_positions_and_layers():
    t = tokenize(zoo_cnn_small().state_dict(), 16)
    assert (t.positions[:, 0] == torch.arange(len(t))).all()
    assert (t.positions[:, 1].diff() >= 0).all() and t.positions[:, 1].max() == len(t.layers) - 1
    assert t.positions[t.layers[2].start].tolist() == [t.layers[2].start, 2, 0]

def test_errors():
    with pytest.raises(ConfigError): tokenize(zoo_cnn_small().state_dict(), 0)
    with pytest.raises(ConfigError): tokenize({'n': torch.tensor(1)}, 4)
    t = tokenize(zoo_cnn_small().state_dict(), 16)
    with pytest.raises(ShapeMismatchError): t.with_tokens(torch.zeros(3, 16))
    with pytest.raises(ConfigError): Standardizer().transform(t)

def test_standardizer_statistics():
    torch.manual_seed(0)
    sds = [{k: v * (i + 1) + i for k, v in zoo_cnn_small().state_dict().items()} for i in range(4)]
    seqs = [tokenize(sd, 32) for sd in sds]; s = Standardizer().fit(seqs)
    w = torch.stack([sd['conv2.weight'].flatten().double() for sd in sds])
    assert torch.allclose(s.mean[2].double(), w.mean(1).mean(), atol=1e-5)
    assert torch.allclose(s.std[2].double(), w.var(1, unbiased=False).mean().sqrt(), atol=1e-5)
    out = s.transform(seqs[1]); assert (out.tokens[~out.mask] == 0).all()

@pytest.mark.parametrize('n,window,halo', [(1, 4, 1), (7, 4, 1), (50, 16, 4), (51, 16, 0), (100, 9, 4), (33, 32, 10)])
def test_halo_chunks_cover_each_token_once(n, window, halo):
    idx, keep = halo_chunks(n, window, halo)
    assert (idx[keep] == torch.arange(n)).all() and idx.min() >= 0 and idx.max() < n
    x = torch.arange(n).float()[:, None]
    assert torch.equal(stitch(x[idx], keep), x)

def test_windows_pad_past_the_end():
    x = torch.arange(10)[:, None].float()
    w, real = take_windows(x, torch.tensor([0, 8]), 4)
    assert w[1, :2, 0].tolist() == [8, 9] and w[1, 2:].abs().sum() == 0 and real[1].tolist() == [True, True, False, False]
    assert window_starts(3, 8, 4).eq(0).all()

"Tests for weightnb.robustness: attacks respect budgets and pixel bounds, corruptions are pixel-space operations."
import pytest, torch
from torch import nn
torch.set_num_threads(1)  # the test machine is shared; one thread avoids oversubscription
from hypothesis import given, settings, strategies as st

from weightnb.core import ConfigError
from weightnb.data import ImageTensors, make_loader, normalize
from weightnb.robustness import (fgsm, ifgsm, adversarial_accuracy, corrupt, CORRUPTIONS, ood_accuracy,
                                 to_pixels)

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)

@pytest.fixture(scope='module')
def setup():
    g = torch.Generator().manual_seed(0)
    pix = torch.rand(48, 3, 12, 12, generator=g); y = torch.randint(0, 4, (48,), generator=g)
    ds = ImageTensors(normalize(pix, MEAN, STD), y, MEAN, STD, name='toy')
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 4)).eval()
    return ds, model

def test_attacks_respect_budget_and_bounds(setup):
    ds, model = setup; lo, hi = ds.pixel_bounds; x, y = ds.x, ds.y
    for xa in (fgsm(model, x, y, 0.05, ds.pixel_bounds), ifgsm(model, x, y, 0.05, 5, bounds=ds.pixel_bounds)):
        p, p0 = to_pixels(xa, ds.pixel_bounds), to_pixels(x, ds.pixel_bounds)
        assert (p >= -1e-5).all() and (p <= 1 + 1e-5).all()                 # valid pixels, per channel
        assert (p - p0).abs().max() <= 0.05 + 1e-5                           # budget in pixel units
        assert (xa >= lo - 1e-5).all() and (xa <= hi + 1e-5).all()
    # FGSM moves every pixel not at a bound by exactly eps (in pixel units)
    p = to_pixels(fgsm(model, x, y, 0.05, ds.pixel_bounds), ds.pixel_bounds); p0 = to_pixels(x, ds.pixel_bounds)
    inner = (p > 1e-4) & (p < 1 - 1e-4)
    assert torch.allclose((p - p0).abs()[inner], torch.full_like(p[inner], 0.05), atol=1e-4)

def test_attacks_increase_loss(setup):
    ds, model = setup; x, y = ds.x, ds.y
    ce = lambda v: nn.functional.cross_entropy(model(v), y).item()
    with torch.no_grad(): l0 = ce(x)
    lf, li = ce(fgsm(model, x, y, 0.03, ds.pixel_bounds)), ce(ifgsm(model, x, y, 0.03, 10, bounds=ds.pixel_bounds))
    assert l0 < lf <= li + 1e-4

def test_adversarial_accuracy_takes_bounds_from_loader(setup):
    ds, model = setup; dl = make_loader(ds, 16)
    r = adversarial_accuracy(model, dl, 'ifgsm', 0.05, steps=3)
    assert r['n'] == 48 and r['adv_acc'] <= r['clean_acc']
    r0 = adversarial_accuracy(model, dl, 'fgsm', 0.)
    assert r0['adv_acc'] == r0['clean_acc']
    with pytest.raises(ConfigError): adversarial_accuracy(model, dl, 'cw')

@settings(max_examples=10, deadline=None)
@given(st.sampled_from(sorted(CORRUPTIONS)), st.integers(1, 5), st.integers(0, 100))
def test_corrupt_stays_in_pixel_range(kind, severity, seed):
    g = torch.Generator().manual_seed(seed); pix = torch.rand(4, 3, 10, 10, generator=g)
    b = ((0 - torch.tensor(MEAN)) / torch.tensor(STD), (1 - torch.tensor(MEAN)) / torch.tensor(STD))
    out = to_pixels(corrupt(normalize(pix, MEAN, STD), kind, severity, b, seed), b)
    assert out.shape == pix.shape and (out >= -1e-5).all() and (out <= 1 + 1e-5).all()
    # the same corruption applied to raw pixels (bounds None) agrees: corrupt works in pixel space
    assert torch.allclose(out, corrupt(pix, kind, severity, None, seed), atol=1e-4)

def test_noise_statistics():
    pix = torch.full((8, 1, 32, 32), 0.5)
    for s, sigma in enumerate(CORRUPTIONS['gaussian_noise'], 1):
        assert abs((corrupt(pix, 'gaussian_noise', s) - 0.5).std().item() - sigma) < 0.01
    lam = CORRUPTIONS['shot_noise'][0]
    assert abs(corrupt(pix, 'shot_noise', 1).var().item() - 0.5 / lam) < 2e-4
    amount = CORRUPTIONS['impulse_noise'][4]
    changed = (corrupt(pix, 'impulse_noise', 5) != 0.5).float().mean().item()
    assert abs(changed - amount) < 0.01

def test_ood_accuracy_table(setup):
    ds, model = setup
    df = ood_accuracy(model, make_loader(ds, 16), kinds=['contrast', 'pixelate'], severities=(1, 3))
    assert df.kind.tolist() == ['contrast', 'contrast', 'pixelate', 'pixelate', 'mean']
    assert abs(df.acc.iloc[-1] - df.acc.iloc[:-1].mean()) < 1e-12
    with pytest.raises(ConfigError, match='fog'): ood_accuracy(model, make_loader(ds, 16), kinds=['fog'])

@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_follows_cuda_device(setup):
    import copy
    ds, model = setup; model = copy.deepcopy(model).cuda(); x, y = ds.x.cuda(), ds.y.cuda()
    assert fgsm(model, x, y, 0.03, ds.pixel_bounds).device.type == 'cuda'
    for kind in CORRUPTIONS: assert corrupt(x, kind, 3, ds.pixel_bounds).device.type == 'cuda'

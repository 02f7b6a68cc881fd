"""Spectral metrics and losses against their definitions on hand-computed cases."""
import math

import numpy as np
import pytest
import torch
from basicsr.losses import build_loss
from basicsr.metrics import calculate_metric
from skimage.metrics import structural_similarity

from glmha_plugin.metrics.spectral_metrics import (
    bandwise_ssim_map,
    calculate_bandwise_psnr,
    calculate_bandwise_ssim,
    calculate_mrae,
    calculate_rmse,
    calculate_sam,
    calculate_spectral_psnr,
)


def cube(value, h=6, w=5, c=4):
    return np.full((h, w, c), value, dtype=np.float32)


def test_mrae():
    gt = cube(0.5)
    gt[0, 0, 0] = 0.25
    pred = gt * 1.2                                  # |pred - gt| / gt = 0.2 everywhere
    assert calculate_mrae(pred, gt) == pytest.approx(0.2)
    pred[0, 0, 0] = 0.5                              # one element off by 100 %
    n = gt.size
    assert calculate_mrae(pred, gt) == pytest.approx((0.2 * (n - 1) + 1.0) / n)
    assert calculate_mrae(pred, gt, crop_border=1) == pytest.approx(0.2)   # the border pixel is cropped
    assert calculate_mrae(cube(0.1), cube(0.0)) == math.inf                 # no clamp, as upstream


def test_rmse():
    gt = cube(0.3)
    pred = gt.copy()
    pred[..., 0] += 0.2                              # a quarter of the elements off by 0.2
    assert calculate_rmse(pred, gt) == pytest.approx(math.sqrt(0.04 / 4))


def test_spectral_psnr_clamps_to_unit_range():
    assert calculate_spectral_psnr(cube(0.6), cube(0.5)) == pytest.approx(20.0)
    # 1.3 -> 1.0 and -0.2 -> 0.0 before the error: 0.1 off everywhere again
    assert calculate_spectral_psnr(cube(1.3), cube(0.9)) == pytest.approx(20.0)
    assert calculate_spectral_psnr(cube(-0.2), cube(0.1)) == pytest.approx(20.0)
    # one MSE over the whole cube (not per band): half the bands exact, half 0.1 off -> MSE 0.005
    pred = cube(0.5)
    pred[..., :2] = 0.6
    assert calculate_spectral_psnr(pred, cube(0.5)) == pytest.approx(10 * math.log10(1 / 0.005))


def test_bandwise_psnr_quantises_and_averages_bands():
    gt = cube(0.5, c=2)                              # round(256 * 0.5) = 128
    pred = gt.copy()
    pred[..., 0] = 129.2 / 256                       # -> 129: one level off
    pred[..., 1] = 130.4 / 256                       # -> 130: two levels off
    expected = (10 * math.log10(255**2 / 1) + 10 * math.log10(255**2 / 4)) / 2
    assert calculate_bandwise_psnr(pred, gt) == pytest.approx(expected)
    # below half a level the quantisation hides the difference in a band -> that band's PSNR is inf
    assert calculate_bandwise_psnr(gt + 0.001, gt) == math.inf


def test_bandwise_ssim_of_constants_in_the_interior():
    """Constant images a, b: away from the zero-padded border SSIM = (2ab + C1) / (a^2 + b^2 + C1)."""
    a, b = 0.6, 0.3
    ssim = bandwise_ssim_map(torch.full((30, 30, 2), a, dtype=torch.float64),
                             torch.full((30, 30, 2), b, dtype=torch.float64))
    c1 = 0.01**2
    torch.testing.assert_close(ssim[:, 5:-5, 5:-5], torch.full((2, 20, 20), (2 * a * b + c1) / (a * a + b * b + c1),
                                                               dtype=torch.float64))
    assert calculate_bandwise_ssim(cube(0.4, 20, 20), cube(0.4, 20, 20)) == pytest.approx(1.0)


def test_bandwise_ssim_matches_skimage_away_from_the_border():
    """skimage's Gaussian SSIM (sigma 1.5, population covariance) averages the same local values over the
    interior; MST's version differs only within 5 px of the border (zero padding)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(24, 26, 3))
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    ours = bandwise_ssim_map(torch.from_numpy(x), torch.from_numpy(y))[:, 5:-5, 5:-5].mean().item()
    ref = structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0,
                                channel_axis=-1)
    assert ours == pytest.approx(ref, rel=1e-6)


def test_sam_angles():
    x = np.zeros((2, 2, 3))
    y = np.zeros((2, 2, 3))
    x[..., 0], y[..., 1] = 1, 1                       # orthogonal spectra everywhere
    assert calculate_sam(x, y) == pytest.approx(90.0)
    y[..., 0] = 1                                     # (1,0,0) vs (1,1,0): 45 degrees
    assert calculate_sam(x, y) == pytest.approx(45.0)
    assert calculate_sam(3 * y, y) == pytest.approx(0.0, abs=1e-6)      # scale-invariant
    z = y.copy()
    z[0, 0] = [1, 0, 0]                               # one pixel at 45 degrees, three at 0
    assert calculate_sam(z, y) == pytest.approx(45.0 / 4)


def test_shapes_must_match():
    with pytest.raises(ValueError, match='shapes differ'):
        calculate_rmse(cube(0.1), cube(0.1, h=5))


@pytest.mark.parametrize('metric,value', [('calculate_mrae', 0.2), ('calculate_rmse', 0.1),
                                          ('calculate_spectral_psnr', 20.0)])
def test_registered_for_basicsr(metric, value):
    """basicsr's calculate_metric (as the validation loop calls it), with the option keys the YAMLs use."""
    got = calculate_metric({'img': cube(0.6), 'img2': cube(0.5)}, {'type': metric, 'crop_border': 1,
                                                                    'better': 'lower'})
    assert got == pytest.approx(value)


def test_losses():
    gt = torch.full((2, 3, 4, 4), 0.5)
    pred = gt * 1.1
    mrae = build_loss({'type': 'MRAELoss', 'loss_weight': 2.0})
    assert mrae(pred, gt).item() == pytest.approx(0.2)
    rmse = build_loss({'type': 'RMSELoss'})
    assert rmse(gt + 0.3, gt).item() == pytest.approx(0.3)
    pred.requires_grad_(True)
    mrae(pred, gt).backward()
    assert torch.isfinite(pred.grad).all()

"""MATLAB-matching PSNR/SSIM (Restormer's evaluation) and the RealBlur protocol.

The difference to basicsr's own Y-channel metrics is MATLAB's rounding of Y
to uint8: it adds about 1/6 (two independent roundings, variance 1/12 each)
to the mean squared Y error, so the MATLAB PSNR is lower by about
10 log10(1 + 1/(6 MSE)) dB: ~0.5 dB at 47 dB, ~0.04 dB at 35 dB, < 0.01 dB
below 25 dB; SSIM moves by less than 0.003.  The test pins that.
"""
import math

import numpy as np
import pytest
from basicsr.metrics import calculate_psnr, calculate_ssim
from basicsr.utils.registry import METRIC_REGISTRY

from glmha_plugin.metrics import (
    calculate_psnr_matlab,
    calculate_ssim_matlab,
    gaussian_ssim_map,
    matlab_y,
    realblur_scores,
    ssim_volume,
)


def photo(name='astronaut', size=(160, 192)):
    import cv2
    from skimage import data
    img = getattr(data, name)()[..., :3]
    return np.ascontiguousarray(cv2.resize(img, size[::-1], interpolation=cv2.INTER_AREA)[..., ::-1])  # BGR


def noisy(img, sigma, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).round().astype(np.uint8)


def test_registered():
    assert METRIC_REGISTRY.get('calculate_psnr_matlab') is calculate_psnr_matlab
    assert METRIC_REGISTRY.get('calculate_ssim_matlab') is calculate_ssim_matlab


def test_matlab_y_of_pure_colours():
    """MATLAB: rgb2ycbcr(uint8([255 0 0])) gives Y 81; green 145; blue 41; white 235; black 16."""
    bgr = np.array([[[0, 0, 255], [0, 255, 0], [255, 0, 0], [255, 255, 255], [0, 0, 0]]], np.uint8)
    assert matlab_y(bgr)[0, :, 0].tolist() == [81, 145, 41, 235, 16]


@pytest.mark.parametrize('sigma', [2, 4, 8, 16])
def test_difference_to_basicsr_y_metrics_is_the_rounding(sigma):
    gt = photo()
    out = noisy(gt, sigma)
    ours_p, ref_p = calculate_psnr_matlab(out, gt, test_y_channel=True), calculate_psnr(out, gt, 0, test_y_channel=True)
    mse = 255.0**2 / 10**(ref_p / 10)
    predicted = -10 * math.log10(1 + 1 / (6 * mse))
    ours_s, ref_s = calculate_ssim_matlab(out, gt, test_y_channel=True), calculate_ssim(out, gt, 0, test_y_channel=True)
    print(f'sigma {sigma:2d}: PSNR basicsr {ref_p:.4f} MATLAB-Y {ours_p:.4f} diff {ours_p - ref_p:+.4f} '
          f'(predicted {predicted:+.4f}); SSIM basicsr {ref_s:.5f} MATLAB-Y {ours_s:.5f} diff {ours_s - ref_s:+.6f}')
    assert abs((ours_p - ref_p) - predicted) < 0.06
    assert abs(ours_s - ref_s) < 0.003


def test_y_metrics_equal_basicsr_on_the_rounded_y():
    gt, out = photo(), noisy(photo(), 5)
    y_gt, y_out = matlab_y(gt), matlab_y(out)
    assert calculate_psnr_matlab(out, gt, test_y_channel=True) == calculate_psnr(y_out, y_gt, 0)
    assert calculate_ssim_matlab(out, gt, test_y_channel=True) == pytest.approx(calculate_ssim(y_out, y_gt, 0),
                                                                                abs=1e-12)


def test_rgb_psnr_is_matlab_psnr():
    gt, out = photo(), noisy(photo(), 6)
    mse = np.mean((gt.astype(np.float64) - out) ** 2)
    assert calculate_psnr_matlab(out, gt) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-10)


def test_gaussian_ssim_map_matches_scikit_image():
    """Same window and formula as skimage's Gaussian SSIM (reflect borders), the RealBlur script's SSIM."""
    from skimage.metrics import structural_similarity
    gt = photo()[..., 1].astype(np.float64)
    out = noisy(photo(), 10)[..., 1].astype(np.float64)
    _, ref = structural_similarity(gt, out, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                   data_range=255, full=True)
    np.testing.assert_allclose(gaussian_ssim_map(gt, out, 255, (0, 1), 'reflect'), ref, atol=1e-10)


def test_ssim_volume_properties():
    gt = photo()
    assert ssim_volume(gt, gt) == pytest.approx(1.0)
    out = noisy(gt, 8)
    gray_gt, gray_out = np.repeat(gt[..., 1:2], 3, 2), np.repeat(out[..., 1:2], 3, 2)
    # identical channels: the channel axis (replicate-padded) does not mix anything
    assert ssim_volume(gray_gt, gray_out) == pytest.approx(ssim_volume(gt[..., 1], out[..., 1]), abs=1e-12)
    # MATLAB's 3-D SSIM is not the per-channel mean basicsr computes
    rgb = calculate_ssim_matlab(out, gt)
    print(f'RGB SSIM: MATLAB-style 3-D {rgb:.5f}, basicsr per-channel {calculate_ssim(out, gt, 0):.5f}')
    assert rgb != pytest.approx(calculate_ssim(out, gt, 0), abs=1e-3)


def test_matlab_metrics_refuse_float_and_tiny_images():
    with pytest.raises(TypeError, match='8-bit'):
        calculate_psnr_matlab(np.zeros((16, 16, 3)), np.zeros((16, 16, 3)))
    with pytest.raises(ValueError, match='at least 11x11'):
        calculate_ssim_matlab(np.zeros((8, 16, 3), np.uint8), np.zeros((8, 16, 3), np.uint8), test_y_channel=True)


def realblur_reference(pred_rgb, gt_rgb):
    """Restormer's evaluate_realblur.py scoring after alignment, with scikit-image (the script's library)."""
    from skimage.metrics import structural_similarity

    from glmha_plugin.metrics.realblur import align
    prd, tar, cr = align(pred_rgb.astype(np.float32) / 255, gt_rgb.astype(np.float32) / 255)
    psnr = 10 * np.log10(1 / (np.sum((tar - prd)**2, dtype=np.float64) / np.sum(cr)))
    _, smap = structural_similarity(tar, prd, channel_axis=2, gaussian_weights=True, use_sample_covariance=False,
                                    data_range=1.0, full=True)
    smap = (smap * cr)[5:-5, 5:-5]
    ssim = np.mean(smap.sum(axis=(0, 1)) / cr[5:-5, 5:-5].sum(axis=(0, 1)))
    return psnr, ssim


def test_realblur_scores_follow_the_script_and_undo_a_shift():
    gt = photo('coffee', (96, 128))[..., ::-1]  # RGB
    shifted = np.roll(gt, (2, 3), axis=(0, 1))
    psnr, ssim = realblur_scores(shifted, gt)
    ref_psnr, ref_ssim = realblur_reference(shifted, gt)
    # skimage works in float32 on float32 images, we in float64: equal to ~1e-6
    assert psnr == pytest.approx(ref_psnr, abs=1e-6) and ssim == pytest.approx(ref_ssim, abs=2e-5)
    plain = calculate_psnr_matlab(shifted[..., ::-1].copy(), gt[..., ::-1].copy())
    print(f'shifted by (2, 3) px: unaligned PSNR {plain:.2f} dB, aligned (RealBlur protocol) {psnr:.2f} dB')
    assert psnr > plain + 10

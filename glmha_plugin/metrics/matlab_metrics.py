"""PSNR/SSIM as Restormer's MATLAB evaluation scripts compute them, for basicsr's ``METRIC_REGISTRY``.

Restormer reports deraining scores from ``Deraining/evaluate_PSNR_SSIM.m``
and motion-deblurring scores (GoPro, HIDE) from
``Motion_Deblurring/evaluate_gopro_hide.m``, both on the saved 8-bit PNGs:

* ``test_y_channel: true`` (deraining): MATLAB's ``rgb2ycbcr`` on uint8
  returns a *rounded* uint8 Y = round(16 + (65.481 R + 128.553 G + 24.966 B)
  / 255); PSNR over Y with peak 255; SSIM is Wang's ``SSIM_index`` (11x11
  Gaussian, sigma 1.5, K = (0.01, 0.03), L = 255, 'valid' filtering).
  basicsr's ``calculate_psnr/ssim(test_y_channel=True)`` use the same formula
  and the same SSIM but an *unrounded* float Y, the only difference (pinned
  in ``tests/metrics/test_metrics.py``).
* ``test_y_channel: false`` (GoPro/HIDE): MATLAB's built-in ``psnr`` on the
  RGB images (identical to basicsr's RGB PSNR) and built-in ``ssim``, which
  treats an H x W x 3 array as a 3-D volume: an 11x11x11 Gaussian (sigma 1.5)
  with replicate padding (also across the 3 channels) and the mean of the
  full-size map.  This SSIM is emulated here from MATLAB's documented
  behaviour; GNU Octave has no ``ssim`` to compare it with.

Both scripts were run under GNU Octave on generated images
(``tests/fixtures/restormer_matlab_octave.json``): deraining PSNR and
SSIM and GoPro/HIDE PSNR agree to 1.5e-5 dB / 6e-7 SSIM (a Y exactly
half-way between two integers rounds either way in floating point).

Inputs follow basicsr's metric convention: uint8 images (what ``tensor2img``
gives), BGR channel order, ``HWC`` or ``CHW``.  :func:`im2uint8` and
:func:`ssim_index` (Wang's SSIM over channels) also serve MST's CASSI script
(:mod:`.spectral_metrics`).
"""
import cv2
import numpy as np
from basicsr.metrics.metric_util import reorder_image
from basicsr.metrics.psnr_ssim import calculate_psnr
from basicsr.utils.registry import METRIC_REGISTRY
from scipy.ndimage import correlate1d

# MATLAB rgb2ycbcr, Y row (ITU-R BT.601, studio range), for R, G, B in [0, 1].
Y_COEFFS_RGB = (65.481, 128.553, 24.966)
Y_OFFSET = 16.0
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # ceil(3 * sigma): 11 taps
MIN_SSIM_SIDE = 2 * SSIM_RADIUS + 1


def _as_uint8_hwc(img: np.ndarray, input_order: str, crop_border: int) -> np.ndarray:
    if img.dtype != np.uint8:
        raise TypeError(f'MATLAB-matching metrics score 8-bit images (as the MATLAB scripts read the saved PNGs); '
                        f'got {img.dtype}: convert with basicsr.utils.tensor2img or round to np.uint8 first')
    img = reorder_image(img, input_order=input_order)
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border, ...]
    return img


def _prepare(img: np.ndarray, img2: np.ndarray, input_order: str, crop_border: int, test_y_channel: bool):
    """Both images as H x W x C uint8: Y (rounded, C = 1) when ``test_y_channel``, else as given (BGR)."""
    img, img2 = _as_uint8_hwc(img, input_order, crop_border), _as_uint8_hwc(img2, input_order, crop_border)
    if img.shape != img2.shape:
        raise ValueError(f'image shapes differ: {img.shape} vs {img2.shape}')
    if test_y_channel and img.shape[2] == 3:
        img, img2 = matlab_y(img), matlab_y(img2)
    return img, img2


def matlab_y(img_bgr: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2ycbcr(uint8)`` Y channel of an H x W x 3 BGR uint8 image: H x W x 1 uint8 (rounded)."""
    if img_bgr.dtype != np.uint8 or img_bgr.ndim != 3 or img_bgr.shape[2] != 3:
        raise ValueError(f'matlab_y expects an H x W x 3 uint8 BGR image, got {img_bgr.dtype} {img_bgr.shape}')
    b, g, r = (img_bgr[..., i].astype(np.float64) for i in range(3))
    y = Y_OFFSET + (Y_COEFFS_RGB[0] * r + Y_COEFFS_RGB[1] * g + Y_COEFFS_RGB[2] * b) / 255.0
    return np.clip(np.floor(y + 0.5), 0, 255).astype(np.uint8)[..., None]  # round half away from zero (y > 0)


def im2uint8(img) -> np.ndarray:
    """MATLAB's ``im2uint8`` of a floating-point array: 255 x, saturated to [0, 255], rounded half away from zero.

    Computed in float64 (MATLAB scripts call ``double`` first).  NaN is refused: MATLAB turns it into 0 without
    a word, which would score a broken output as black.
    """
    x = np.asarray(img, dtype=np.float64)
    if np.isnan(x).any():
        raise ValueError(f'{int(np.isnan(x).sum())} NaN values in the image: MATLAB\'s im2uint8 would score them '
                         f'as 0; find where the NaNs come from (the network output?) before scoring')
    v = np.clip(x, 0.0, 1.0) * 255.0
    floor = np.floor(v)
    return (floor + (v - floor >= 0.5)).astype(np.uint8)  # v - floor is exact: no tie lost to rounding


CV_BORDERS = {'constant': cv2.BORDER_CONSTANT, 'nearest': cv2.BORDER_REPLICATE, 'reflect': cv2.BORDER_REFLECT}
CV_MAX_CHANNELS = 512  # OpenCV's CV_CN_MAX


def _gaussian_taps() -> np.ndarray:
    x = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
    taps = np.exp(-x * x / (2 * SSIM_SIGMA**2))
    return taps / taps.sum()


def gaussian_ssim_map(img: np.ndarray, img2: np.ndarray, data_range: float, axes, mode: str) -> np.ndarray:
    """SSIM map with Gaussian weighting (sigma 1.5, 11 taps) along ``axes``, borders per ``mode``.

    ``mode`` is scipy.ndimage's: ``'nearest'`` (replicate, MATLAB's ``ssim``),
    ``'reflect'`` (edge repeated, scikit-image's ``structural_similarity``) or
    ``'constant'`` (zeros, MST's band-wise SSIM).
    K = (0.01, 0.03), population (co)variances.  The map has the input's shape.
    """
    if img.shape != img2.shape:
        raise ValueError(f'image shapes differ: {img.shape} vs {img2.shape}')
    a, b = img.astype(np.float64), img2.astype(np.float64)
    taps = _gaussian_taps()
    # the rows and columns of an H x W (x C) image: OpenCV's separable filter, all channels in one call (several
    # times faster than scipy's, same sums to 1e-13 of the values); scipy for any other axes
    planar = tuple(axes) == (0, 1) and a.ndim in (2, 3) and (a.ndim == 2 or a.shape[2] <= CV_MAX_CHANNELS)

    def blur(x):
        if planar:
            return cv2.sepFilter2D(x, -1, taps, taps, borderType=CV_BORDERS[mode]).reshape(x.shape)
        for axis in axes:
            x = correlate1d(x, taps, axis=axis, mode=mode)
        return x

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * data_range)**2, (0.03 * data_range)**2
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def ssim_index(img: np.ndarray, img2: np.ndarray) -> float:
    """Wang's ``SSIM_index`` (11x11 Gaussian, sigma 1.5, K = (0.01, 0.03), L = 255, 'valid' windows) of two
    H x W or H x W x C arrays of 8-bit values, averaged over channels (MST's ``cal_ssim``).

    The values of basicsr's ``calculate_ssim`` (per channel, 2-D ``cv2.filter2D``), here from the separable
    :func:`gaussian_ssim_map` cropped to the 'valid' part, all channels at once; with MATLAB's size limit.
    """
    if img.shape != img2.shape:
        raise ValueError(f'image shapes differ: {img.shape} vs {img2.shape}')
    if min(img.shape[:2]) < MIN_SSIM_SIDE:
        raise ValueError(f'SSIM_index needs images of at least {MIN_SSIM_SIDE}x{MIN_SSIM_SIDE} '
                         f'(MATLAB returns -Inf), got {img.shape[0]}x{img.shape[1]}')
    r = SSIM_RADIUS
    valid = gaussian_ssim_map(img, img2, 255.0, (0, 1), 'constant')[r:-r, r:-r]
    return float(valid.mean())  # every channel has the same number of windows: the mean of the channel means


def ssim_volume(img: np.ndarray, img2: np.ndarray, data_range: float = 255.0) -> float:
    """MATLAB built-in ``ssim`` (default options) of two same-shape arrays, any number of dimensions.

    Gaussian weighting (sigma 1.5, 11 taps per axis, separable, so the 3-D
    window of an H x W x 3 image is 11x11x11) with replicate padding on every
    axis; the score is the mean of the full-size map.
    """
    return float(gaussian_ssim_map(img, img2, data_range, range(img.ndim), 'nearest').mean())


@METRIC_REGISTRY.register()
def calculate_psnr_matlab(img: np.ndarray, img2: np.ndarray, crop_border: int = 0, input_order: str = 'HWC',
                          test_y_channel: bool = False, **kwargs) -> float:
    """PSNR as Restormer's MATLAB scripts: rounded uint8 Y (``test_y_channel``) or all RGB values."""
    img, img2 = _prepare(img, img2, input_order, crop_border, test_y_channel)
    return calculate_psnr(img, img2, crop_border=0)


@METRIC_REGISTRY.register()
def calculate_ssim_matlab(img: np.ndarray, img2: np.ndarray, crop_border: int = 0, input_order: str = 'HWC',
                          test_y_channel: bool = False, **kwargs) -> float:
    """SSIM as Restormer's MATLAB scripts: Wang's SSIM_index on rounded Y, or built-in ``ssim`` on RGB."""
    img, img2 = _prepare(img, img2, input_order, crop_border, test_y_channel)
    if img.shape[2] == 1:  # evaluate_PSNR_SSIM.m: SSIM_index (Wang), 'valid' 11x11 Gaussian window
        return ssim_index(img, img2)
    return ssim_volume(img[..., ::-1], img2[..., ::-1])  # RGB order, as MATLAB reads the PNG

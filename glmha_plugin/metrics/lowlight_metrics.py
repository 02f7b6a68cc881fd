"""PSNR/SSIM as Retinexformer's ``Enhancement/test_from_dataset.py`` computes them, for basicsr's ``METRIC_REGISTRY``.

The script scores every RGB test image, in float32, as

* output clamped to [0, 1] (not rounded); with ``--GT_mean`` it is first
  rescaled so that its mean grey level equals the target's and clipped to
  [0, 1] again (the KinD / LLFlow protocol). The grey level is
  ``cv2.COLOR_BGR2GRAY`` applied to the script's RGB arrays, i.e.
  ``0.114 R + 0.587 G + 0.299 B``, reproduced here;
* PSNR ``10 log10(1 / MSE)`` over all values (100 for identical images);
* SSIM on ``skimage.img_as_ubyte`` of both images (``rint(255 x)``): the
  MATLAB-style SSIM (11 x 11 Gaussian, sigma 1.5, 'valid') per channel,
  averaged over the three channels; that is basicsr's ``calculate_ssim``.

Inputs follow basicsr's metric convention (what the validation gives the
metrics): H x W x 3 (or ``CHW``) in [0, 255], BGR channel order (basicsr's
``tensor2img``; ``val.rgb2bgr: false`` gives RGB, which only swaps the grey
weights of R and B), either uint8 (``val.use_image: true``: the saved 8-bit
image, so PSNR sees the rounding) or float (``use_image: false``: the
network output as is, which is what the script scores).
"""
import numpy as np
from basicsr.metrics.metric_util import reorder_image
from basicsr.metrics.psnr_ssim import calculate_ssim
from basicsr.utils.registry import METRIC_REGISTRY

# cv2.COLOR_BGR2GRAY weights (0.299 ch2 + 0.587 ch1 + 0.114 ch0) as Retinexformer applies them to RGB arrays,
# written for basicsr's BGR arrays: channel 0 (B) 0.299, channel 1 (G) 0.587, channel 2 (R) 0.114.
GREY_WEIGHTS_BGR = np.array([0.299, 0.587, 0.114], dtype=np.float32)
IDENTICAL_PSNR = 100.0   # what the script's PSNR returns for MSE 0


def _as_unit_float32(img: np.ndarray, input_order: str, crop_border: int) -> np.ndarray:
    img = reorder_image(np.asarray(img), input_order=input_order)
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border, ...]
    return np.clip(img.astype(np.float32) / np.float32(255.0), 0, 1)


def gt_mean_rescale(restored: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``--GT_mean``: ``clip(restored * mean_grey(target) / mean_grey(restored), 0, 1)``, H x W x 3 BGR in [0, 1]."""
    grey_r = (restored * GREY_WEIGHTS_BGR).sum(-1, dtype=np.float32).mean(dtype=np.float32)
    grey_t = (target * GREY_WEIGHTS_BGR).sum(-1, dtype=np.float32).mean(dtype=np.float32)
    return np.clip(restored * (grey_t / grey_r), 0, 1)


def _prepare(img, img2, crop_border, input_order, gt_mean):
    restored, target = _as_unit_float32(img, input_order, crop_border), _as_unit_float32(img2, input_order, crop_border)
    if restored.shape != target.shape:
        raise ValueError(f'image shapes differ: {restored.shape} vs {target.shape}')
    if gt_mean:
        if restored.ndim != 3 or restored.shape[2] != 3:
            raise ValueError(f'gt_mean needs H x W x 3 colour images, got {restored.shape}')
        restored = gt_mean_rescale(restored, target)
    return restored, target


@METRIC_REGISTRY.register()
def calculate_psnr_lowlight(img: np.ndarray, img2: np.ndarray, crop_border: int = 0, input_order: str = 'HWC',
                            gt_mean: bool = False, **kwargs) -> float:
    """PSNR of Retinexformer's test script (module docstring); ``gt_mean`` is its ``--GT_mean``."""
    restored, target = _prepare(img, img2, crop_border, input_order, gt_mean)
    mse = float(np.mean((target - restored) ** 2))
    return IDENTICAL_PSNR if mse == 0 else float(10 * np.log10(1 / mse))


@METRIC_REGISTRY.register()
def calculate_ssim_lowlight(img: np.ndarray, img2: np.ndarray, crop_border: int = 0, input_order: str = 'HWC',
                            gt_mean: bool = False, **kwargs) -> float:
    """SSIM of Retinexformer's test script (module docstring); ``gt_mean`` is its ``--GT_mean``."""
    from skimage import img_as_ubyte
    restored, target = _prepare(img, img2, crop_border, input_order, gt_mean)
    return float(calculate_ssim(img_as_ubyte(target), img_as_ubyte(restored), crop_border=0))

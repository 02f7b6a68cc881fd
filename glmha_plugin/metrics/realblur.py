"""RealBlur scores as Restormer's ``Motion_Deblurring/evaluate_realblur.py`` computes them.

RealBlur's ground truth is not pixel-aligned with the blurred input, so the
restored image is first intensity-matched and aligned to the target by a
homography (OpenCV's ECC, 100 iterations, Gaussian pre-filter 5); PSNR and
SSIM are then taken only where the warped image has content (mask ``cr``):

* PSNR: ``10 log10(1 / (sum((gt - pred)^2) / sum(mask)))`` on [0, 1] RGB;
* SSIM: scikit-image's Gaussian SSIM map per channel (sigma 1.5, data range
  1, reflect borders), multiplied by the mask, 5-pixel border cropped,
  averaged over the mask per channel, then over channels.
"""
from typing import Tuple

import cv2
import numpy as np

from .matlab_metrics import SSIM_RADIUS, gaussian_ssim_map

ECC_ITERATIONS = 100
ECC_GAUSS_FILTER = 5


def align(pred: np.ndarray, gt: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Align H x W x 3 RGB float32 ``pred`` to ``gt`` (both [0, 1]); returns (pred, gt, mask), masked."""
    scaled = (np.sum(gt * pred) / np.sum(pred * pred)) * pred  # intensity matching
    warp = np.eye(3, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ECC_ITERATIONS, 0)
    _, warp = cv2.findTransformECC(cv2.cvtColor(gt, cv2.COLOR_RGB2GRAY), cv2.cvtColor(scaled, cv2.COLOR_RGB2GRAY),
                                   warp, cv2.MOTION_HOMOGRAPHY, criteria, None, ECC_GAUSS_FILTER)
    size = (gt.shape[1], gt.shape[0])
    warped = cv2.warpPerspective(scaled, warp, size, flags=cv2.INTER_CUBIC + cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_REFLECT)
    mask = cv2.warpPerspective(np.ones_like(scaled, dtype=np.float32), warp, size,
                               flags=cv2.INTER_NEAREST + cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=0)
    return warped * mask, gt * mask, mask


def realblur_scores(pred_rgb_u8: np.ndarray, gt_rgb_u8: np.ndarray) -> Tuple[float, float]:
    """(PSNR, SSIM) of two H x W x 3 uint8 RGB images, aligned as RealBlur's protocol."""
    pred, gt, mask = align(pred_rgb_u8.astype(np.float32) / 255.0, gt_rgb_u8.astype(np.float32) / 255.0)
    err = np.sum((gt - pred)**2, dtype=np.float64) / np.sum(mask)
    psnr = float(10 * np.log10(1.0 / err))
    ssim_map = np.stack([gaussian_ssim_map(gt[..., c], pred[..., c], 1.0, (0, 1), 'reflect')
                         for c in range(gt.shape[2])], axis=-1) * mask
    r = SSIM_RADIUS
    inner, inner_mask = ssim_map[r:-r, r:-r], mask[r:-r, r:-r]
    ssim = float(np.mean(inner.sum(axis=(0, 1)) / inner_mask.sum(axis=(0, 1))))
    return psnr, ssim

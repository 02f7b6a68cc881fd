"""Metrics of the spectral-reconstruction toolboxes, registered in BasicSR's ``METRIC_REGISTRY``.

Every ``calculate_*`` takes ``img`` (the reconstruction) and ``img2`` (the
ground truth) as H x W x C arrays (numpy or torch; basicsr's order), crops
``crop_border`` pixels from each side and returns a float.  Computation is
in float64.

* MST++ (NTIRE 2022, ``train_code/utils.py``): :func:`calculate_mrae`
  (mean |x - y| / y, no clamp: a zero in the ground truth gives inf, as
  upstream), :func:`calculate_rmse` (sqrt of the mean squared error) and
  :func:`calculate_spectral_psnr` (both cubes clamped to [0, 1], one MSE over
  the whole cube, 10 log10(1 / MSE); upstream scales by its data_range 255
  on both sides, which cancels).  MST++ validates on the centre crop
  (``crop_border: 128``).
* MST (CASSI, ``simulation/train_code/utils.py``):
  :func:`calculate_bandwise_psnr` (values quantised as round(256 x),
  PSNR against a peak of 255 per band, averaged over bands) and
  :func:`calculate_bandwise_ssim` (SSIM per band with an 11 x 11 Gaussian
  window, sigma 1.5, zero padding, C1 = 0.01^2, C2 = 0.03^2, averaged over
  pixels and bands).
* MST (CASSI, ``simulation/test_code/Quality_Metrics/Cal_quality_assessment.m``,
  the MATLAB script behind the CASSI tables of MST's and the GLMHA paper):
  :func:`calculate_cassi_psnr_matlab` and :func:`calculate_cassi_ssim_matlab`.
  The prediction is clipped to [0, 1], both cubes are quantised with
  ``im2uint8`` (255 x, rounded half away from zero; the Python metrics above
  use round(256 x)); PSNR per band with peak 255 (``csnr``), averaged over
  bands; SSIM is Wang's ``SSIM_index`` per band over 'valid' 11 x 11 windows
  on the 8-bit values (``cal_ssim``), averaged over bands.
  ``glmha evaluate --task CASSI --mat .../Test_result.mat`` scores a whole
  file with them and prints what the script prints.  It leaves out the
  script's bug: inside its loop the script stores the six metrics of scene i
  in ``pred(1:6, i)``; with two subscripts MATLAB indexes the N x H x W x C
  array as N x (H W C), so this writes pixel (row i, column 1, band 1) of
  scenes 1 to 6, and scene k (2 to 6) is then scored with rows 1 to k - 1 of
  that pixel column replaced by its k-th metric (RMSE, ERGAS, SAM, UIQI, SSIM)
  of the earlier scenes, clipped to [0, 1].  Measured under GNU Octave on the
  script itself: -0.003 dB on the mean PSNR at 34 dB, SSIM unchanged to 1e-7
  (docs/spectral.md).
* :func:`calculate_sam`: mean spectral angle in degrees, with MATLAB's eps
  as in MST's ``SpectAngMapper.m`` (which is run on 8-bit-quantised cubes;
  here on the values given).
"""
from typing import Tuple, Union

import numpy as np
import torch
from basicsr.utils.registry import METRIC_REGISTRY

from .matlab_metrics import gaussian_ssim_map, im2uint8, ssim_index

Image = Union[np.ndarray, torch.Tensor]
MATLAB_EPS = float(np.finfo(np.float64).eps)


def _float64(a: Image) -> torch.Tensor:
    t = a if isinstance(a, torch.Tensor) else torch.from_numpy(np.asarray(a))
    return t.detach().to('cpu', torch.float64)


def _pair(img: Image, img2: Image, crop_border: int):
    """Both images as float64 H x W x C tensors, cropped."""
    x, y = _float64(img), _float64(img2)
    if x.shape != y.shape:
        raise ValueError(f'image shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}')
    if x.dim() == 2:
        x, y = x[..., None], y[..., None]
    if crop_border:
        x, y = (t[crop_border:-crop_border, crop_border:-crop_border] for t in (x, y))
        if x.numel() == 0:
            raise ValueError(f'crop_border {crop_border} leaves nothing of a {tuple(img.shape)} image')
    return x, y


def mrae(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean relative absolute error, mean(|pred - gt| / gt) (MST++'s Loss_MRAE)."""
    return (torch.abs(pred - gt) / gt).mean()


def rmse(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Root mean squared error over all elements (MST++'s Loss_RMSE, MST's training loss)."""
    return torch.sqrt(torch.mean((pred - gt)**2))


@METRIC_REGISTRY.register()
def calculate_mrae(img: Image, img2: Image, crop_border: int = 0, **kwargs) -> float:
    """MST++'s MRAE of ``img`` against the ground truth ``img2`` (lower is better)."""
    x, y = _pair(img, img2, crop_border)
    return mrae(x, y).item()


@METRIC_REGISTRY.register()
def calculate_rmse(img: Image, img2: Image, crop_border: int = 0, **kwargs) -> float:
    """MST++'s RMSE (lower is better)."""
    x, y = _pair(img, img2, crop_border)
    return rmse(x, y).item()


@METRIC_REGISTRY.register()
def calculate_spectral_psnr(img: Image, img2: Image, crop_border: int = 0, **kwargs) -> float:
    """MST++'s PSNR: both clamped to [0, 1], one MSE over the cube, 10 log10(1 / MSE)."""
    x, y = _pair(img, img2, crop_border)
    mse = torch.mean((x.clamp(0, 1) - y.clamp(0, 1))**2)
    return (10 * torch.log10(1 / mse)).item()


@METRIC_REGISTRY.register()
def calculate_bandwise_psnr(img: Image, img2: Image, crop_border: int = 0, **kwargs) -> float:
    """MST's PSNR: per band on round(256 x) values with peak 255, averaged over bands."""
    x, y = _pair(img, img2, crop_border)
    return _psnr_per_band(torch.round(x * 256), torch.round(y * 256))


def _psnr_per_band(x: torch.Tensor, y: torch.Tensor) -> float:
    """PSNR of each band of H x W x C quantised values against a peak of 255, averaged over bands."""
    mse = torch.mean((x.double() - y.double())**2, dim=(0, 1))
    return torch.mean(10 * torch.log10(255.0**2 / mse)).item()


def bandwise_ssim_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MST's local SSIM values of H x W x C images: C x H x W (zero padding at the borders).

    The Gaussian-weighted SSIM map of :func:`~glmha_plugin.metrics.matlab_metrics.gaussian_ssim_map`
    (11 taps, sigma 1.5, K = (0.01, 0.03)) per band, data range 1, borders zero-padded as MST's
    ``F.conv2d(..., padding=5)``.
    """
    local = gaussian_ssim_map(x.numpy(), y.numpy(), 1.0, (0, 1), 'constant')
    return torch.from_numpy(local).permute(2, 0, 1)


@METRIC_REGISTRY.register()
def calculate_bandwise_ssim(img: Image, img2: Image, crop_border: int = 0, **kwargs) -> float:
    """MST's SSIM: Gaussian 11 x 11 (sigma 1.5) per band, zero padding, averaged over pixels and bands."""
    return bandwise_ssim_map(*_pair(img, img2, crop_border)).mean().item()


def cassi_8bit(img: Image, img2: Image, crop_border: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Prediction and truth (H x W x C) as ``Cal_quality_assessment.m`` scores them: ``im2uint8`` of each,
    the prediction clipped to [0, 1] first (``im2uint8`` saturates the truth the same way)."""
    x, y = _pair(img, img2, crop_border)
    return im2uint8(x.numpy()), im2uint8(y.numpy())


@METRIC_REGISTRY.register()
def calculate_cassi_psnr_matlab(img: Image, img2: Image, crop_border: int = 0, **kwargs) -> float:
    """PSNR as MST's ``Cal_quality_assessment.m``: per band on ``im2uint8`` values (peak 255), averaged."""
    x, y = cassi_8bit(img, img2, crop_border)
    return _psnr_per_band(torch.from_numpy(x), torch.from_numpy(y))


@METRIC_REGISTRY.register()
def calculate_cassi_ssim_matlab(img: Image, img2: Image, crop_border: int = 0, **kwargs) -> float:
    """SSIM as MST's ``Cal_quality_assessment.m``: Wang's SSIM_index ('valid' windows) per band on ``im2uint8``
    values, averaged over bands."""
    return ssim_index(*cassi_8bit(img, img2, crop_border))


def cassi_matlab_scores(pred: Image, truth: Image) -> Tuple[float, float]:
    """(PSNR, SSIM) of one H x W x C scene as ``Cal_quality_assessment.m``, quantising once for both."""
    x, y = cassi_8bit(pred, truth)
    return _psnr_per_band(torch.from_numpy(x), torch.from_numpy(y)), ssim_index(x, y)


@METRIC_REGISTRY.register()
def calculate_sam(img: Image, img2: Image, crop_border: int = 0, **kwargs) -> float:
    """Mean spectral angle (degrees) between the spectra of ``img`` and ``img2`` (lower is better)."""
    x, y = _pair(img, img2, crop_border)
    cos = (torch.sum(x * y, dim=-1) + MATLAB_EPS) / (torch.linalg.norm(x, dim=-1) + MATLAB_EPS) / (
        torch.linalg.norm(y, dim=-1) + MATLAB_EPS)
    return torch.rad2deg(torch.acos(cos.clamp(-1, 1))).mean().item()


_MST_PLUS_PLUS = "MST++'s evaluation (train_code/utils.py, NTIRE 2022)"
_MST_PYTHON = "MST's Python metrics (simulation/test_code/utils.py: round(256 x), zero-padded SSIM)"
_MST_MATLAB = ("MST's MATLAB script Quality_Metrics/Cal_quality_assessment.m (im2uint8, 'valid' SSIM): the protocol "
               "of the CASSI tables of MST's and the GLMHA paper")
PROTOCOLS = {
    'calculate_mrae': _MST_PLUS_PLUS, 'calculate_rmse': _MST_PLUS_PLUS, 'calculate_spectral_psnr': _MST_PLUS_PLUS,
    'calculate_bandwise_psnr': _MST_PYTHON, 'calculate_bandwise_ssim': _MST_PYTHON,
    'calculate_cassi_psnr_matlab': _MST_MATLAB, 'calculate_cassi_ssim_matlab': _MST_MATLAB,
    'calculate_sam': 'mean spectral angle in degrees, on the float cubes',
}
"""The evaluation each spectral metric follows, by metric type; the validation log names it."""

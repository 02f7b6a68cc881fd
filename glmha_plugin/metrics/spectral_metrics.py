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
* :func:`calculate_sam`: mean spectral angle in degrees, with MATLAB's eps
  as in MST's ``SpectAngMapper.m`` (which is run on 8-bit-quantised cubes;
  here on the values given).
"""
from typing import Union

import numpy as np
import torch
from basicsr.utils.registry import METRIC_REGISTRY

from .matlab_metrics import gaussian_ssim_map

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
    mse = torch.mean((torch.round(x * 256) - torch.round(y * 256))**2, dim=(0, 1))
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


@METRIC_REGISTRY.register()
def calculate_sam(img: Image, img2: Image, crop_border: int = 0, **kwargs) -> float:
    """Mean spectral angle (degrees) between the spectra of ``img`` and ``img2`` (lower is better)."""
    x, y = _pair(img, img2, crop_border)
    cos = (torch.sum(x * y, dim=-1) + MATLAB_EPS) / (torch.linalg.norm(x, dim=-1) + MATLAB_EPS) / (
        torch.linalg.norm(y, dim=-1) + MATLAB_EPS)
    return torch.rad2deg(torch.acos(cos.clamp(-1, 1))).mean().item()

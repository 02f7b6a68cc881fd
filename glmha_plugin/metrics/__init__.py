"""Metrics registered in BasicSR's ``METRIC_REGISTRY`` on import (Restormer's MATLAB evaluation, Retinexformer's
low-light evaluation, spectral)."""
from .lowlight_metrics import calculate_psnr_lowlight, calculate_ssim_lowlight, gt_mean_rescale
from .matlab_metrics import (
                             calculate_psnr_matlab,
                             calculate_ssim_matlab,
                             gaussian_ssim_map,
                             im2uint8,
                             matlab_y,
                             ssim_index,
                             ssim_volume,
)
from .realblur import realblur_scores
from .spectral_metrics import (
                             calculate_bandwise_psnr,
                             calculate_bandwise_ssim,
                             calculate_cassi_psnr_matlab,
                             calculate_cassi_ssim_matlab,
                             calculate_mrae,
                             calculate_rmse,
                             calculate_sam,
                             calculate_spectral_psnr,
                             cassi_matlab_scores,
)

__all__ = ['calculate_psnr_matlab', 'calculate_ssim_matlab', 'gaussian_ssim_map', 'im2uint8', 'matlab_y', 'ssim_index',
           'ssim_volume', 'realblur_scores', 'calculate_psnr_lowlight', 'calculate_ssim_lowlight', 'gt_mean_rescale',
           'calculate_mrae', 'calculate_rmse', 'calculate_spectral_psnr', 'calculate_bandwise_psnr',
           'calculate_bandwise_ssim', 'calculate_sam', 'calculate_cassi_psnr_matlab', 'calculate_cassi_ssim_matlab',
           'cassi_matlab_scores']

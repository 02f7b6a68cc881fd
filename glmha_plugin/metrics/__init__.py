"""Metrics registered in BasicSR's ``METRIC_REGISTRY`` on import."""
from .spectral_metrics import (calculate_bandwise_psnr, calculate_bandwise_ssim, calculate_mrae, calculate_rmse,
                               calculate_sam, calculate_spectral_psnr)

__all__ = ['calculate_mrae', 'calculate_rmse', 'calculate_spectral_psnr', 'calculate_bandwise_psnr',
           'calculate_bandwise_ssim', 'calculate_sam']

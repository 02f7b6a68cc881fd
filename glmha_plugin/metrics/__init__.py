"""Metrics; importing registers ``calculate_psnr_matlab`` / ``calculate_ssim_matlab`` in ``METRIC_REGISTRY``."""
from .matlab_metrics import (calculate_psnr_matlab, calculate_ssim_matlab, gaussian_ssim_map, matlab_y,
                             ssim_volume)
from .realblur import realblur_scores

__all__ = ['calculate_psnr_matlab', 'calculate_ssim_matlab', 'gaussian_ssim_map', 'matlab_y', 'ssim_volume',
           'realblur_scores']

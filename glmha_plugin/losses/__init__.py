"""Losses registered in BasicSR's ``LOSS_REGISTRY`` on import."""
from .spectral_losses import MRAELoss, RMSELoss

__all__ = ['MRAELoss', 'RMSELoss']

"""Architectures registered in BasicSR's ``ARCH_REGISTRY`` on import."""
from .restormer_arch import STAGES as RESTORMER_STAGES
from .restormer_arch import GLMHARestormer, Restormer

__all__ = ['Restormer', 'GLMHARestormer', 'RESTORMER_STAGES']

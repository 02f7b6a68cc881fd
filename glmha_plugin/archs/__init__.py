"""Architectures registered in BasicSR's ``ARCH_REGISTRY`` on import."""
from .mst_arch import GLMHAMST, MST
from .mst_plus_plus_arch import GLMHAMSTPlusPlus, MST_Plus_Plus
from .restormer_arch import STAGES as RESTORMER_STAGES
from .restormer_arch import GLMHARestormer, Restormer
from .retinexformer_arch import GLMHARetinexFormer, RetinexFormer
from .swap_arch import GLMHASwap

__all__ = ['Restormer', 'GLMHARestormer', 'RESTORMER_STAGES']
__all__ += ['MST', 'GLMHAMST', 'MST_Plus_Plus', 'GLMHAMSTPlusPlus', 'RetinexFormer', 'GLMHARetinexFormer', 'GLMHASwap']

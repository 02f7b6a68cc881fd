"""Architectures registered in BasicSR's ``ARCH_REGISTRY`` on import."""
from .restormer_arch import STAGES as RESTORMER_STAGES
from .restormer_arch import GLMHARestormer, Restormer
from .mst_arch import MST, GLMHAMST  # noqa: E402,I001
from .mst_plus_plus_arch import MST_Plus_Plus, GLMHAMSTPlusPlus  # noqa: E402
from .retinexformer_arch import RetinexFormer, GLMHARetinexFormer  # noqa: E402
from .swap_arch import GLMHASwap  # noqa: E402

__all__ = ['Restormer', 'GLMHARestormer', 'RESTORMER_STAGES']
__all__ += ['MST', 'GLMHAMST', 'MST_Plus_Plus', 'GLMHAMSTPlusPlus', 'RetinexFormer', 'GLMHARetinexFormer', 'GLMHASwap']

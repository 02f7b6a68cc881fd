"""Every registered architecture in a tiny configuration, with an input: ``ARCHS[name] = (build, make_input)``."""
import torch

from glmha_plugin.archs import (
                                GLMHAMST,
                                MST,
                                GLMHAMSTPlusPlus,
                                GLMHARestormer,
                                GLMHARetinexFormer,
                                GLMHASwap,
                                MST_Plus_Plus,
                                Restormer,
                                RetinexFormer,
)

from helpers.common import TINY_MST, TINY_RETINEX
from helpers.common import TINY_RESTORMER as TINY

# every registered architecture: name -> (tiny builder, input)
ARCHS = {
    'Restormer': (lambda: Restormer(**TINY), lambda: torch.rand(1, 3, 12, 20)),
    'GLMHARestormer': (lambda: GLMHARestormer(**TINY), lambda: torch.rand(1, 3, 12, 20)),
    'MST': (lambda: MST(**TINY_MST), lambda: torch.rand(1, 28, 16, 12)),
    'GLMHAMST': (lambda: GLMHAMST(**TINY_MST), lambda: torch.rand(1, 28, 16, 12)),
    'MST_Plus_Plus': (lambda: MST_Plus_Plus(stage=1), lambda: torch.rand(1, 3, 12, 20)),
    'GLMHAMSTPlusPlus': (lambda: GLMHAMSTPlusPlus(stage=1), lambda: torch.rand(1, 3, 12, 20)),
    'RetinexFormer': (lambda: RetinexFormer(**TINY_RETINEX), lambda: torch.rand(1, 3, 12, 20)),
    'GLMHARetinexFormer': (lambda: GLMHARetinexFormer(**TINY_RETINEX), lambda: torch.rand(1, 3, 12, 20)),
    'GLMHASwap': (lambda: GLMHASwap(dict(type='Restormer', **TINY)), lambda: torch.rand(1, 3, 12, 20)),
}

"""Training losses of the spectral toolboxes, registered in BasicSR's ``LOSS_REGISTRY``."""
from typing import Callable

import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn

from ..metrics.spectral_metrics import mrae, rmse


class _WeightedLoss(nn.Module):
    """``loss_weight * criterion(pred, target)`` over the whole batch (basicsr's loss interface)."""

    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.loss_weight * self.criterion(pred, target)


@LOSS_REGISTRY.register()
class MRAELoss(_WeightedLoss):
    """MST++'s training loss: mean(|pred - target| / target)."""

    criterion = staticmethod(mrae)


@LOSS_REGISTRY.register()
class RMSELoss(_WeightedLoss):
    """MST's training loss: sqrt(mean((pred - target)^2))."""

    criterion = staticmethod(rmse)

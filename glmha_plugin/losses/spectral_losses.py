"""Training losses of the spectral toolboxes, registered in BasicSR's ``LOSS_REGISTRY``."""
import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn

from ..metrics.spectral_metrics import mrae, rmse


@LOSS_REGISTRY.register()
class MRAELoss(nn.Module):
    """MST++'s training loss: ``loss_weight * mean(|pred - target| / target)``."""

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.loss_weight * mrae(pred, target)


@LOSS_REGISTRY.register()
class RMSELoss(nn.Module):
    """MST's training loss: ``loss_weight * sqrt(mean((pred - target)^2))`` over the whole batch."""

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.loss_weight * rmse(pred, target)

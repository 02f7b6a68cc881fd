"""GLMHA's instance-guidance (calibration) network."""
import torch
from torch import nn

from .float32_islands import back, island


def calibration_hidden(dim: int, gamma: int) -> int:
    """Hidden width of the calibration MLP: ``max(1, dim // gamma)``."""
    if gamma < 1:
        raise ValueError(f'calibration reduction gamma must be >= 1, got {gamma}')
    return max(1, dim // gamma)


class Calibration(nn.Module):
    """g = sigmoid(W2 relu(W1 GAP(x))). Input B x C x H x W; output B x C, values in (0, 1).

    W1: C -> C // gamma, W2: C // gamma -> C (``Linear``; biases only when
    ``bias``).  ReLU between them, as in squeeze-and-excitation; the paper does
    not pin the activation.  Under mixed precision the sigmoid computes in
    float32 (:mod:`.float32_islands`); g comes back in the dtype of ``fc2``'s output.
    """

    def __init__(self, dim: int, gamma: int = 8, bias: bool = False):
        super().__init__()
        hidden = calibration_hidden(dim, gamma)
        self.fc1 = nn.Linear(dim, hidden, bias=bias)
        self.fc2 = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3)))))
        return back(torch.sigmoid(island(logits)), logits)

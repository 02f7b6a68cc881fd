"""Activation checkpointing per transformer block: the ``use_checkpoint`` network option of every host.

A checkpointed block keeps only its input for the backward pass and runs its
forward a second time during the backward to get the activations back: less
memory (the activations inside the blocks are not stored), about one more
forward of the blocks in time.  It uses PyTorch's non-reentrant
implementation (``use_reentrant=False``), which works with DDP, autocast
(the recomputation runs under the autocast state of the forward),
``torch.compile`` and inputs that do not require gradients, and computes the
same gradients.  It is active only while gradients are recorded: validation
and inference under ``torch.no_grad()`` run the blocks plainly.

Used by Restormer's stages (:class:`CheckpointedSequential`) and the
spectral U-Net's blocks (:func:`run_checkpointed`), so every host built on
them (Restormer, MST, MST++ and their GLMHA twins) has the option.
"""
from typing import Callable

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


def run_checkpointed(fn: Callable, *args, enabled: bool):
    """``fn(*args)``, through non-reentrant activation checkpointing when ``enabled`` and gradients are recorded."""
    if enabled and torch.is_grad_enabled():
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


class CheckpointedSequential(nn.Sequential):
    """``nn.Sequential`` whose modules are checkpointed one by one when ``use_checkpoint`` is set.

    The state_dict is that of ``nn.Sequential`` (keys ``0.``, ``1.``, ...).
    ``use_checkpoint`` is a plain attribute and may be switched at any time.
    """

    def __init__(self, *modules: nn.Module, use_checkpoint: bool = False):
        super().__init__(*modules)
        self.use_checkpoint = bool(use_checkpoint)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self:
            x = run_checkpointed(module, x, enabled=self.use_checkpoint)
        return x

    def extra_repr(self) -> str:
        return 'use_checkpoint=True' if self.use_checkpoint else ''

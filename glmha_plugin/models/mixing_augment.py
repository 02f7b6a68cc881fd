"""Restormer's ``mixing_augs``: mixup of (target, input) pairs within a batch."""
import random
from dataclasses import dataclass
from typing import Annotated

import torch


@dataclass(frozen=True)
class MixingAugsOptions:
    """``train.mixing_augs``: Restormer's mixup of training pairs."""
    mixup: Annotated[bool, 'mix the pairs of each batch (lam ~ Beta(mixup_beta, mixup_beta))'] = False
    mixup_beta: Annotated[float, '> 0', 'parameter of the Beta distribution'] = 1.2
    use_identity: Annotated[bool, 'leave half of the batches unmixed (drawn as Restormer does)'] = False


class MixingAugment:
    """Mixup with an optional identity choice, as Restormer's training loop.

    ``__call__(target, input_)`` with B x C x H x W tensors returns the pair
    mixed as ``lam * x + (1 - lam) * x[perm]`` (one ``lam ~ Beta(beta, beta)``
    and one permutation of the batch for both tensors, so pairs stay aligned).
    With ``use_identity`` the choice is between mixup and leaving the batch
    unchanged (each half of the time, drawn with ``random.randint`` as
    Restormer); without it every batch is mixed.

    Args:
        mixup_beta: Beta distribution parameter (Restormer: 1.2).
        use_identity: include "no augmentation" among the choices.
        device: where the permutation index goes (the model's device).
    """

    def __init__(self, mixup_beta: float, use_identity: bool, device: torch.device):
        if mixup_beta <= 0:
            raise ValueError(f'mixing_augs.mixup_beta must be > 0, got {mixup_beta}')
        self.beta = torch.distributions.Beta(torch.tensor([float(mixup_beta)]), torch.tensor([float(mixup_beta)]))
        self.use_identity = use_identity
        self.device = device
        self.augments = [self.mixup]

    def mixup(self, target: torch.Tensor, input_: torch.Tensor):
        lam = self.beta.rsample((1, 1)).item()
        perm = torch.randperm(target.size(0)).to(self.device)
        return lam * target + (1 - lam) * target[perm], lam * input_ + (1 - lam) * input_[perm]

    def __call__(self, target: torch.Tensor, input_: torch.Tensor):
        if self.use_identity:
            choice = random.randint(0, len(self.augments))  # == len: identity
            if choice == len(self.augments):
                return target, input_
        else:
            choice = random.randint(0, len(self.augments) - 1)
        return self.augments[choice](target, input_)

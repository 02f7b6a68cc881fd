"""Restormer's learning-rate schedule: cosine annealing with restarts, one floor per cycle.

basicsr 1.4.2 knows ``MultiStepRestartLR`` and ``CosineAnnealingRestartLR``
(one ``eta_min`` for every cycle); Restormer's recipe needs a different floor
per cycle: ``periods [92000, 208000]``, ``eta_mins [3e-4, 1e-6]`` holds the
learning rate at 3e-4 for 92k iterations (a cosine from 3e-4 to 3e-4) and
then anneals it to 1e-6 over 208k.

For scheduler step t (basicsr steps once per iteration from iteration 2 on,
so iteration i uses t = i - 1) in cycle k (the first k with t <= P_0 + ... + P_k;
a cycle's last step belongs to it, as Restormer's ``get_position_from_periods``):

    lr(t) = eta_k + w_k * (base_lr - eta_k) * (1 + cos(pi * (t - S_k) / P_k)) / 2

with S_k the sum of the periods before cycle k and w_k its restart weight.
"""
import math
from typing import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class CosineAnnealingRestartCyclicLR(LRScheduler):
    """Cosine annealing with restarts and a per-cycle minimum (Restormer's formula, above).

    Args:
        optimizer: the wrapped optimizer (its ``lr`` is ``base_lr``).
        periods: length of each cycle, in iterations.
        restart_weights: scale of ``base_lr - eta_k`` per cycle (default 1 for each).
        eta_mins: learning-rate floor per cycle.
        last_epoch: as torch's schedulers (-1: start).

    Past the end of the last cycle the rate stays at that cycle's final value
    (``eta_mins[-1]``); Restormer's version fails there, which only matters
    when ``total_iter`` exceeds ``sum(periods)``.
    """

    def __init__(self, optimizer: Optimizer, periods: Sequence[int], restart_weights: Sequence[float] = None,
                 eta_mins: Sequence[float] = (0, ), last_epoch: int = -1):
        periods = [int(p) for p in periods]
        restart_weights = [1.0] * len(periods) if restart_weights is None else list(restart_weights)
        eta_mins = list(eta_mins)
        if not periods or any(p <= 0 for p in periods):
            raise ValueError(f'CosineAnnealingRestartCyclicLR: periods must be positive iteration counts, '
                             f'got {periods}')
        if len(restart_weights) != len(periods) or len(eta_mins) != len(periods):
            raise ValueError(f'CosineAnnealingRestartCyclicLR: periods {periods}, restart_weights {restart_weights} '
                             f'and eta_mins {eta_mins} need one entry per cycle ({len(periods)})')
        self.periods = periods
        self.restart_weights = restart_weights
        self.eta_mins = eta_mins
        self.cumulative_period = [sum(periods[:i + 1]) for i in range(len(periods))]
        super().__init__(optimizer, last_epoch)

    def cycle(self, step: int) -> int:
        """Index of the cycle that step ``step`` belongs to (the last cycle past the end)."""
        for k, end in enumerate(self.cumulative_period):
            if step <= end:
                return k
        return len(self.periods) - 1

    def lr_at(self, step: int, base_lr: float) -> float:
        """The closed form above, for one base learning rate."""
        k = self.cycle(step)
        start = self.cumulative_period[k] - self.periods[k]
        progress = min(step - start, self.periods[k]) / self.periods[k]
        eta = self.eta_mins[k]
        return eta + self.restart_weights[k] * 0.5 * (base_lr - eta) * (1 + math.cos(math.pi * progress))

    def get_lr(self):
        return [self.lr_at(self.last_epoch, base_lr) for base_lr in self.base_lrs]

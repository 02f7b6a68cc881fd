"""Restormer's progressive learning: patch and batch size grow in stages during training.

Restormer's own training loop (not its model) did this; basicsr 1.4.2's
``train_pipeline`` has no hook for it, so :class:`ImageCleanModel` applies it
in ``feed_data``.  The dataloader always delivers ``batch_size_per_gpu``
pairs of ``gt_size`` crops; at iteration i of stage j (the first j with
i <= iters[0] + ... + iters[j]; the last stage once the sum is passed) the
batch is reduced to ``mini_batch_sizes[j]`` random members (``random.sample``)
and cropped to a random ``gt_sizes[j]`` window (``int((size - patch) *
random.random())`` for the row, then the column offset), exactly as
Restormer's loop.  The stage is a pure function of the iteration, so a
resumed run continues in the right stage.

Dataset options (Restormer's names)::

    batch_size_per_gpu: 8
    mini_batch_sizes: [8, 5, 4, 2, 1, 1]   # per GPU
    iters: [92000, 64000, 48000, 36000, 36000, 24000]
    gt_size: 384                            # what the dataset crops
    gt_sizes: [128, 160, 192, 256, 320, 384]
"""
import bisect
import dataclasses
import random
from dataclasses import dataclass
from typing import Annotated, List, Optional, Sequence, Tuple

import torch


@dataclass(frozen=True)
class ProgressiveOptions:
    """Progressive learning (Restormer's): patch and batch size grow in stages; all three keys or none."""
    mini_batch_sizes: Annotated[Optional[List[int]], '>= 1', 'batch size per GPU of each stage (at most '
                                'batch_size_per_gpu, which the loader delivers)'] = None
    iters: Annotated[Optional[List[int]], '>= 1', 'iterations of each stage'] = None
    gt_sizes: Annotated[Optional[List[int]], '>= 1', 'patch side of each stage (at most gt_size, which the dataset '
                        'crops)'] = None


KEYS = tuple(f.name for f in dataclasses.fields(ProgressiveOptions))


@dataclass(frozen=True)
class Stage:
    index: int        # 0-based
    first_iter: int   # first iteration (1-based) of the stage
    batch_size: int   # per GPU
    patch_size: int   # GT patch side


class ProgressiveSchedule:
    """Stage boundaries and the per-iteration crop (see the module docstring).

    Args:
        iters: iterations per stage.
        mini_batch_sizes: batch size per GPU in each stage (<= ``batch_size``).
        gt_sizes: GT patch side in each stage (<= ``gt_size``).
        batch_size: ``batch_size_per_gpu`` (what the dataloader delivers).
        gt_size: the dataset's crop size.
    """

    def __init__(self, iters: Sequence[int], mini_batch_sizes: Sequence[int], gt_sizes: Sequence[int],
                 batch_size: int, gt_size: int):
        iters, mini_batch_sizes, gt_sizes = list(iters), list(mini_batch_sizes), list(gt_sizes)
        if not (len(iters) == len(mini_batch_sizes) == len(gt_sizes)) or not iters:
            raise ValueError(f'progressive learning: iters {iters}, mini_batch_sizes {mini_batch_sizes} and gt_sizes '
                             f'{gt_sizes} need one entry per stage (same non-zero length)')
        if any(int(n) <= 0 for n in iters):
            raise ValueError(f'progressive learning: every stage needs iters > 0, got {iters}')
        bad_bs = [b for b in mini_batch_sizes if not 1 <= b <= batch_size]
        if bad_bs:
            raise ValueError(f'progressive learning: mini_batch_sizes {mini_batch_sizes} must be between 1 and '
                             f'batch_size_per_gpu ({batch_size}); the dataloader delivers batch_size_per_gpu pairs '
                             f'and each stage uses a subset')
        bad_gt = [g for g in gt_sizes if not 1 <= g <= gt_size]
        if bad_gt:
            raise ValueError(f'progressive learning: gt_sizes {gt_sizes} must be between 1 and gt_size ({gt_size}), '
                             f'the patch size the dataset crops')
        self.iters = [int(n) for n in iters]
        self.mini_batch_sizes = [int(b) for b in mini_batch_sizes]
        self.gt_sizes = [int(g) for g in gt_sizes]
        self.batch_size = int(batch_size)
        self.gt_size = int(gt_size)
        self.boundaries = [sum(self.iters[:j + 1]) for j in range(len(self.iters))]

    @classmethod
    def from_dataset_opt(cls, opt: dict) -> Optional['ProgressiveSchedule']:
        """The schedule of a train dataset's options; None when it sets none of :data:`KEYS`."""
        present = [k for k in KEYS if opt.get(k) is not None]
        if not present:
            return None
        missing = [k for k in KEYS + ('gt_size', 'batch_size_per_gpu') if opt.get(k) is None]
        if missing:
            raise ValueError(f'progressive learning needs {", ".join(KEYS)}, gt_size and batch_size_per_gpu in the '
                             f'train dataset options; missing: {", ".join(missing)}')
        return cls(opt['iters'], opt['mini_batch_sizes'], opt['gt_sizes'], opt['batch_size_per_gpu'], opt['gt_size'])

    def __len__(self) -> int:
        return len(self.iters)

    def stage(self, current_iter: int) -> Stage:
        """The stage of iteration ``current_iter`` (1-based, as basicsr counts)."""
        j = min(bisect.bisect_left(self.boundaries, current_iter), len(self.iters) - 1)
        first = 1 if j == 0 else self.boundaries[j - 1] + 1
        return Stage(j, first, self.mini_batch_sizes[j], self.gt_sizes[j])

    def crop(self, lq: torch.Tensor, gt: torch.Tensor, current_iter: int, scale: int = 1,
             devices: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
        """Sub-sample and crop one training batch for ``current_iter``.

        Args:
            lq: B x C x h x w inputs (h = H / scale).
            gt: B x C x H x W targets.
            scale: GT / LQ size ratio.
            devices: GPUs sharing this batch (DataParallel: basicsr loads
                ``batch_size_per_gpu * num_gpu``); 1 for DDP and single devices.
        Returns:
            (lq, gt) of the stage's batch and patch size (views of the inputs).
        """
        stage = self.stage(current_iter)
        batch, keep = lq.size(0), stage.batch_size * devices
        if keep < batch:
            idx = random.sample(range(batch), k=keep)
            lq, gt = lq[idx], gt[idx]
        height, width = gt.shape[-2:]
        patch = stage.patch_size
        if patch > min(height, width):
            raise ValueError(f'progressive learning: stage {stage.index + 1} wants {patch} px patches but the batch is '
                             f'{height}x{width}; set the dataset gt_size to max(gt_sizes) ({max(self.gt_sizes)})')
        if patch < self.gt_size:
            lq_patch = patch // scale
            top = int((lq.size(-2) - lq_patch) * random.random())
            left = int((lq.size(-1) - lq_patch) * random.random())
            lq = lq[..., top:top + lq_patch, left:left + lq_patch]
            gt = gt[..., top * scale:(top + lq_patch) * scale, left * scale:(left + lq_patch) * scale]
        return lq, gt

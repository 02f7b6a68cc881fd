"""Print and plot a training recipe: progressive stages and the learning rate over the iterations.

``glmha recipe -opt options/Deraining_GLMHA.yml [--plot recipe.png]`` reads the
option file the way ``ImageCleanModel`` does (same :class:`ProgressiveSchedule`,
same scheduler class) and shows what a run will do without starting one.
"""
import argparse
import sys
from typing import List, Optional, Sequence

import torch
import yaml

from ..models import CosineAnnealingRestartCyclicLR, ProgressiveSchedule


def load(path: str):
    with open(path, encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    train = opt['train']
    sched_opt = {k: v for k, v in train['scheduler'].items() if k != 'type'}
    if train['scheduler'].get('type') != 'CosineAnnealingRestartCyclicLR':
        raise ValueError(f'{path}: only CosineAnnealingRestartCyclicLR schedules are shown, got '
                         f'{train["scheduler"].get("type")}')
    param = torch.nn.Parameter(torch.zeros(1))
    sched = CosineAnnealingRestartCyclicLR(torch.optim.SGD([param], lr=float(train['optim_g']['lr'])), **sched_opt)
    prog = ProgressiveSchedule.from_dataset_opt(opt['datasets']['train'])
    return opt, sched, prog


def lr_at_iter(sched: CosineAnnealingRestartCyclicLR, it: int) -> float:
    """Learning rate used at iteration ``it`` (basicsr: scheduler step it - 1)."""
    return sched.lr_at(it - 1, sched.base_lrs[0])


def table(opt: dict, sched, prog: Optional[ProgressiveSchedule]) -> List[str]:
    total = int(opt['train']['total_iter'])
    lines = [f'{opt["name"]}: {total} iterations, {opt["train"]["optim_g"]["type"]} lr {sched.base_lrs[0]:g}, '
             f'cycles {sched.periods} with floors {sched.eta_mins}']
    if prog is None:
        return lines + ['no progressive learning (fixed gt_size patches)']
    lines.append(f'{"stage":>5s} {"iterations":>17s} {"patch":>7s} {"batch/GPU":>9s} {"lr first":>10s} '
                 f'{"lr last":>10s}')
    first = 1
    for j, end in enumerate(prog.boundaries):
        last = min(end, total) if j < len(prog) - 1 else total
        if first > total:
            break
        lines.append(f'{j + 1:5d} {first:8d}-{last:<8d} {prog.gt_sizes[j]:7d} {prog.mini_batch_sizes[j]:9d} '
                     f'{lr_at_iter(sched, first):10.3e} {lr_at_iter(sched, last):10.3e}')
        first = end + 1
    return lines


def plot(opt: dict, sched, prog: Optional[ProgressiveSchedule], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    total = int(opt['train']['total_iter'])
    its = list(range(1, total + 1, max(1, total // 2000))) + [total]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.plot(its, [lr_at_iter(sched, i) for i in its], color='tab:blue')
    ax.set_xlabel('iteration')
    ax.set_ylabel('learning rate', color='tab:blue')
    if prog is not None:
        ax2 = ax.twinx()
        ax2.step(its, [prog.stage(i).patch_size for i in its], where='post', color='tab:orange', label='patch')
        ax2.step(its, [prog.stage(i).batch_size * 16 for i in its], where='post', color='tab:green',
                 label='batch/GPU x16')
        ax2.set_ylabel('patch size / batch x16')
        ax2.legend(loc='lower left', fontsize=8)
    ax.set_title(f'{opt["name"]}: learning rate and progressive stages', fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('-opt', '--opt', required=True, help='training option YAML')
    p.add_argument('--plot', help='write the curves to this PNG')
    args = p.parse_args(argv)
    try:
        opt, sched, prog = load(args.opt)
    except (OSError, KeyError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print('\n'.join(table(opt, sched, prog)))
    if args.plot:
        plot(opt, sched, prog, args.plot)
        print(f'plot: {args.plot}')
    return 0

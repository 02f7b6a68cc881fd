"""Two gloo ranks vote on a non-finite step: rank 1's loss is NaN, rank 0's finite; each writes its verdict.

Test helper only (spawned by tests/models/test_gpu_training.py::test_one_ranks_nonfinite_step_is_skipped_by_all).
The ranks meet through a file store in ``out_dir`` and wait for each other before tearing down: with a TCP
store, rank 0 (which hosts it) aborted once at exit in CI ('terminate called without an active exception');
a file store has no server thread to outlive.
"""
import os
import sys
from types import SimpleNamespace

import torch
import torch.distributed as dist


def vote(rank: int, out_dir: str) -> None:
    dist.init_process_group('gloo', init_method=f'file://{os.path.join(out_dir, "store")}', rank=rank, world_size=2)
    try:
        from glmha_plugin.models import ImageCleanModel
        net = torch.nn.Linear(2, 1)
        net(torch.ones(1, 2)).sum().backward()               # finite gradients on both ranks
        loss = torch.tensor(float('nan') if rank == 1 else 0.5)
        model = SimpleNamespace(net_g=net, opt={'dist': True}, device=torch.device('cpu'))
        finite = ImageCleanModel.gradients_finite(model, {'l_pix': loss})
        with open(os.path.join(out_dir, f'rank{rank}.txt'), 'w') as f:
            f.write(str(finite))
        dist.barrier()          # neither rank tears the group down while the other still uses it
    finally:
        dist.destroy_process_group()


if __name__ == '__main__':
    vote(int(sys.argv[1]), sys.argv[2])

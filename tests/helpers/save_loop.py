"""Save checkpoints in a loop until killed: ``python save_loop.py FOLDER``.

basicsr's own ``SRModel`` (a Restormer of about 46 MB) saves iterations 1, 2, 3, ... into ``FOLDER/models``
and ``FOLDER/training_states`` through ``model.save`` (``BaseModel.save_network`` / ``save_training_state``,
as adapted by glmha_plugin.glue.compat), the way train_pipeline does; the test kills it with SIGKILL while a
file is being written.
"""
import itertools
import os
import sys

import torch
from basicsr.models.sr_model import SRModel

import glmha_plugin  # noqa: F401  (registers the networks, applies compat)


def main(folder: str) -> None:
    paths = {k: os.path.join(folder, k) for k in ('models', 'training_states')}
    for p in paths.values():
        os.makedirs(p, exist_ok=True)
    opt = dict(name='save_loop', model_type='SRModel', num_gpu=0, is_train=True, dist=False, rank=0, world_size=1,
               network_g=dict(type='Restormer', dim=32),
               path=dict(paths, pretrain_network_g=None, strict_load_g=True, resume_state=None),
               train=dict(ema_decay=0, optim_g=dict(type='Adam', lr=1e-4),
                          scheduler=dict(type='MultiStepLR', milestones=[100], gamma=0.5),
                          pixel_opt=dict(type='L1Loss', loss_weight=1.0, reduction='mean')))
    model = SRModel(opt)
    x = torch.rand(1, 3, 16, 16)
    model.feed_data({'lq': x, 'gt': x})
    model.optimize_parameters(1)          # Adam's state: the training state is about twice the weights
    print('saving', flush=True)
    for it in itertools.count(1):
        model.save(0, it)


if __name__ == '__main__':
    main(sys.argv[1])

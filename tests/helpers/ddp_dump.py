"""Run glmha-train under torchrun and save each rank's final weights to ``rank<R>.pth``.

Test helper only: wraps basicsr.train.build_model to keep a handle on the model.
"""
import os
import sys

import basicsr.train as bt
import torch

import glmha_plugin  # noqa: F401
from glmha_plugin.commands.train import main

models = []
_build = bt.build_model


def _capture(opt):
    model = _build(opt)
    models.append(model)
    return model


if __name__ == '__main__':  # spawned DataLoader workers re-import this file
    bt.build_model = _capture
    main(sys.argv[1:])
    net = models[0].get_bare_model(models[0].net_g)
    torch.save(net.state_dict(), f'rank{os.environ["RANK"]}.pth')

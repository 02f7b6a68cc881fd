"""Every registered name is reachable through basicsr's registries and builders."""
import pytest
import torch
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY

from helpers.common import TINY_RESTORMER as TINY

ARCH_NAMES = ['Restormer', 'GLMHARestormer']


@pytest.mark.parametrize('name', ARCH_NAMES)
def test_arch_registered_and_buildable(name):
    cls = ARCH_REGISTRY.get(name)
    assert cls.__name__ == name
    net = build_network({'type': name, **TINY})
    assert isinstance(net, cls)
    assert net(torch.rand(1, 3, 9, 11)).shape == (1, 3, 9, 11)


def test_upstream_network_g_block_works_unchanged():
    """Restormer's own Deraining YAML network_g block (minus size) builds our Restormer."""
    opt = {'type': 'Restormer', 'inp_channels': 3, 'out_channels': 3, 'dim': 8, 'num_blocks': [1, 1, 1, 1],
           'num_refinement_blocks': 1, 'heads': [1, 2, 4, 8], 'ffn_expansion_factor': 2.66, 'bias': False,
           'LayerNorm_type': 'WithBias', 'dual_pixel_task': False}
    assert build_network(opt).attention == 'csa'
    assert build_network({**opt, 'type': 'GLMHARestormer'}).attention == 'glmha'

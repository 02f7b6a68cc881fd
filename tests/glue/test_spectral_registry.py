"""The spectral networks in basicsr's ARCH_REGISTRY and mmengine's MODELS; model_generator and checkpoints."""
import sys

import pytest
import torch
from basicsr.archs import build_network
from basicsr.models.base_model import BaseModel
from basicsr.utils.registry import ARCH_REGISTRY
from mmengine.registry import MODELS

from glmha_plugin.errors import CheckpointError
from glmha_plugin.glue.mst_toolbox import METHODS, model_generator
from glmha_plugin.registry import SPECTRAL_MODELS

from helpers.common import run

SPECTRAL_ARCHS = ['MST', 'GLMHAMST', 'MST_Plus_Plus', 'GLMHAMSTPlusPlus']


@pytest.mark.parametrize('name', SPECTRAL_ARCHS)
def test_registered_in_both_registries(name):
    assert ARCH_REGISTRY.get(name).__name__ == name
    assert SPECTRAL_MODELS.get(name) is ARCH_REGISTRY.get(name)
    small = dict(stage=1) if 'Plus' in name else dict(dim=28, stage=1, num_blocks=[1, 1])
    net = build_network({'type': name, **small})
    assert type(net).__name__ == name
    assert type(MODELS.build(dict(type=f'glmha_plugin.{name}', **small))).__name__ == name


def test_mmengine_root_finds_the_plugin_by_scope_alone(tmp_path):
    """A fresh process that imports nothing of ours: mmengine imports glmha_plugin.glue.mst_toolbox for the prefix."""
    code = ('from mmengine.registry import MODELS; m = MODELS.build(dict(type="glmha_plugin.GLMHAMSTPlusPlus", '
            'stage=1)); print(type(m).__name__)')
    proc = run([sys.executable, '-c', code], cwd=tmp_path, GLMHA_PLUGIN_AUTOLOAD=0)
    assert proc.stdout.split()[-1] == 'GLMHAMSTPlusPlus'


def test_model_generator_names():
    assert set(METHODS) == {'mst_s', 'mst_m', 'mst_l', 'mst_plus_plus', 'glmha_mst_s', 'glmha_mst_m', 'glmha_mst_l',
                            'glmha_mst_plus_plus'}
    net = model_generator('glmha_mst_plus_plus')
    assert type(net).__name__ == 'GLMHAMSTPlusPlus' and net.attention == 'glmha'
    assert next(net.parameters()).device.type == 'cpu'
    assert type(model_generator('mst_plus_plus')).__name__ == 'MST_Plus_Plus'


@pytest.mark.parametrize('method', ['mst_s', 'mst_m', 'mst_l', 'mst_plus_plus'])
def test_upstream_names_build_the_official_layout(mst_official, method):
    net = model_generator(method)
    assert [[k, list(v.shape)] for k, v in net.state_dict().items()] == mst_official[method]['keys']


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown method 'glmha_mst_plus'.*Did you mean.*'glmha_mst_plus_plus'"
                       ".*Valid methods: mst_s, mst_m, mst_l, mst_plus_plus, glmha_mst_s"):
        model_generator('glmha_mst_plus')


def random_official(keys, seed=0):
    torch.manual_seed(seed)
    return {k: torch.randn(shape) for k, shape in keys}


def test_official_mst_checkpoint_loads_strict(mst_official, tmp_path):
    """MST's format: a plain state_dict (here saved from DataParallel, with 'module.' prefixes)."""
    weights = random_official(mst_official['mst_s']['keys'])
    torch.save({f'module.{k}': v for k, v in weights.items()}, tmp_path / 'mst_s.pth')
    net = model_generator('mst_s', str(tmp_path / 'mst_s.pth'))
    for k, v in net.state_dict().items():
        assert torch.equal(v, weights[k]), k


def test_official_mst_plus_plus_checkpoint_loads_strict(mst_official, tmp_path):
    """MST++'s format: {'epoch', 'iter', 'state_dict' (with 'module.'), 'optimizer'}; also through basicsr."""
    weights = random_official(mst_official['mst_plus_plus']['keys'])
    opt = torch.optim.Adam([torch.zeros(2, requires_grad=True)])
    torch.save({'epoch': 300, 'iter': 300000, 'state_dict': {f'module.{k}': v for k, v in weights.items()},
                'optimizer': opt.state_dict()}, tmp_path / 'mst_plus_plus.pth')
    net = model_generator('mst_plus_plus', str(tmp_path / 'mst_plus_plus.pth'))
    assert all(torch.equal(v, weights[k]) for k, v in net.state_dict().items())
    # the test YAML's way: basicsr's own loader with param_key_g: state_dict
    fresh = build_network({'type': 'MST_Plus_Plus'})
    BaseModel({'num_gpu': 0, 'is_train': False, 'dist': False}).load_network(
        fresh, str(tmp_path / 'mst_plus_plus.pth'), strict=True, param_key='state_dict')
    assert all(torch.equal(v, weights[k]) for k, v in fresh.state_dict().items())


def test_basicsr_checkpoint_of_a_glmha_model_loads(tmp_path):
    trained = model_generator('glmha_mst_s')
    torch.save({'params': trained.state_dict()}, tmp_path / 'net_g_latest.pth')
    net = model_generator('glmha_mst_s', str(tmp_path / 'net_g_latest.pth'))
    assert all(torch.equal(v, trained.state_dict()[k]) for k, v in net.state_dict().items())


def test_mismatched_checkpoint_is_explained(mst_official, tmp_path):
    torch.save(random_official(mst_official['mst_s']['keys']), tmp_path / 'mst_s.pth')
    with pytest.raises(RuntimeError, match="method 'glmha_mst_s' \\(GLMHAMST\\).*does not fit GLMHAMST: .*missing"):
        model_generator('glmha_mst_s', str(tmp_path / 'mst_s.pth'))


def test_checkpoint_is_read_weights_only(tmp_path):
    """A pickle that would run code is refused (torch.load(..., weights_only=True))."""
    torch.save({'state_dict': {}, 'hook': print}, tmp_path / 'evil.pth')
    with pytest.raises(CheckpointError, match='refused'):
        model_generator('mst_s', str(tmp_path / 'evil.pth'))

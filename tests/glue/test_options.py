"""Every shipped option file parses and names only registered, buildable parts."""
import glob
import os.path as osp

import pytest
from basicsr.archs import build_network
from basicsr.utils.registry import DATASET_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

from helpers.common import OPTIONS, load_yaml

FILES = sorted(glob.glob(osp.join(OPTIONS, '**', '*.yml'), recursive=True))


def test_options_exist():
    names = {osp.relpath(f, OPTIONS) for f in FILES}
    assert {'Deraining_GLMHA.yml', 'Deraining_Restormer.yml', 'test_Deraining_GLMHA.yml',
            'test_Deraining_Restormer.yml', 'tiny/Demo_Deraining_GLMHA.yml', 'Deblurring_GLMHA.yml',
            'Deblurring_Restormer.yml', 'test_Deblurring_GLMHA.yml', 'test_Deblurring_Restormer.yml'} <= names


@pytest.mark.parametrize('path', FILES, ids=lambda p: osp.relpath(p, OPTIONS))
def test_option_file(path):
    opt = load_yaml(path)
    assert opt['num_gpu'] == 'auto', 'ship num_gpu: auto (num_gpu: 1 fails on CPU-only machines)'
    assert opt['model_type'] in MODEL_REGISTRY
    for phase, ds in opt['datasets'].items():
        assert phase.split('_')[0] in ('train', 'val', 'test')
        assert ds['type'] in DATASET_REGISTRY
        assert ds.get('prefetch_mode') in (None, 'cpu'), 'prefetch_mode: cuda fails on CPU'
    for metric in (opt.get('val') or {}).get('metrics', {}).values():
        assert metric['type'] in METRIC_REGISTRY
    assert isinstance(opt['path'], dict)
    build_network(opt['network_g'])
    is_test = osp.basename(path).startswith('test_')
    if is_test:
        assert opt['path'].get('pretrain_network_g'), 'test options must name weights'
    else:
        assert {'optim_g', 'scheduler', 'total_iter'} <= set(opt['train'])


@pytest.mark.parametrize('path', FILES, ids=lambda p: osp.relpath(p, OPTIONS))
def test_shipped_options_use_only_known_keys(path):
    """The misspelled-key check (glmha_plugin.glue.preflight) accepts every shipped option file."""
    from glmha_plugin.glue.preflight import check_own_sections
    check_own_sections(load_yaml(path))

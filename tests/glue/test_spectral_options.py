"""The spectral option files: upstream's recipes, baselines that differ from GLMHA only in the attention,
and tiny test versions that run the same parts. (test_options.py checks every YAML builds.)"""
import copy

import pytest

from helpers.common import load_yaml

GLMHA_KEYS = {'rank', 'rank_ratio', 'guidance', 'gamma'}
PAIRS = [('SpectralRecon_MST++_GLMHA.yml', 'SpectralRecon_MST++.yml'),
         ('test_SpectralRecon_MST++_GLMHA.yml', 'test_SpectralRecon_MST++.yml'),
         ('CASSI_MST-L_GLMHA.yml', 'CASSI_MST-L.yml'), ('test_CASSI_MST-L_GLMHA.yml', 'test_CASSI_MST-L.yml')]
TINY = {'SpectralRecon_MST++_GLMHA.yml': 'tiny/Tiny_SpectralRecon_MST++_GLMHA.yml',
        'CASSI_MST-L_GLMHA.yml': 'tiny/Tiny_CASSI_MST_GLMHA.yml',
        'test_SpectralRecon_MST++_GLMHA.yml': 'tiny/test_Tiny_SpectralRecon_MST++_GLMHA.yml',
        'test_CASSI_MST-L_GLMHA.yml': 'tiny/test_Tiny_CASSI_MST_GLMHA.yml'}


def without(opt, drop_network_keys, drop_path_keys=()):
    opt = copy.deepcopy(opt)
    opt.pop('name')
    for key in drop_network_keys:
        opt['network_g'].pop(key, None)
    for key in drop_path_keys:
        opt['path'].pop(key, None)
    return opt


@pytest.mark.parametrize('glmha,baseline', PAIRS)
def test_baseline_differs_only_in_attention(glmha, baseline):
    g, b = load_yaml(glmha), load_yaml(baseline)
    assert g['network_g']['type'].startswith('GLMHA') and not b['network_g']['type'].startswith('GLMHA')
    assert not GLMHA_KEYS & set(b['network_g'])
    path_keys = ('pretrain_network_g', 'param_key_g') if glmha.startswith('test_') else ()
    assert without(g, GLMHA_KEYS | {'type'}, path_keys) == without(b, {'type'}, path_keys)


def test_mst_plus_plus_recipe_is_upstreams():
    """MST++ README: train.py --batch_size 20 --end_epoch 300 --init_lr 4e-4 --patch_size 128 --stride 8;
    train.py: Adam(betas 0.9, 0.999), CosineAnnealingLR(300 x 1000 iterations, eta_min 1e-6), Loss_MRAE,
    validation every 1000 iterations on [128:-128, 128:-128]."""
    opt = load_yaml('SpectralRecon_MST++_GLMHA.yml')
    train_ds, train = opt['datasets']['train'], opt['train']
    assert (train_ds['batch_size_per_gpu'], train_ds['gt_size'], train_ds['stride']) == (20, 128, 8)
    assert train['optim_g'] == {'type': 'Adam', 'lr': 4e-4, 'betas': [0.9, 0.999]}
    assert train['scheduler'] == {'type': 'CosineAnnealingRestartLR', 'periods': [300000], 'restart_weights': [1],
                                  'eta_min': 1e-6}
    assert train['total_iter'] == 300000 and train['pixel_opt']['type'] == 'MRAELoss'
    assert opt['val']['val_freq'] == 1000
    assert {m['crop_border'] for m in opt['val']['metrics'].values()} == {128}
    assert opt['network_g']['stage'] == 3 and opt['network_g']['n_feat'] == 31


def test_mst_l_recipe_is_upstreams():
    """MST simulation/train_code/option.py: batch 5, 300 epochs of 5000 samples, MultiStepLR milestones
    [50, 100, 150, 200, 250] epochs, gamma 0.5, lr 4e-4, 256 px crops; train.py: sqrt(MSE) loss;
    model_generator('mst_l'): MST(dim=28, stage=2, num_blocks=[4, 7, 5])."""
    opt = load_yaml('CASSI_MST-L_GLMHA.yml')
    train_ds, train = opt['datasets']['train'], opt['train']
    assert (train_ds['batch_size_per_gpu'], train_ds['gt_size'], train_ds['data_range']) == (5, 256, 65536)
    assert train['optim_g'] == {'type': 'Adam', 'lr': 4e-4, 'betas': [0.9, 0.999]}
    assert train['scheduler'] == {'type': 'MultiStepLR', 'milestones': [50000, 100000, 150000, 200000, 250000],
                                  'gamma': 0.5}
    assert train['total_iter'] == 300000 and train['pixel_opt']['type'] == 'RMSELoss'
    net = opt['network_g']
    assert (net['dim'], net['stage'], net['num_blocks'], net['dispersion_step']) == (28, 2, [4, 7, 5], 2)


@pytest.mark.parametrize('full,tiny', list(TINY.items()))
def test_tiny_versions_run_the_same_parts(full, tiny):
    f, t = load_yaml(full), load_yaml(tiny)
    assert t['model_type'] == f['model_type'] and t['network_g']['type'] == f['network_g']['type']
    assert {p: d['type'] for p, d in t['datasets'].items()} == {p: d['type'] for p, d in f['datasets'].items()}
    assert {m['type'] for m in t['val']['metrics'].values()} == {m['type'] for m in f['val']['metrics'].values()}
    if 'train' in f:
        assert t['train']['pixel_opt']['type'] == f['train']['pixel_opt']['type']
        assert t['train']['scheduler']['type'] == f['train']['scheduler']['type']

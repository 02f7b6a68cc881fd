"""Our baseline YAMLs carry Restormer's published hyper-parameters; GLMHA YAMLs differ only in network_g.

The expected values are a fixture (fixtures/restormer_recipe.json) recorded from
Restormer's own option files at the commit named inside it.
"""
import os.path as osp

import pytest

from helpers.common import OPTIONS, load_yaml, read_fixture
from helpers.recipe import mismatches

RECIPE = read_fixture('restormer_recipe.json')
GLMHA_KEYS = {'type', 'rank_ratio', 'guidance', 'gamma'}
TEST_SETS = {'Deraining': ['Rain100L', 'Rain100H', 'Test100', 'Test1200', 'Test2800'],
             'Deblurring': ['GoPro', 'HIDE', 'RealBlur_J', 'RealBlur_R']}


@pytest.mark.parametrize('task', ['Deraining', 'Deblurring'])
def test_baseline_yaml_equals_published_recipe(task):
    expected = {k: v for k, v in RECIPE[task].items() if k not in ('file', 'upstream_dataroots')}
    opt = load_yaml(f'{task}_Restormer.yml')
    assert mismatches(expected, opt) == []
    assert opt['num_gpu'] == 'auto'
    # same folders as upstream, under datasets/<task> instead of ./<task>/Datasets
    ours = {'train_gt': opt['datasets']['train']['dataroot_gt'], 'train_lq': opt['datasets']['train']['dataroot_lq'],
            'val_gt': opt['datasets']['val']['dataroot_gt'], 'val_lq': opt['datasets']['val']['dataroot_lq']}
    for key, upstream in RECIPE[task]['upstream_dataroots'].items():
        assert ours[key].split('/')[-3:] == upstream.split('/')[-3:], key


@pytest.mark.parametrize('task', ['Deraining', 'Deblurring'])
def test_glmha_yaml_differs_only_in_network(task):
    base, glmha = load_yaml(f'{task}_Restormer.yml'), load_yaml(f'{task}_GLMHA.yml')
    assert glmha['name'] == f'{task}_GLMHA'
    for key in set(base) | set(glmha):
        if key not in ('name', 'network_g'):
            assert base.get(key) == glmha.get(key), key
    net_b, net_g = base['network_g'], glmha['network_g']
    assert net_g['type'] == 'GLMHARestormer'
    assert {k: v for k, v in net_g.items() if k not in GLMHA_KEYS} == {k: v for k, v in net_b.items() if k != 'type'}


def test_mismatch_helper_reports_differences():
    assert mismatches({'a': {'b': 1.0, 'c': [1]}}, {'a': {'b': 2, 'c': [1]}}) == ['a.b: 2 != 1.0']
    assert mismatches({'a': 1}, {}) == ['a: missing']


@pytest.mark.parametrize('task', ['Deraining', 'Deblurring'])
@pytest.mark.parametrize('net', ['GLMHA', 'Restormer'])
def test_test_yaml_layout(task, net):
    opt, train = load_yaml(f'test_{task}_{net}.yml'), load_yaml(f'{task}_{net}.yml')
    root = 'datasets/Deraining/test' if task == 'Deraining' else 'datasets/Motion_Deblurring/test'
    sets = [ds for _, ds in sorted(opt['datasets'].items())]
    assert [d['name'] for d in sets] == TEST_SETS[task]
    for d in sets:
        assert d['dataroot_lq'] == f'{root}/{d["name"]}/input' and d['dataroot_gt'] == f'{root}/{d["name"]}/target'
    assert opt['network_g'] == train['network_g']
    y = task == 'Deraining'  # deraining is scored on Y, GoPro/HIDE on RGB (Restormer's MATLAB scripts)
    assert {m['type'] for m in opt['val']['metrics'].values()} == {'calculate_psnr_matlab', 'calculate_ssim_matlab'}
    assert all(m['test_y_channel'] is y for m in opt['val']['metrics'].values())
    assert opt['val']['window_size'] == 8


def test_show_recipe_prints_restormer_stages(tmp_path, capsys):
    from glmha_plugin.analysis.recipe import main
    assert main(['-opt', osp.join(OPTIONS, 'Deraining_GLMHA.yml'), '--plot', str(tmp_path / 'r.png')]) == 0
    rows = [ln.split() for ln in capsys.readouterr().out.splitlines()[2:8]]
    train = RECIPE['Deraining']['datasets']['train']
    ends = [sum(train['iters'][:j + 1]) for j in range(6)]
    assert [r[1] for r in rows] == [f'{e - n + 1}-{e}' for e, n in zip(ends, train['iters'], strict=True)]
    assert [int(r[2]) for r in rows] == train['gt_sizes'] and [int(r[3]) for r in rows] == train['mini_batch_sizes']
    assert float(rows[0][4]) == 3e-4 and float(rows[-1][5]) == 1e-6
    assert (tmp_path / 'r.png').stat().st_size > 1000

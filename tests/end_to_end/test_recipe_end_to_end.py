"""The full recipe through the real entry points, on a tiny copy of Restormer's deraining layout.

glmha-train -opt options/Deraining_GLMHA.yml (progressive stages, validation,
checkpoints, resume), both ways of testing, the evaluator (the entry points' ``main`` in this process), and
progressive learning under 2-process gloo DDP (torchrun).
"""
import os
import os.path as osp
import re

import pytest
import torch
import yaml

from glmha_plugin.commands import test as glmha_test
from glmha_plugin.commands import train as glmha_train
from glmha_plugin.commands.glmha import main as glmha
from glmha_plugin.evaluation import evaluate

from helpers.common import BIN, OPTIONS, REPO, TINY_RESTORMER, free_port, run, train_logs
from helpers.recipe import closed_form
from helpers.runs import run_main

pytestmark = pytest.mark.slow
TRAIN_OPT = osp.join(OPTIONS, 'Deraining_GLMHA.yml')
EXP = osp.join('experiments', 'Deraining_GLMHA')
SETS = ('Rain100L', 'Rain100H', 'Test100', 'Test1200', 'Test2800')
TINY_NET = [f'network_g:{k}={v}' for k, v in TINY_RESTORMER.items()]  # --force_yml entries
# Restormer's recipe shrunk: 3 progressive stages of 2 iterations, two LR cycles, validation every 3.
TINY_RECIPE = TINY_NET + [
    'datasets:train:batch_size_per_gpu=4', 'datasets:train:mini_batch_sizes=[4,2,1]', 'datasets:train:iters=[2,2,2]',
    'datasets:train:gt_size=32', 'datasets:train:gt_sizes=[16,24,32]', 'datasets:train:num_worker_per_gpu=0',
    'datasets:train:dataset_enlarge_ratio=4', 'train:scheduler:periods=[2,6]', 'train:scheduler:eta_mins=[3e-4,1e-6]',
    'val:val_freq=3', 'logger:print_freq=1', 'logger:save_checkpoint_freq=3', 'logger:use_tb_logger=false']
PERIODS, ETAS, BASE_LR = [2, 6], [3e-4, 1e-6], 3e-4


@pytest.fixture
def derain_dir(tmp_path, demo_data):
    """datasets/Deraining/{train/Rain13K, test/<5 sets>} linked to the tiny demo pairs."""
    demo = demo_data / 'datasets' / 'demo_rain'
    (tmp_path / 'datasets' / 'Deraining' / 'train').mkdir(parents=True)
    (tmp_path / 'datasets' / 'Deraining' / 'test').mkdir()
    os.symlink(demo / 'train', tmp_path / 'datasets' / 'Deraining' / 'train' / 'Rain13K')
    for name in SETS:
        os.symlink(demo / 'test', tmp_path / 'datasets' / 'Deraining' / 'test' / name)
    return tmp_path


def check_lrs(log, iters):
    lrs = {int(i): float(lr) for i, lr in re.findall(r'iter:\s+(\d+), lr:\(([\d.e+-]+),\)', log)}
    assert sorted(lrs) == list(iters), lrs
    for it, lr in lrs.items():
        want = closed_form(it - 1, BASE_LR, PERIODS, [1] * len(PERIODS), ETAS)
        assert lr == pytest.approx(float(want), rel=2e-3), it  # the log prints 4 significant digits


def test_recipe_trains_resumes_tests_and_evaluates(derain_dir, monkeypatch, capsys):
    cwd = derain_dir
    run_main(glmha_train.main, ['-opt', TRAIN_OPT, '--force_yml', *TINY_RECIPE, 'train:total_iter=6'], cwd)
    log = train_logs(cwd, 'Deraining_GLMHA')[0]
    stages = re.findall(r'stage (\d)/3 from iter (\d+): patch (\d+)x\d+, batch (\d) per GPU', log)
    assert stages == [('1', '1', '16', '4'), ('2', '3', '24', '2'), ('3', '5', '32', '1')]
    assert log.count('Validation ValSet') == 3  # iterations 3 and 6, and after training
    assert 'Model [ImageCleanModel] is created' in log
    check_lrs(log, range(1, 7))
    assert {'3.state', '6.state'} <= set(os.listdir(osp.join(cwd, EXP, 'training_states')))

    run_main(glmha_train.main, ['-opt', TRAIN_OPT, '--auto_resume', '--force_yml', *TINY_RECIPE, 'train:total_iter=9'],
             cwd)
    resumed = train_logs(cwd, 'Deraining_GLMHA')[-1]
    assert 'Resuming training from epoch' in resumed and 'iter: 6.' in resumed
    assert re.findall(r'stage (\d)/3 from iter (\d+)', resumed) == [('3', '5')]  # derived from the iteration
    check_lrs(resumed, [7, 8, 9])
    assert osp.isfile(osp.join(cwd, EXP, 'training_states', '9.state'))
    weights = osp.join(EXP, 'models', 'net_g_latest.pth')

    # basicsr's test pipeline (glmha test -opt, tools/test.py), MATLAB-matching metrics
    proc = run_main(glmha_test.main, ['-opt', osp.join(OPTIONS, 'test_Deraining_GLMHA.yml'), '--force_yml', *TINY_NET,
                                      f'path:pretrain_network_g={weights}'], cwd)
    assert (proc.stdout + proc.stderr).count('# ssim:') == 5
    # Restormer's layout (glmha infer --task ...), then the evaluator on it
    net_opt = cwd / 'tiny_net.yml'
    net_opt.write_text(yaml.safe_dump({'network_g': dict(type='GLMHARestormer', **TINY_RESTORMER)}))
    monkeypatch.chdir(cwd)
    assert glmha(['infer', '--task', 'Deraining', '--weights', weights, '--network_opt', str(net_opt)]) == 0
    for name in SETS:
        assert os.listdir(osp.join(cwd, 'results', name)) == ['chelsea.png']
    assert evaluate.main(['--task', 'Deraining', '--workers', '1']) == 0
    out = capsys.readouterr().out
    assert 'For Rain100L dataset PSNR:' in out and 'For all datasets PSNR:' in out
    assert osp.isfile(osp.join(cwd, 'results', 'evaluation_Deraining.png'))


def test_progressive_learning_under_two_process_gloo_ddp(derain_dir):
    run([osp.join(BIN, 'torchrun'), '--nproc_per_node=2', f'--master_port={free_port()}',
         osp.join(REPO, 'tests', 'helpers', 'ddp_dump.py'), '-opt', TRAIN_OPT, '--launcher', 'pytorch',
         '--force_yml', *TINY_RECIPE, 'train:total_iter=6'], cwd=derain_dir, timeout=400)
    r0, r1 = (torch.load(osp.join(derain_dir, f'rank{r}.pth'), weights_only=True) for r in (0, 1))
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    log = train_logs(derain_dir, 'Deraining_GLMHA')[0]
    assert 'World size (gpu number): 2' in log
    stages = re.findall(r'stage (\d)/3 from iter (\d+): patch \d+x\d+, batch (\d) per GPU \((\d) in total\)', log)
    assert stages == [('1', '1', '4', '8'), ('2', '3', '2', '4'), ('3', '5', '1', '2')]
    at3 = torch.load(osp.join(derain_dir, EXP, 'models', 'net_g_3.pth'), weights_only=True)['params']
    assert any(not torch.equal(at3[k], r0[k]) for k in r0), 'weights did not change after iteration 3'

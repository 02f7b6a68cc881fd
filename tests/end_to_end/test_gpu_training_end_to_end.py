"""GPU-training options through the real entry points: NaN guard and resume, bf16 vs float32 (glmha-train's
``main`` in this process), DDP with checkpointing and accumulation (torchrun, two processes)."""
import os
import os.path as osp
import re

import pytest
import torch

from glmha_plugin.commands import train as glmha_train
from glmha_plugin.models import ImageCleanModel

from helpers.common import FAST, TINY_TRAIN, torchrun_in_sync
from helpers.runs import run_main

pytestmark = pytest.mark.slow
EXP = osp.join('experiments', 'Demo_Deraining_GLMHA')
CLEAN_MODEL = ['model_type=ImageCleanModel']   # the demo YAML uses basicsr's SRModel, which has none of the options


def _log(cwd, exp=EXP):
    logs = sorted(f for f in os.listdir(osp.join(cwd, exp)) if f.startswith('train_') and f.endswith('.log'))
    return [open(osp.join(cwd, exp, f)).read() for f in logs]


def _weights(cwd, it):
    return torch.load(osp.join(cwd, EXP, 'models', f'net_g_{it}.pth'), weights_only=True)['params']


def test_nan_batches_stop_training_and_the_last_checkpoint_resumes(workdir, monkeypatch):
    """Training batches are NaN from iteration 5 on (validation batches are left alone): the guard skips 3
    steps, then stops with a one-line error; --auto_resume continues from the last good state."""
    feed = ImageCleanModel.feed_data

    def feed_nan(self, data):
        if self.is_train and not self._validating and self.current_iter >= 5:
            data = dict(data, lq=data['lq'] * float('nan'))
        return feed(self, data)

    opts = [o for o in FAST if not o.startswith('train:total_iter')] + CLEAN_MODEL + [
        'train:total_iter=8', 'train:max_nonfinite_steps=3', 'val:val_freq=100']
    with monkeypatch.context() as patch:
        patch.setattr(ImageCleanModel, 'feed_data', feed_nan)
        proc = run_main(glmha_train.main, ['-opt', TINY_TRAIN, '--force_yml', *opts], workdir, check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert 'error: training stopped at iter 7: 3 consecutive steps had NaN/Inf' in proc.stderr
    assert 'Traceback' not in proc.stderr
    log = _log(workdir)[0]
    for it in (5, 6, 7):
        assert f'iter {it}: non-finite loss or gradients (l_pix nan); step skipped' in log
    states = set(os.listdir(osp.join(workdir, EXP, 'training_states')))
    assert states == {'2.state', '4.state', '6.state'}
    w4, w6 = _weights(workdir, 4), _weights(workdir, 6)
    assert all(torch.equal(w4[k], w6[k]) and torch.isfinite(w6[k]).all() for k in w4)  # skipped steps changed nothing

    resumed = run_main(glmha_train.main, ['-opt', TINY_TRAIN, '--auto_resume', '--force_yml', *opts], workdir)
    text = resumed.stdout + resumed.stderr
    assert 'Resuming training from epoch' in text and 'iter: 6.' in text and 'non-finite' not in text
    assert osp.isfile(osp.join(workdir, EXP, 'training_states', '8.state'))
    w8 = _weights(workdir, 8)
    assert all(torch.isfinite(v).all() for v in w8.values()) and any(not torch.equal(w8[k], w6[k]) for k in w8)


def test_torchrun_two_processes_with_checkpointing_and_accumulation(workdir):
    """2 ranks (gloo), use_checkpoint and accum_iter 2 (no_sync for the first micro-batch): identical weights."""
    opts = FAST + CLEAN_MODEL + ['network_g:use_checkpoint=true', 'train:accum_iter=2',
                                 'datasets:train:num_worker_per_gpu=1', 'datasets:train:dataset_enlarge_ratio=8']
    r0 = torchrun_in_sync(workdir, opts, timeout=500)
    log = _log(workdir)[0]
    assert 'World size (gpu number): 2' in log and 'iter:       4,' in log
    assert 'accum_iter 2 micro-batches of batch_size_per_gpu 2: the loader delivers 4 samples per GPU' in log
    assert 'use_checkpoint=True' in log                          # printed with the network's stages
    at2 = _weights(workdir, 2)
    assert any(not torch.equal(at2[k], r0[k]) for k in r0), 'weights did not change after iteration 2'


def _final_psnr(cwd, name):
    return float(re.findall(r'# psnr: ([\d.]+)', _log(cwd, osp.join('experiments', name))[0])[-1])


def test_bf16_training_ends_within_0_3_db_of_float32(workdir):
    """The demo configuration at the same seed and (fewer) iterations, float32 vs use_amp with bfloat16."""
    iters = 60
    psnr = {}
    for amp in ('false', 'true'):
        name = f'amp_{amp}'
        run_main(glmha_train.main, ['-opt', TINY_TRAIN, '--force_yml', *CLEAN_MODEL, f'name={name}', f'use_amp={amp}',
                                    'amp_bf16=true', f'train:total_iter={iters}', f'train:scheduler:periods=[{iters}]',
                                    'datasets:train:num_worker_per_gpu=0', 'datasets:train:batch_size_per_gpu=2',
                                    'datasets:train:gt_size=32', f'val:val_freq={iters}', f'logger:print_freq={iters}',
                                    f'logger:save_checkpoint_freq={iters}'], workdir)
        psnr[amp] = _final_psnr(workdir, name)
    assert 'autocast bfloat16 on cpu' in _log(workdir, osp.join('experiments', 'amp_true'))[0]
    print(f'PSNR after {iters} iterations: float32 {psnr["false"]:.3f} dB, bf16 {psnr["true"]:.3f} dB')
    assert abs(psnr['true'] - psnr['false']) <= 0.3, psnr

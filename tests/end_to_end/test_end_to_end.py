"""Subprocess runs of the real entry points on tiny data: train, test, hook, resume, torchrun/gloo."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

from helpers.common import BIN, FAST, REPO, TINY_TEST, TINY_TRAIN, clean_env, run, torchrun_in_sync, train_logs

pytestmark = pytest.mark.slow
NAME = 'Demo_Deraining_GLMHA'
EXP = osp.join('experiments', NAME)


def _train_outputs_ok(cwd):
    assert osp.isfile(osp.join(cwd, EXP, 'models', 'net_g_latest.pth'))
    assert osp.isfile(osp.join(cwd, EXP, 'training_states', '4.state'))
    log = train_logs(cwd, NAME)[0]
    assert 'Network [GLMHARestormer] is created' in log and 'End of training' in log
    return log


def _no_outputs_in_site_packages():
    import sysconfig
    site = sysconfig.get_paths()['purelib']
    for d in ('experiments', 'tb_logger', 'results'):
        assert not osp.exists(osp.join(site, d, 'Demo_Deraining_GLMHA')), f'{d}/ written into site-packages'


def test_glmha_train_then_glmha_test(workdir):
    run([osp.join(BIN, 'glmha-train'), '-opt', TINY_TRAIN, '--force_yml', *FAST], cwd=workdir)
    _train_outputs_ok(workdir)
    weights = osp.join(EXP, 'models', 'net_g_latest.pth')
    proc = run([osp.join(BIN, 'glmha-test'), '-opt', TINY_TEST, '--force_yml', f'path:pretrain_network_g={weights}'],
               cwd=workdir)
    out = osp.join(workdir, 'results', 'test_Demo_Deraining_GLMHA', 'visualization', 'DemoRainTest',
                   'chelsea_test_Demo_Deraining_GLMHA.png')
    assert osp.isfile(out)
    assert '# psnr:' in proc.stderr + proc.stdout


def test_python_m_basicsr_train_through_hook(workdir):
    """Unmodified basicsr entry: finds GLMHARestormer and writes under the working directory; runpy does not
    warn about the redirect ('basicsr.train' found in sys.modules ...); a bare option file name that is no
    local file is the shipped one (glmha_plugin.glue.option_files), and the command says so."""
    proc = run([sys.executable, '-m', 'basicsr.train', '-opt', 'Demo_Deraining_GLMHA.yml', '--force_yml', *FAST],
               cwd=workdir)
    assert f'using the shipped option file tiny/Demo_Deraining_GLMHA.yml ({TINY_TRAIN})' in proc.stderr
    assert 'RuntimeWarning' not in proc.stderr, proc.stderr[-2000:]
    _train_outputs_ok(workdir)
    _no_outputs_in_site_packages()
    proc = run([sys.executable, '-m', 'basicsr.test', '-opt', 'test_Demo_Deraining_GLMHA', '--force_yml',
                f'path:pretrain_network_g={osp.join(EXP, "models", "net_g_latest.pth")}'], cwd=workdir)
    assert 'using the shipped option file tiny/test_Demo_Deraining_GLMHA.yml' in proc.stderr
    assert 'RuntimeWarning' not in proc.stderr, proc.stderr[-2000:]
    assert osp.isdir(osp.join(workdir, 'results', 'test_Demo_Deraining_GLMHA'))
    assert '# ssim:' in proc.stderr + proc.stdout


def test_tools_train_script(workdir):
    run([sys.executable, osp.join(REPO, 'tools', 'train.py'), '-opt', TINY_TRAIN, '--force_yml', *FAST],
        cwd=workdir)
    _train_outputs_ok(workdir)


@pytest.mark.parametrize('entry', [['glmha-test'], ['python', '-m', 'basicsr.test']])
def test_refuses_to_test_without_weights(workdir, entry):
    cmd = [sys.executable, '-m', 'basicsr.test'] if entry[0] == 'python' else [osp.join(BIN, entry[0])]
    proc = run(cmd + ['-opt', TINY_TEST, '--force_yml', 'path:pretrain_network_g=~'], cwd=workdir, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith('error: refusing to test without trained weights'), proc.stderr[-2000:]
    assert not osp.exists(osp.join(workdir, 'results'))


def test_missing_option_file_is_explained(workdir):
    proc = run([osp.join(BIN, 'glmha-train'), '-opt', 'nope.yml'], cwd=workdir, check=False)
    assert proc.returncode == 2 and "option file 'nope.yml' does not exist" in proc.stderr
    assert 'is not a shipped option file' in proc.stderr


def _readable(state_path):
    try:
        torch.load(state_path, weights_only=True)
    except Exception:  # any failure to read it back: a state cut short by the kill
        return False
    return True


def test_resume_after_interruption(workdir):
    """Kill training (SIGKILL) after a checkpoint, then --auto_resume continues from the last state."""
    slow = [o for o in FAST if not o.startswith('train:total_iter')] + ['train:total_iter=100000',
                                                                        'train:scheduler:periods=[100000]']
    states = osp.join(workdir, EXP, 'training_states')
    proc = subprocess.Popen([osp.join(BIN, 'glmha-train'), '-opt', TINY_TRAIN, '--force_yml', *slow], cwd=workdir,
                            env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not osp.isfile(osp.join(states, '4.state')):
            time.sleep(0.2)
        assert osp.isfile(osp.join(states, '4.state')), 'no checkpoint within 240 s'
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    saved = sorted(int(f.split('.')[0]) for f in os.listdir(states))
    last = max(saved)
    before = {f: os.path.getsize(osp.join(states, f)) for f in os.listdir(states)}

    total = last + 4
    resumed = run([osp.join(BIN, 'glmha-train'), '-opt', TINY_TRAIN, '--auto_resume', '--force_yml',
                   *[o for o in FAST if not o.startswith('train:total_iter')], f'train:total_iter={total}'],
                  cwd=workdir)
    text = resumed.stdout + resumed.stderr
    # the newest state may have been cut mid-write by the kill: then, and only then, the one before it is used
    expected = last if _readable(osp.join(states, f'{last}.state')) else saved[-2]
    assert f'iter: {expected}.' in text, text[-3000:]
    assert 'Resuming training from epoch' in text
    assert osp.isfile(osp.join(states, f'{total}.state'))
    for f, size in before.items():  # the first run's files are intact
        if f != f'{last}.state':
            assert os.path.getsize(osp.join(states, f)) == size
    state = torch.load(osp.join(states, f'{total}.state'), weights_only=True)
    assert state['iter'] == total


def test_torchrun_two_processes_gloo_ranks_in_sync(workdir):
    """torchrun --nproc_per_node=2 ... --launcher pytorch on CPU: gloo, DDP, identical weights on both ranks."""
    r0 = torchrun_in_sync(workdir, FAST + ['datasets:train:num_worker_per_gpu=1',
                                           'datasets:train:dataset_enlarge_ratio=4'])
    log = train_logs(workdir, NAME)[0]
    assert 'World size (gpu number): 2' in log and 'iter:       4,' in log, 'no DDP training iterations ran'
    at2 = torch.load(osp.join(workdir, EXP, 'models', 'net_g_2.pth'), weights_only=True)['params']
    assert any(not torch.equal(at2[k], r0[k]) for k in r0), 'weights did not change after iteration 2'

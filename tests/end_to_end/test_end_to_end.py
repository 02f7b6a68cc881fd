"""The train/test entry points end to end on tiny data: their ``main(argv)`` in this process (the shared
``demo_run``), and real processes where the process is the point: ``python -m basicsr.train|test`` through the
import hook, ``glmha-train`` killed and resumed, ``glmha-test``'s refusal (each launcher's smoke test; the
DDP launchers: test_cluster.py, test_gpu_training_end_to_end.py, test_recipe_end_to_end.py)."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

from glmha_plugin.commands import test as glmha_test
from glmha_plugin.commands import train as glmha_train

from helpers.common import BIN, FAST, REPO, TINY_TEST, TINY_TRAIN, clean_env, import_tool, run, train_logs
from helpers.faults import loads
from helpers.runs import run_main

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


def test_glmha_train_then_glmha_test(demo_run):
    """glmha-train's and glmha-test's main (the ``demo_run`` fixture): checkpoints, states, log, test image, score."""
    assert demo_run.train.returncode == 0 and demo_run.test.returncode == 0
    _train_outputs_ok(demo_run.folder)
    out = osp.join(demo_run.folder, 'results', 'test_Demo_Deraining_GLMHA', 'visualization', 'DemoRainTest',
                   'chelsea_test_Demo_Deraining_GLMHA.png')
    assert osp.isfile(out)
    assert '# psnr:' in demo_run.test.stderr + demo_run.test.stdout


def test_scripts_and_tools_are_the_entry_points_demo_run_ran():
    """glmha-train / glmha-test (setup.cfg's console scripts) and tools/train.py / tools/test.py run the very
    ``main`` the shared run trained and tested with; each starts as a process in test_docs.py (``--help``)."""
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read(osp.join(REPO, 'setup.cfg'))
    scripts = dict(line.replace(' ', '').split('=') for line in
                   cfg.get('options.entry_points', 'console_scripts').strip().splitlines())
    assert scripts['glmha-train'] == 'glmha_plugin.commands.train:main'
    assert scripts['glmha-test'] == 'glmha_plugin.commands.test:main'
    assert import_tool('train').main is glmha_train.main and import_tool('test').main is glmha_test.main


@pytest.mark.slow
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


@pytest.mark.parametrize('entry', [pytest.param('glmha-test', marks=pytest.mark.slow), 'python -m basicsr.test'])
def test_refuses_to_test_without_weights(workdir, entry):
    """glmha-test in its own process (its smoke test); basicsr.test's redirect target in this one."""
    argv = ['-opt', TINY_TEST, '--force_yml', 'path:pretrain_network_g=~']
    if entry == 'glmha-test':
        proc = run([osp.join(BIN, entry)] + argv, cwd=workdir, check=False)
    else:
        proc = run_main(lambda a: glmha_test.main(a, redirected_from='basicsr.test'), argv, workdir, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith('error: refusing to test without trained weights'), proc.stderr[-2000:]
    assert not osp.exists(osp.join(workdir, 'results'))


def test_missing_option_file_is_explained(workdir):
    proc = run_main(glmha_train.main, ['-opt', 'nope.yml'], workdir, check=False)
    assert proc.returncode == 2 and "option file 'nope.yml' does not exist" in proc.stderr
    assert 'is not a shipped option file' in proc.stderr


@pytest.mark.slow
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
    # a save the kill cut short leaves '<iter>.state.tmp' (atomic_save), never a torn '<iter>.state'
    saved = sorted(int(f[:-len('.state')]) for f in os.listdir(states) if f.endswith('.state'))
    assert all(loads(osp.join(states, f'{it}.state')) for it in saved), os.listdir(states)
    last = max(saved)   # its network file was written before it: the newest state is the one to resume
    before = {f'{it}.state': os.path.getsize(osp.join(states, f'{it}.state')) for it in saved}

    total = last + 4
    resumed = run([osp.join(BIN, 'glmha-train'), '-opt', TINY_TRAIN, '--auto_resume', '--force_yml',
                   *[o for o in FAST if not o.startswith('train:total_iter')], f'train:total_iter={total}'],
                  cwd=workdir)
    text = resumed.stdout + resumed.stderr
    assert f'iter: {last}.' in text, text[-3000:]
    assert 'Resuming training from epoch' in text
    assert osp.isfile(osp.join(states, f'{total}.state'))
    for f, size in before.items():  # the first run's states are intact
        assert os.path.getsize(osp.join(states, f)) == size
    state = torch.load(osp.join(states, f'{total}.state'), weights_only=True)
    assert state['iter'] == total

"""Checkpoint writes under real faults, in subprocesses: a SIGKILL inside a write, read-only and full file systems
(docs/reliability.md, the table of fault classes)."""
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import time

import pytest

from glmha_plugin.glue import compat

from helpers.common import BIN, FAST, REPO, TINY_TRAIN, clean_env
from helpers.faults import loads

NAME = 'Demo_Deraining_GLMHA'


@pytest.mark.slow
def test_sigkill_during_a_checkpoint_write_leaves_no_torn_file(tmp_path):
    """basicsr's SRModel saves 46 MB checkpoints in a loop; SIGKILL as soon as iteration 3's first file appears,
    i.e. while it is being written. Every file under its real name loads (upstream: a torn net_g_3.pth), the
    half-written one is only a temporary file, and --auto_resume takes iteration 2."""
    third = ('net_g_3.', '3.')
    for attempt in range(5):
        folder = tmp_path / f'run{attempt}'
        subs = [folder / 'models', folder / 'training_states']
        proc = subprocess.Popen([sys.executable, osp.join(REPO, 'tests', 'helpers', 'save_loop.py'),
                                 str(folder)], env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.time() + 240
            while time.time() < deadline and proc.poll() is None and not any(
                    f.startswith(third) for d in subs if d.is_dir() for f in os.listdir(d)):
                time.sleep(0.001)
        finally:
            proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate()
        files = [d / f for d in subs if d.is_dir() for f in os.listdir(d)]
        assert any(f.name.startswith(third) for f in files), f'no third checkpoint within 240 s: {err.decode()[-2000:]}'
        if any(f.name.startswith(third) and not loads(f) for f in files):
            break                                          # the kill landed inside iteration 3's write
    else:
        pytest.fail('the kill never landed inside a write')
    torn = [f.name for f in files if not f.name.endswith('.tmp') and not loads(f)]
    assert not torn, f'torn files under their real names: {torn}'
    # the kill lands in net_g_3.pth.tmp almost always; on a loaded machine it may land later in iteration 3's
    # save (net_g_3.pth whole, 3.state.tmp torn): either way nothing of a fourth iteration
    assert all(f.name.startswith(('net_g_1.', 'net_g_2.', '1.', '2.', 'net_g_3.', '3.')) for f in files), files
    options = {'name': 'save_loop', 'num_gpu': 0, 'auto_resume': True, 'network_g': dict(type='Restormer', dim=32),
           'path': {'resume_state': None, 'models': str(folder / 'models'),
                    'training_states': str(folder / 'training_states')}}
    assert compat.load_resume_state(options)['iter'] == 2     # a torn .tmp of iteration 3: it is incomplete

@pytest.mark.slow
@pytest.mark.skipif(shutil.which('unshare') is None or subprocess.run(
    ['unshare', '-m', 'true'], capture_output=True).returncode != 0, reason='needs a mount namespace (unshare -m)')
def test_read_only_and_full_disks_end_with_one_line(workdir):
    """Real file systems in a private mount namespace: a read-only one refuses before anything is created, a
    16 MB one fills up at the second checkpoint; the error says so, the first checkpoint stays loadable."""
    out = workdir / 'small'
    out.mkdir()
    train = [osp.join(BIN, 'glmha-train'), '-opt', TINY_TRAIN, '--force_yml', *FAST,
             f'datasets:train:dataroot_gt={workdir}/datasets/demo_rain/train/target',
             f'datasets:train:dataroot_lq={workdir}/datasets/demo_rain/train/input',
             f'datasets:val:dataroot_gt={workdir}/datasets/demo_rain/test/target',
             f'datasets:val:dataroot_lq={workdir}/datasets/demo_rain/test/input']
    script = (f'mount -t tmpfs -o ro,size=16m tmpfs {out} && cd {out} && {" ".join(train)}; echo "rc=$?"; '
              f'mount -o remount,rw {out} && {" ".join(train)}; echo "rc=$?"; '
              f'ls -R {out}/experiments; python_ok=$({sys.executable} -c "import torch; '
              f'torch.load(\'{out}/experiments/{NAME}/models/net_g_2.pth\', weights_only=True); print(1)"); '
              f'echo "first checkpoint loads: $python_ok"')
    proc = subprocess.run(['unshare', '-m', '--propagation', 'private', 'sh', '-c', script], env=clean_env(),
                          capture_output=True, text=True, timeout=400)
    text = proc.stdout + proc.stderr
    errors = [line for line in text.splitlines() if line.startswith('error: ')]
    assert len(errors) == 2 and 'Traceback' not in text, text[-4000:]
    assert 'the file system is read-only' in errors[0] and 'the disk is full' in errors[1], errors
    assert text.count('rc=2') == 2 and 'first checkpoint loads: 1' in text, text[-3000:]

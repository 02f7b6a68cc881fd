"""Fault classes: each ends in a correct run or a one-line message before anything is created; nothing a user
had is moved or lost (docs/reliability.md, the table of fault classes)."""
import json
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import scipy.io
import torch

import spectral_data as sd
from conftest import BIN, FAST, OPTIONS, REPO, TINY_MST, TINY_RESTORMER, TINY_TRAIN, clean_env, load_yaml
from glmha_plugin import compat
from glmha_plugin.errors import CheckpointError, OptionError, UsageError
from glmha_plugin.outputs import OutputWriteError, RunLockedError, atomic_save, check_output_folder, run_lock
from glmha_plugin.validate import check_options
from test_bad_input import data, expect, opt  # noqa: F401  (fixtures: a valid tiny option dict and its data)

NAME = 'Demo_Deraining_GLMHA'
TINY = osp.join(OPTIONS, 'tiny')


def one_line(text: str) -> str:
    assert '\n' not in text.strip() and 'Traceback' not in text, text
    return text


def train_main(argv, capsys):
    """``glmha-train argv`` in this process: (exit code, stderr)."""
    from glmha_plugin.train import main
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


# ============================================================ 1. a run that trains nothing, or less than asked


def test_a_batch_larger_than_the_epoch_is_refused_with_the_numbers(opt):  # noqa: F811
    opt['datasets']['train'].update(batch_size_per_gpu=6, dataset_enlarge_ratio=1)
    opt['model_type'] = 'ImageCleanModel'
    opt['train']['accum_iter'] = 2                  # 12 samples per iteration, 10 in the set
    msg = expect(opt, 'batch_size_per_gpu 6 x train.accum_iter 2 = 12 samples, but an epoch has only 10 (10 samples)',
                 'no iteration would ever run', 'dataset_enlarge_ratio: 2')
    one_line(msg)
    opt['datasets']['train']['dataset_enlarge_ratio'] = 2
    check_options(opt)


def test_epochs_reach_total_iter_when_the_batch_does_not_divide_the_set(demo_data):
    """Upstream counts ceil(10 / 3) = 4 iterations per epoch but its loader drops the incomplete batch: 3 per
    epoch, and train_pipeline's range(total_epochs + 1) stops at 33 of 40 iterations (the symptom)."""
    import logging
    from copy import deepcopy

    import basicsr.train as bt
    folder = demo_data / 'datasets' / 'demo_rain' / 'train'
    options = dict(world_size=1, rank=0, num_gpu=0, dist=False, manual_seed=0, train=dict(total_iter=40),
               datasets={'train': dict(name='t', type='PairedImageDataset', phase='train', scale=1,
                                       dataroot_gt=str(folder / 'target'), dataroot_lq=str(folder / 'input'),
                                       io_backend={'type': 'disk'}, gt_size=16, use_hflip=False, use_rot=False,
                                       num_worker_per_gpu=0, batch_size_per_gpu=3, dataset_enlarge_ratio=1)})
    log = logging.getLogger('epochs-test')
    loader, _, _, epochs, total = compat.ORIGINALS['accum_loader'](deepcopy(options), log)
    assert len(loader) == 3 and (epochs + 1) * len(loader) == 33 < total      # upstream: 33 of 40
    assert 'full_epochs' in compat.APPLIED
    loader, _, _, epochs, total = bt.create_train_val_dataloader(deepcopy(options), log)
    assert (epochs + 1) * len(loader) >= total == 40


@pytest.mark.parametrize('key, value, fragment', [
    ('train.total_iter', 0, 'train.total_iter must be a whole number >= 1, got 0'),
    ('train.total_iter', -5, 'got -5'),
    ('train.total_iter', 'abc', "train.total_iter must be a whole number >= 1, got 'abc'"),
    ('logger.save_checkpoint_freq', 0, 'logger.save_checkpoint_freq must be a whole number >= 1'),
    ('logger.print_freq', 0, 'logger.print_freq must be a whole number >= 1'),
    ('val.val_freq', 0, 'val.val_freq must be a whole number >= 1'),
    ('val.val_freq', None, 'val.val_freq must be a whole number >= 1, got nothing (~)'),
    ('datasets.train.dataset_enlarge_ratio', 0, 'datasets.train.dataset_enlarge_ratio must be a whole number >= 1'),
    ('datasets.train.batch_size_per_gpu', 2.5, 'batch_size_per_gpu must be a whole number >= 1, got 2.5'),
    ('train.optim_g.lr', '2e-3x', "train.optim_g.lr must be a number > 0, got '2e-3x'"),
    ('train.scheduler.eta_mins', ['1e-5'], 'train.scheduler.eta_mins must be a list of values, each a number >= 0'),
    ('name', 12, 'name must be text'),
])
def test_option_values_are_checked_before_anything_runs(opt, key, value, fragment):  # noqa: F811
    node = opt
    *parents, leaf = key.split('.')
    for k in parents:
        node = node[k]
    node[leaf] = value
    one_line(expect(opt, fragment))


def test_whole_numbers_written_as_floats_pass(opt):  # noqa: F811
    """Restormer's files write ``val_freq: !!float 5e3``: a whole number, accepted."""
    opt['val']['val_freq'] = 4000.0
    opt['logger']['save_checkpoint_freq'] = 5e3
    check_options(opt)


# ============================================================ 2. --auto_resume


def _saved_run(tmp_path, iters, network=None, broken=()):
    """experiments/x with ``<it>.state`` and ``net_g_<it>.pth`` for each iteration (a tiny Restormer); ``broken``:
    {iteration: 'missing' | 'empty' | 'torn'} for the network files."""
    from glmha_plugin.archs import Restormer
    root = tmp_path / 'experiments' / 'x'
    (root / 'models').mkdir(parents=True)
    (root / 'training_states').mkdir()
    net = Restormer(**TINY_RESTORMER)
    optim = torch.optim.Adam(net.parameters())
    for it in iters:
        torch.save({'epoch': 0, 'iter': it, 'optimizers': [optim.state_dict()], 'schedulers': []},
                   root / 'training_states' / f'{it}.state')
        path = root / 'models' / f'net_g_{it}.pth'
        torch.save({'params': net.state_dict()}, path)
        how = dict(broken).get(it)
        if how == 'missing':
            path.unlink()
        elif how == 'empty':
            path.write_bytes(b'')
        elif how == 'torn':
            path.write_bytes(path.read_bytes()[:5000])
    return {'name': 'x', 'num_gpu': 0, 'auto_resume': True,
            'network_g': network or dict(type='Restormer', **TINY_RESTORMER),
            'path': {'resume_state': None, 'models': str(root / 'models'), 'experiments_root': str(root),
                     'training_states': str(root / 'training_states')}}


def _listing(folder):
    return sorted((osp.relpath(osp.join(d, f), folder), osp.getsize(osp.join(d, f)))
                  for d, _, files in os.walk(folder) for f in files)


def test_auto_resume_falls_back_past_network_files_it_cannot_load(tmp_path, caplog):
    """The newest states' network files are torn, empty and missing: the newest state whose network file is
    intact is resumed, and each skipped one is named."""
    options = _saved_run(tmp_path, (2, 4, 6, 8), broken={8: 'torn', 6: 'empty', 4: 'missing'})
    state = compat.load_resume_state(options)
    assert state['iter'] == 2 and options['path']['resume_state'].endswith('2.state')
    assert options['path']['pretrain_network_g'].endswith('net_g_2.pth')          # what basicsr loads next
    text = caplog.text
    for it, why in ((8, 'net_g_8.pth is not a readable checkpoint'), (6, 'net_g_6.pth is empty'),
                    (4, 'net_g_4.pth is missing')):
        assert f'skipped {options["path"]["training_states"]}/{it}.state: {why}' in text, text


def test_auto_resume_refuses_when_no_state_can_be_resumed(tmp_path):
    """Upstream starts over at iteration 0 (and moves the run aside); here: one line, nothing changed."""
    options = _saved_run(tmp_path, (2, 4), broken={2: 'torn', 4: 'torn'})
    before = _listing(tmp_path)
    with pytest.raises(CheckpointError) as info:
        compat.load_resume_state(options)
    msg = one_line(str(info.value))
    assert 'none of the 2 training states' in msg and 'nothing was changed' in msg
    assert _listing(tmp_path) == before


def test_auto_resume_without_any_saved_state_starts_fresh(tmp_path):
    options = _saved_run(tmp_path, ())
    assert compat.load_resume_state(options) is None


def test_resuming_after_the_network_changed_says_what_changed(tmp_path):
    from basicsr.utils.registry import ARCH_REGISTRY
    glmha = dict(type='GLMHARestormer', rank_ratio=0.5, **TINY_RESTORMER)
    options = _saved_run(tmp_path, (2,))
    net = ARCH_REGISTRY.get('GLMHARestormer')(**{k: v for k, v in glmha.items() if k != 'type'})
    torch.save({'params': net.state_dict()}, osp.join(options['path']['models'], 'net_g_2.pth'))   # trained at 0.5
    with open(osp.join(options['path']['experiments_root'], 'Demo.yml'), 'w') as f:   # basicsr's copy of the file
        f.write('# GENERATE TIME: ...\n' + json.dumps({'name': 'x', 'network_g': glmha}))
    options['network_g'] = dict(glmha, rank_ratio=0.25)
    with pytest.raises(CheckpointError) as info:
        compat.load_resume_state(options)
    msg = one_line(str(info.value))
    assert 'was saved with another network' in msg and 'rank_ratio 0.5 -> 0.25' in msg
    assert 'with different shapes' in msg
    options['auto_resume'] = False
    options['path']['resume_state'] = osp.join(options['path']['training_states'], '2.state')
    with pytest.raises(CheckpointError, match='net_g_2.pth does not fit network_g.*restore the network_g'):
        compat.load_resume_state(options)                                          # an explicit resume_state too


def test_glmha_train_auto_resume_refusal_leaves_the_run_in_place(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    root = workdir / 'experiments' / NAME
    for sub in ('models', 'training_states'):
        (root / sub).mkdir(parents=True)
    (root / 'training_states' / '2.state').write_bytes(b'PK\x03\x04 cut short')
    (root / 'models' / 'net_g_2.pth').write_bytes(b'PK\x03\x04 cut short')
    before = _listing(workdir / 'experiments')
    code, err = train_main(['-opt', TINY_TRAIN, '--auto_resume', '--force_yml', *FAST], capsys)
    assert code == 2 and err.startswith('error: --auto_resume: none of the 1 training states'), err
    one_line(err)
    lock = (f'.{NAME}.lock', os.path.getsize(workdir / 'experiments' / f'.{NAME}.lock'))
    assert _listing(workdir / 'experiments') == sorted(before + [lock])   # nothing moved aside: only the lock is new


# ============================================================ atomic checkpoint writes


def _bare_model(models):
    from basicsr.models.base_model import BaseModel
    return BaseModel({'num_gpu': 0, 'is_train': False, 'dist': False, 'path': {'models': str(models)}})


def test_a_full_disk_stops_the_save_with_a_message_and_keeps_the_previous_file(tmp_path):
    """A real ENOSPC (the temporary file is /dev/full): the save stops with the disk named; upstream logs the
    zip writer's error, gives up and carries on (exit 0), a full disk never called one."""
    model, net = _bare_model(tmp_path), torch.nn.Linear(64, 64)
    model.save_network(net, 'net_g', 2)
    good = (tmp_path / 'net_g_2.pth').read_bytes()
    os.symlink('/dev/full', tmp_path / 'net_g_2.pth.tmp')
    with pytest.raises(OutputWriteError) as info:
        model.save_network(torch.nn.Linear(64, 64), 'net_g', 2)
    assert 'the disk is full (No space left on device' in one_line(str(info.value))
    assert (tmp_path / 'net_g_2.pth').read_bytes() == good                  # the previous file is intact


def test_upstream_save_ignores_a_failed_write(tmp_path, monkeypatch, caplog):
    import basicsr.models.base_model as bm
    monkeypatch.setattr(bm.time, 'sleep', lambda s: None)
    os.symlink('/dev/full', tmp_path / 'net_g_3.pth')
    compat.ORIGINALS['atomic_checkpoints.save_network'](_bare_model(tmp_path), torch.nn.Linear(64, 64), 'net_g', 3)
    assert 'Still cannot save' in caplog.text and 'No space' not in caplog.text   # returned normally


def test_atomic_save_guard_leaves_a_fixed_upstream_alone(monkeypatch):
    from basicsr.models.base_model import BaseModel

    def fixed_upstream(self, net, net_label, current_iter, param_key='params'):
        return None

    monkeypatch.setattr(BaseModel, 'save_network', fixed_upstream)
    compat._patch_atomic_checkpoints()
    assert BaseModel.save_network is fixed_upstream


def _loads(path) -> bool:
    try:
        torch.load(path, weights_only=True)
    except Exception:  # noqa: BLE001 (any failure to read it back: cut short by the kill)
        return False
    return True


@pytest.mark.slow
def test_sigkill_during_a_checkpoint_write_leaves_no_torn_file(tmp_path):
    """basicsr's SRModel saves 46 MB checkpoints in a loop; SIGKILL as soon as iteration 3's first file appears,
    i.e. while it is being written. Every file under its real name loads (upstream: a torn net_g_3.pth), the
    half-written one is only the temporary file, and --auto_resume takes iteration 2."""
    third = ('net_g_3.', '3.')
    for attempt in range(5):
        folder = tmp_path / f'run{attempt}'
        subs = [folder / 'models', folder / 'training_states']
        proc = subprocess.Popen([sys.executable, osp.join(REPO, 'registry_tests', 'helpers', 'save_loop.py'),
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
        if any(f.name.startswith(third) and not _loads(f) for f in files):
            break                                          # the kill landed inside iteration 3's write
    else:
        pytest.fail('the kill never landed inside a write')
    torn = [f.name for f in files if not f.name.endswith('.tmp') and not _loads(f)]
    assert not torn, f'torn files under their real names: {torn}'
    assert all(f.name.startswith(('net_g_1.', 'net_g_2.', '1.', '2.', 'net_g_3.pth.tmp')) for f in files), files
    options = {'name': 'save_loop', 'num_gpu': 0, 'auto_resume': True, 'network_g': dict(type='Restormer', dim=32),
           'path': {'resume_state': None, 'models': str(folder / 'models'),
                    'training_states': str(folder / 'training_states')}}
    assert compat.load_resume_state(options)['iter'] == 2


def test_atomic_save_replaces_whole(tmp_path):
    path = str(tmp_path / 'a.pth')
    atomic_save({'x': torch.zeros(3)}, path)
    atomic_save({'x': torch.ones(3)}, path)
    assert torch.equal(torch.load(path, weights_only=True)['x'], torch.ones(3))
    assert os.listdir(tmp_path) == ['a.pth']


# ============================================================ one run per name, output folder


def test_a_second_run_with_the_same_name_refuses_while_the_first_runs(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    first = workdir / 'experiments' / NAME
    first.mkdir(parents=True)
    (first / 'notes.txt').write_text('the first run')
    with run_lock(str(workdir / 'experiments'), NAME):            # the first run holds its name
        code, err = train_main(['-opt', TINY_TRAIN, '--force_yml', *FAST], capsys)
    assert code == 2 and err.startswith(f"error: experiment '{NAME}' is in use by process {os.getpid()}"), err
    one_line(err)
    assert sorted(os.listdir(workdir / 'experiments')) == [f'.{NAME}.lock', NAME]    # not moved aside
    assert (first / 'notes.txt').read_text() == 'the first run'
    with run_lock(str(workdir / 'experiments'), NAME), pytest.raises(RunLockedError):
        with run_lock(str(workdir / 'experiments'), NAME):
            pass


def test_a_crashed_run_leaves_no_stale_lock(tmp_path):
    """The kernel drops a flock when its process dies, however it dies."""
    lock = tmp_path / f'.{NAME}.lock'
    holder = subprocess.Popen([sys.executable, '-c', 'import fcntl, os, sys, time\n'
                               f'fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT)\n'
                               'fcntl.flock(fd, fcntl.LOCK_EX); print("held", flush=True); time.sleep(600)'],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        with pytest.raises(RunLockedError, match='is in use'):
            with run_lock(str(tmp_path), NAME):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with run_lock(str(tmp_path), NAME):
        pass


def test_an_output_folder_that_takes_no_files_is_named(tmp_path):
    with pytest.raises(OutputWriteError) as info:
        check_output_folder('/sys/glmha-experiments')                # sysfs: no new files, for root too
    assert any(w in one_line(str(info.value)) for w in ('no permission to write there', 'read-only'))
    with pytest.raises(OutputWriteError, match=r'only .* free under .* one checkpoint of this run needs about'):
        check_output_folder(str(tmp_path / 'experiments'), need_bytes=1 << 60)
    check_output_folder(str(tmp_path / 'experiments'), need_bytes=1)
    assert os.listdir(tmp_path) == []                                 # the probe left nothing


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


# ============================================================ 3. YAML that means something else


def _write(path, content: bytes):
    path.write_bytes(content)
    return str(path)


def test_duplicate_keys_are_refused_with_both_lines(tmp_path):
    from glmha_plugin.options import read_option_file
    path = _write(tmp_path / 'o.yml', b'name: x\ntrain:\n  lr: 1\n  total_iter: 4\n  lr: 2\n')
    with pytest.raises(UsageError) as info:
        read_option_file(path)
    assert "key 'lr' appears twice in one block (lines 3 and 5)" in one_line(str(info.value))
    read_option_file(_write(tmp_path / 'ok.yml', b'a: &b {lr: 1}\nc:\n  <<: *b\n  lr: 2\n'))   # a merge override


def test_non_utf8_bytes_are_named_with_their_offset(tmp_path):
    from glmha_plugin.options import read_option_file
    path = _write(tmp_path / 'o.yml', b'name: x\n# caf\xe9\n')
    with pytest.raises(UsageError, match=r'is not UTF-8 text: byte 0xe9 at offset 13 \(line 2\)'):
        read_option_file(path)


def test_invalid_yaml_is_one_line(tmp_path):
    from glmha_plugin.options import read_option_file
    with pytest.raises(UsageError) as info:
        read_option_file(_write(tmp_path / 'o.yml', b'a:\n\tb: 1\n'))
    assert 'line 2, column 1' in one_line(str(info.value))


def test_exponent_numbers_are_numbers_for_the_check_and_for_basicsr(tmp_path):
    """``lr: 2e-3`` is text to YAML 1.1 (PyYAML, upstream basicsr: dies in torch.optim); read as a number by the
    plugin and by basicsr's own parse_options (compat), with a note; a quoted '2e-3' stays text."""
    import yaml
    from basicsr.utils import options as bo

    from glmha_plugin.cli import argv_as
    from glmha_plugin.options import read_option_file
    text = b'name: x\nnum_gpu: 0\ndatasets: {}\npath: {}\ntrain:\n  lr: 2e-3\n  eta_mins: [1e-5]\n  tag: "2e-3"\n'
    path = _write(tmp_path / 'o.yml', text)
    assert yaml.safe_load(text)['train']['lr'] == '2e-3'                       # the symptom
    assert yaml.load(text, Loader=compat.ORIGINALS['exponent_numbers.ordered_yaml']()[0])['train']['lr'] == '2e-3'
    options, notes = read_option_file(path)
    assert options['train'] == {'lr': 0.002, 'eta_mins': [1e-5], 'tag': '2e-3'}
    assert '2e-3 (line 6), 1e-5 (line 7) read as numbers' in notes[0]
    with argv_as(['-opt', path, '--force_yml', 'train:eta_mins=[0]', 'train:tag=3e-4']):
        parsed, _ = bo.parse_options(str(tmp_path), is_train=False)
    assert parsed['train']['lr'] == 0.002 and parsed['train']['tag'] == 3e-4
    assert compat.ORIGINALS['exponent_numbers.postprocess']('3e-4') == '3e-4'   # upstream --force_yml: text


# ============================================================ 4. data checked beyond the first sample


def test_a_bad_file_later_in_the_folder_is_found_before_training(opt, data):  # noqa: F811
    """The first sample still loads; the last input image of the training set is cut short."""
    inputs = data / 'train' / 'input'
    last = inputs / sorted(os.listdir(inputs))[-1]
    last.write_bytes(last.read_bytes()[:len(last.read_bytes()) // 2])
    from basicsr.data import build_dataset
    first = dict(opt['datasets']['train'], phase='train', scale=1)
    assert build_dataset(first)[0]['lq'].shape[0] == 3                 # the first-sample check alone passes
    msg = one_line(expect(opt, 'datasets.train (DemoRainTrain): a problem in 20 files:', f'{last} is cut short'))
    assert 'no PNG end chunk' in msg


def test_pairs_whose_sizes_disagree_are_named(opt, data):  # noqa: F811
    path = data / 'test' / 'input' / 'chelsea.png'
    cv2.imwrite(str(path), cv2.imread(str(path))[:-2])
    one_line(expect(opt, f"target {data / 'test' / 'target' / 'chelsea.png'} is 27x20 but its input {path} is 27x18"))


def test_output_channels_must_match_the_targets(opt):  # noqa: F811
    opt['network_g']['out_channels'] = 1                    # L1 would broadcast and train silently wrong
    one_line(expect(opt, 'targets have 3 channels but network_g puts out 1'))


@pytest.mark.parametrize('ext', ['png', 'jpg', 'bmp'])
def test_image_headers_and_cut_files(tmp_path, ext):
    from glmha_plugin.data.file_check import BadFile, image_header
    img = (np.random.default_rng(0).random((30, 40, 3)) * 255).astype(np.uint8)
    path = str(tmp_path / f'a.{ext}')
    cv2.imwrite(path, img)
    header = image_header(path)
    assert (header.width, header.height, header.channels) == (40, 30, 3)
    content = open(path, 'rb').read()
    open(path, 'wb').write(content + bytes(range(256)) * 64)          # data appended after the end marker
    assert image_header(path) == header
    open(path, 'wb').write(content[:len(content) // 2])
    with pytest.raises(BadFile, match='cut short'):
        image_header(path)


def test_mat_headers_and_cut_files(tmp_path):
    from glmha_plugin.data.file_check import BadFile, mat_header
    cube = np.random.default_rng(0).random((6, 7, 5)).astype(np.float32)
    scipy.io.savemat(tmp_path / 'v5.mat', {'img': cube})
    scipy.io.savemat(tmp_path / 'v5z.mat', {'img': (cube * 65535).astype(np.uint16)}, do_compression=True)
    sd.write_v73(str(tmp_path / 'v73.mat'), 'img', cube)
    for name, cls in (('v5.mat', 'single'), ('v5z.mat', 'uint16'), ('v73.mat', 'single')):
        path = str(tmp_path / name)
        assert mat_header(path, ['img']) == ((6, 7, 5), 'img', cls)
        content = open(path, 'rb').read()
        open(path, 'wb').write(content[:-3])
        with pytest.raises(BadFile, match='cut short'):
            mat_header(path, ['img'])


@pytest.fixture
def spectral(tmp_path, monkeypatch):
    sd.make_arad(str(tmp_path / 'datasets' / 'arad'))
    sd.make_cassi(str(tmp_path / 'datasets' / 'cassi'))
    monkeypatch.chdir(tmp_path)
    return tmp_path / 'datasets'


def test_a_cube_with_another_band_count_is_named(spectral):
    scipy.io.savemat(spectral / 'cassi' / 'Truth' / 'scene02.mat', {'img': np.random.rand(*sd.CASSI_TEST_SIZE, 27)})
    with pytest.raises(OptionError) as info:
        check_options(load_yaml(osp.join(TINY, 'Tiny_CASSI_MST_GLMHA.yml')))
    assert 'scene02.mat has 27 bands but network_g expects 28' in one_line(str(info.value))


def test_the_data_range_of_16_bit_cubes(spectral):
    options = load_yaml(osp.join(TINY, 'Tiny_CASSI_MST_GLMHA.yml'))
    check_options(options)
    options['datasets']['train']['data_range'] = 1               # the training cubes hold 0..65535
    one_line(expect(options, 'divided by data_range 1 reaches', 'not [0, 1]', 'set data_range'))
    for i in (1, 2, 3):                                      # stored as uint16: caught from the headers
        scipy.io.savemat(spectral / 'cassi' / 'train' / f'scene{i}.mat', {'img_expand': np.full(
            (*sd.CASSI_TRAIN_SIZE, sd.CASSI_BANDS), 3, np.uint16)})
    options['datasets']['train']['data_range'] = 255
    one_line(expect(options, 'the scenes are uint16 (values up to 65535', 'but data_range is 255'))


def test_an_rgb_image_smaller_than_its_cube(spectral):
    path = spectral / 'arad' / 'Train_RGB' / 'ARAD_1K_0002.jpg'
    cv2.imwrite(str(path), cv2.imread(str(path))[:-4, :-4])
    with pytest.raises(OptionError) as info:
        check_options(load_yaml(osp.join(TINY, 'Tiny_SpectralRecon_MST++_GLMHA.yml')))
    assert f'{osp.join("datasets", "arad", "Train_RGB", "ARAD_1K_0002.jpg")} (32 x 40) is smaller than its cube' \
        in one_line(str(info.value))


# ============================================================ 5. other raw tracebacks


def test_metrics_without_ground_truth(opt, data):  # noqa: F811
    """glmha-test with metrics on a dataset without targets (basicsr: KeyError 'gt' after results/ exists)."""
    opt['datasets'] = {'test_1': dict(name='NoTargets', type='SingleImageDataset', io_backend={'type': 'disk'},
                                      dataroot_lq=str(data / 'test' / 'input'))}
    one_line(expect(opt, 'datasets.test_1 (NoTargets): val.metrics are set but this dataset has no ground truth',
                    is_train=False))
    del opt['val']['metrics']
    check_options(opt, is_train=False)


def test_launcher_pytorch_outside_torchrun(opt, monkeypatch):  # noqa: F811
    for var in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(OptionError) as info:
        check_options(opt, launcher='pytorch')
    assert one_line(str(info.value)).startswith('--launcher pytorch: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, '
                                                'MASTER_PORT not set: start the command with torchrun')
    for var, value in (('RANK', '0'), ('WORLD_SIZE', '1'), ('LOCAL_RANK', '0'), ('MASTER_ADDR', '127.0.0.1'),
                       ('MASTER_PORT', '29500')):
        monkeypatch.setenv(var, value)
    check_options(opt, launcher='pytorch')


def test_evaluate_a_result_identical_to_its_target(tmp_path, demo_data, capsys):
    """PSNR inf: the table says so, the per-image JSON is written (first), the plot draws it."""
    from glmha_plugin.evaluate import main
    target = demo_data / 'datasets' / 'demo_rain' / 'test' / 'target' / 'chelsea.png'
    rain = demo_data / 'datasets' / 'demo_rain' / 'test' / 'input' / 'chelsea.png'
    (tmp_path / 'gt' / 'Rain100L' / 'target').mkdir(parents=True)
    (tmp_path / 'res' / 'Rain100L').mkdir(parents=True)
    for stem, result in (('same', target), ('other', rain)):
        shutil.copy(target, tmp_path / 'gt' / 'Rain100L' / 'target' / f'{stem}.png')
        shutil.copy(result, tmp_path / 'res' / 'Rain100L' / f'{stem}.png')
    assert main(['--task', 'Deraining', '--result_dir', str(tmp_path / 'res'), '--gt_dir', str(tmp_path / 'gt'),
                 '--dataset', 'Rain100L', '--workers', '1']) == 0
    out = capsys.readouterr().out
    assert 'For Rain100L dataset PSNR: inf' in out and '1 of 2 Rain100L results are identical' in out
    with open(tmp_path / 'res' / 'evaluation_Deraining.json', encoding='utf-8') as f:
        scores = json.load(f)
    assert scores['Rain100L']['images']['same'] == [float('inf'), 1.0]
    assert osp.getsize(tmp_path / 'res' / 'evaluation_Deraining.png') > 0


def test_swap_attention_with_a_rank_ratio_that_is_no_number():
    from glmha_plugin.archs import Restormer
    from glmha_plugin.swap import SwapError, swap_attention
    net = Restormer(**TINY_RESTORMER)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(SwapError) as info:
        swap_attention(net, rank_ratio='abc')
    assert one_line(str(info.value)) == ("rank_ratio must be a number in (0, 1] or {module-path prefix: a number}, "
                                         "got 'abc'")
    with pytest.raises(SwapError, match="rank must be a whole number .* got 2.5 in {'encoder': 2.5}"):
        swap_attention(net, rank={'encoder': 2.5})
    assert net.state_dict().keys() == before.keys()                     # nothing was swapped


def test_convert_checkpoint_with_an_mst_option_file(tmp_path, capsys):
    """MST's MS-MSA layers are converted like Restormer's MDTA; at full rank without guidance exactly."""
    from basicsr.utils.registry import ARCH_REGISTRY

    from glmha_plugin.convert import main
    mst = ARCH_REGISTRY.get('MST')(**TINY_MST).eval()
    torch.save({'params': mst.state_dict()}, tmp_path / 'mst.pth')
    yml = tmp_path / 'glmha.yml'
    yml.write_text(json.dumps({'network_g': dict(type='GLMHAMST', rank_ratio=1.0, guidance='none', **TINY_MST)}))
    assert main(['--input', str(tmp_path / 'mst.pth'), '--output', str(tmp_path / 'out.pth'), '-opt', str(yml)]) == 0
    glmha = ARCH_REGISTRY.get('GLMHAMST')(rank_ratio=1.0, guidance='none', **TINY_MST).eval()
    glmha.load_state_dict(torch.load(tmp_path / 'out.pth', weights_only=True)['params'], strict=True)
    x, mask = torch.rand(1, 28, 32, 32), torch.rand(1, 28, 32, 32 + 27 * 2)   # Phi: band i shifted by 2 i
    with torch.no_grad():
        assert torch.allclose(glmha(x, mask), mst(x, mask), atol=1e-5)
    assert main(['--input', str(tmp_path / 'mst.pth'), '--output', str(tmp_path / 'o2.pth'),
                 '-opt', osp.join(TINY, 'Tiny_CASSI_MST_GLMHA.yml')]) == 0      # the shipped (rank 0.5) file
    restormer = tmp_path / 'restormer.pth'
    torch.save({'params': ARCH_REGISTRY.get('Restormer')(**TINY_RESTORMER).state_dict()}, restormer)
    capsys.readouterr()
    assert main(['--input', str(restormer), '--output', str(tmp_path / 'o3.pth'), '-opt', str(yml)]) == 2
    err = one_line(capsys.readouterr().err)
    assert "is not a MST (CSA) checkpoint matching network_g" in err and not (tmp_path / 'o3.pth').exists()

"""Fault classes in the pre-flight check, the basicsr adaptations and the entry points: each ends in a correct run
or a one-line message before anything is created, and nothing a user had is moved or lost (docs/reliability.md,
the table of fault classes). Fixtures ``opt`` / ``data``: tests/glue/conftest.py."""
import json
import os
import os.path as osp
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest
import scipy.io
import torch

from glmha_plugin.errors import CheckpointError, OptionError, UsageError
from glmha_plugin.glue import compat
from glmha_plugin.glue.outputs import RunLockedError, check_output_folder, run_lock
from glmha_plugin.glue.preflight import check_options
from glmha_plugin.models.saving import OutputWriteError, atomic_save

from helpers import spectral_data as sd
from helpers.common import FAST, OPTIONS, TINY_RESTORMER, TINY_TRAIN, expect, load_yaml
from helpers.faults import one_line

NAME = 'Demo_Deraining_GLMHA'
TINY = osp.join(OPTIONS, 'tiny')


def train_main(argv, capsys):
    """``glmha-train argv`` in this process: (exit code, stderr)."""
    from glmha_plugin.commands.train import main
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err

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

def _bare_model(models):
    from basicsr.models.base_model import BaseModel
    return BaseModel({'num_gpu': 0, 'is_train': False, 'dist': False, 'path': {'models': str(models)}})

def _write(path, content: bytes):
    path.write_bytes(content)
    return str(path)

def test_a_batch_larger_than_the_epoch_is_refused_with_the_numbers(opt):
    opt['datasets']['train'].update(batch_size_per_gpu=6, dataset_enlarge_ratio=1)
    opt['model_type'] = 'ImageCleanModel'
    opt['train']['accum_iter'] = 2                  # 12 samples per iteration, 10 in the set
    msg = expect(opt, 'batch_size_per_gpu 6 x train.accum_iter 2 = 12 samples, but an epoch has only 10 (10 samples)',
                 'no iteration would ever run', 'dataset_enlarge_ratio: 2')
    one_line(msg)
    opt['datasets']['train']['dataset_enlarge_ratio'] = 2
    check_options(opt)

def test_under_a_launcher_each_process_gets_its_share_of_the_epoch(monkeypatch):
    """torchrun / srun split the training set between the processes: 10 samples over 2 processes are 5 per
    process, too few for a batch of 6 (basicsr's DistributedSampler, then the dropped incomplete batch)."""
    from glmha_plugin.glue.preflight import check_epoch
    opt = {'num_gpu': 0, 'train': {}, 'datasets': {'train': {'name': 'd', 'batch_size_per_gpu': 6}}}
    check_epoch(opt, 10, 'none')
    for launcher, var in (('pytorch', 'WORLD_SIZE'), ('slurm', 'SLURM_NTASKS')):
        monkeypatch.setenv(var, '2')
        with pytest.raises(OptionError, match=r'= 6 samples, but an epoch has only 5 \(10 samples / 2 processes\).*'
                                              r'set dataset_enlarge_ratio: 2'):
            check_epoch(opt, 10, launcher)
        monkeypatch.delenv(var)

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
def test_option_values_are_checked_before_anything_runs(opt, key, value, fragment):
    node = opt
    *parents, leaf = key.split('.')
    for k in parents:
        node = node[k]
    node[leaf] = value
    one_line(expect(opt, fragment))

def test_whole_numbers_written_as_floats_pass(opt):
    """Restormer's files write ``val_freq: !!float 5e3``: a whole number, accepted."""
    opt['val']['val_freq'] = 4000.0
    opt['logger']['save_checkpoint_freq'] = 5e3
    check_options(opt)

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

def test_auto_resume_refuses_network_files_without_a_state(tmp_path):
    """Network files but no training state: not a fresh start (upstream would move the run aside)."""
    options = _saved_run(tmp_path, (2,))
    (tmp_path / 'experiments' / 'x' / 'training_states' / '2.state').unlink()
    before = _listing(tmp_path)
    with pytest.raises(CheckpointError, match=r"experiment 'x' has network files in .* but no training state"):
        compat.load_resume_state(options)
    assert _listing(tmp_path) == before

def test_auto_resume_leaves_out_the_networks_basicsr_does_not_reload(tmp_path):
    """path.ignore_resume_networks (a distillation's teacher, never saved): no net_teacher_<iter>.pth is needed."""
    options = _saved_run(tmp_path, (2,))
    options['network_teacher'] = dict(type='Restormer', **TINY_RESTORMER)
    options['path']['ignore_resume_networks'] = ['network_teacher']
    assert compat.load_resume_state(options)['iter'] == 2

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

def test_atomic_save_replaces_whole(tmp_path):
    path = str(tmp_path / 'a.pth')
    atomic_save({'x': torch.zeros(3)}, path)
    atomic_save({'x': torch.ones(3)}, path)
    assert torch.equal(torch.load(path, weights_only=True)['x'], torch.ones(3))
    assert os.listdir(tmp_path) == ['a.pth']

def test_atomic_save_retries_other_write_errors_then_stops(tmp_path):
    """An error that is not disk full / read-only (here: the temporary name is a folder, EISDIR) is tried
    ``retries`` times, then stops the save with the count; it never returns as if the file were written."""
    path = str(tmp_path / 'a.pth')
    atomic_save({'x': torch.zeros(3)}, path)
    (tmp_path / 'a.pth.tmp').mkdir()
    with pytest.raises(OutputWriteError, match=r"cannot write .*a\.pth.* after 3 tries; the previous checkpoints "
                                               r"are intact"):
        atomic_save({'x': torch.ones(3)}, path, retries=3, delay=0)
    assert torch.equal(torch.load(path, weights_only=True)['x'], torch.zeros(3))

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

def test_only_rank_zero_takes_the_run_lock(tmp_path, monkeypatch):
    """Under torchrun / slurm rank 0 holds the name; the other ranks of the same run take no lock (with the lock
    on every rank, ranks 1, 2, ... would refuse each other)."""
    from glmha_plugin.glue.outputs import rank_zero
    for var in ('RANK', 'SLURM_PROCID'):
        monkeypatch.delenv(var, raising=False)
    assert rank_zero()                                            # not launched
    for var in ('RANK', 'SLURM_PROCID'):
        monkeypatch.setenv(var, '1')
        assert not rank_zero()
        with run_lock(str(tmp_path / 'experiments'), NAME) as held, run_lock(str(tmp_path / 'experiments'), NAME):
            assert held is None
        assert not (tmp_path / 'experiments').exists()
        monkeypatch.setenv(var, '0')
        assert rank_zero()
        with run_lock(str(tmp_path / 'experiments'), NAME) as held:
            assert held == str(tmp_path / 'experiments' / f'.{NAME}.lock')
        monkeypatch.delenv(var)
        (tmp_path / 'experiments' / f'.{NAME}.lock').unlink()
        (tmp_path / 'experiments').rmdir()

def test_an_output_folder_that_takes_no_files_is_named(tmp_path):
    with pytest.raises(OutputWriteError) as info:
        check_output_folder('/sys/glmha-experiments')                # sysfs: no new files, for root too
    assert any(w in one_line(str(info.value)) for w in ('no permission to write there', 'read-only'))
    with pytest.raises(OutputWriteError, match=r'only .* free under .* one checkpoint of this run needs about'):
        check_output_folder(str(tmp_path / 'experiments'), need_bytes=1 << 60)
    check_output_folder(str(tmp_path / 'experiments'), need_bytes=1)
    assert os.listdir(tmp_path) == []                                 # the probe left nothing

def test_duplicate_keys_are_refused_with_both_lines(tmp_path):
    from glmha_plugin.glue.option_files import read_option_file
    path = _write(tmp_path / 'o.yml', b'name: x\ntrain:\n  lr: 1\n  total_iter: 4\n  lr: 2\n')
    with pytest.raises(UsageError) as info:
        read_option_file(path)
    assert "key 'lr' appears twice in one block (lines 3 and 5)" in one_line(str(info.value))
    read_option_file(_write(tmp_path / 'ok.yml', b'a: &b {lr: 1}\nc:\n  <<: *b\n  lr: 2\n'))   # a merge override
    with pytest.raises(UsageError, match=r"key 'lr' appears twice in one block \(line 2, columns 9 and 16\)"):
        read_option_file(_write(tmp_path / 'flow.yml', b'name: x\ntrain: {lr: 1, lr: 2}\n'))   # one line, flow style

def test_non_utf8_bytes_are_named_with_their_offset(tmp_path):
    from glmha_plugin.glue.option_files import read_option_file
    path = _write(tmp_path / 'o.yml', b'name: x\n# caf\xe9\n')
    with pytest.raises(UsageError, match=r'is not UTF-8 text: byte 0xe9 at offset 13 \(line 2\)'):
        read_option_file(path)

def test_invalid_yaml_is_one_line(tmp_path):
    from glmha_plugin.glue.option_files import read_option_file
    with pytest.raises(UsageError) as info:
        read_option_file(_write(tmp_path / 'o.yml', b'a:\n\tb: 1\n'))
    assert 'line 2, column 1' in one_line(str(info.value))

def test_exponent_numbers_are_numbers_for_the_check_and_for_basicsr(tmp_path):
    """``lr: 2e-3`` is text to YAML 1.1 (PyYAML, upstream basicsr: dies in torch.optim); read as a number by the
    plugin and by basicsr's own parse_options (compat), with a note; a quoted '2e-3' stays text."""
    import yaml
    from basicsr.utils import options as bo

    from glmha_plugin.commands.cli import argv_as
    from glmha_plugin.glue.option_files import read_option_file
    text = (b'name: x\nnum_gpu: 0\ndatasets: {}\npath: {}\ntrain:\n  lr: 2e-3\n  eta_mins: [1e-5]\n  tag: "2e-3"\n'
            b'  total_iter: 3.0e5\n')
    path = _write(tmp_path / 'o.yml', text)
    assert yaml.safe_load(text)['train']['lr'] == '2e-3'                       # the symptom
    assert yaml.load(text, Loader=compat.ORIGINALS['exponent_numbers.ordered_yaml']()[0])['train']['lr'] == '2e-3'
    options, notes = read_option_file(path)
    assert yaml.safe_load(text)['train']['total_iter'] == '3.0e5'              # no exponent sign: text too
    assert options['train'] == {'lr': 0.002, 'eta_mins': [1e-5], 'tag': '2e-3', 'total_iter': 300000.0}
    assert '2e-3 (line 6), 1e-5 (line 7), 3.0e5 (line 9) read as numbers' in notes[0]
    with argv_as(['-opt', path, '--force_yml', 'train:eta_mins=[0]', 'train:tag=3e-4']):
        parsed, _ = bo.parse_options(str(tmp_path), is_train=False)
    assert parsed['train']['lr'] == 0.002 and parsed['train']['tag'] == 3e-4 and parsed['train']['total_iter'] == 3e5
    assert compat.ORIGINALS['exponent_numbers.postprocess']('3e-4') == '3e-4'   # upstream --force_yml: text

def test_a_bad_file_later_in_the_folder_is_found_before_training(opt, data):
    """The first sample still loads; the last input image of the training set is cut short."""
    inputs = data / 'train' / 'input'
    last = inputs / sorted(os.listdir(inputs))[-1]
    last.write_bytes(last.read_bytes()[:len(last.read_bytes()) // 2])
    from basicsr.data import build_dataset
    first = dict(opt['datasets']['train'], phase='train', scale=1)
    assert build_dataset(first)[0]['lq'].shape[0] == 3                 # the first-sample check alone passes
    msg = one_line(expect(opt, 'datasets.train (DemoRainTrain): a problem in 20 files:', f'{last} is cut short'))
    assert 'no PNG end chunk' in msg

def test_pairs_whose_sizes_disagree_are_named(opt, data):
    path = data / 'test' / 'input' / 'chelsea.png'
    cv2.imwrite(str(path), cv2.imread(str(path))[:-2])
    one_line(expect(opt, f"target {data / 'test' / 'target' / 'chelsea.png'} is 27x20 but its input {path} is 27x18"))

def test_output_channels_must_match_the_targets(opt):
    opt['network_g']['out_channels'] = 1                    # L1 would broadcast and train silently wrong
    one_line(expect(opt, 'targets have 3 channels but network_g puts out 1'))

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

def test_metrics_without_ground_truth(opt, data):
    """glmha-test with metrics on a dataset without targets (basicsr: KeyError 'gt' after results/ exists)."""
    opt['datasets'] = {'test_1': dict(name='NoTargets', type='SingleImageDataset', io_backend={'type': 'disk'},
                                      dataroot_lq=str(data / 'test' / 'input'))}
    one_line(expect(opt, 'datasets.test_1 (NoTargets): val.metrics are set but this dataset has no ground truth',
                    is_train=False))
    del opt['val']['metrics']
    check_options(opt, is_train=False)

def test_launcher_pytorch_outside_torchrun(opt, monkeypatch):
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

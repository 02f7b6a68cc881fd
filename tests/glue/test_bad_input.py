"""Bad-input matrix: each mistake gives a message naming the problem and the fix, before any file is written."""
import os
import pickle

import pytest
import torch

from glmha_plugin.commands import train as glmha_train
from glmha_plugin.errors import CheckpointError, OptionError
from glmha_plugin.glue.checkpoints import load_checkpoint, load_into
from glmha_plugin.glue.preflight import apply_overrides, check_options

from helpers.common import TINY_RESTORMER, TINY_TRAIN, expect
from helpers.runs import run_main


def test_valid_options_pass(opt):
    check_options(opt)


def test_unknown_network_type(opt):
    opt['network_g']['type'] = 'GLMHARestomer'
    expect(opt, "network_g.type", "Did you mean 'GLMHARestormer'", 'Valid names:')


def test_unknown_model_type(opt):
    opt['model_type'] = 'SRModle'
    expect(opt, 'model_type', "'SRModle'", "Did you mean 'SRModel'")


def test_unknown_dataset_type(opt):
    opt['datasets']['val']['type'] = 'PairedImageDatset'
    expect(opt, 'datasets.val', "Did you mean 'PairedImageDataset'")


def test_unknown_metric_type(opt):
    opt['val']['metrics']['psnr']['type'] = 'calculate_psnrr'
    expect(opt, 'val.metrics.psnr.type', "Did you mean 'calculate_psnr'")


def test_unknown_loss_type(opt):
    opt['train']['pixel_opt']['type'] = 'L1loss'
    expect(opt, 'train.pixel_opt.type', "Did you mean 'L1Loss'")


def test_wrong_input_channels_for_the_data(opt):
    opt['network_g']['inp_channels'] = 1
    expect(opt, 'samples have 3 channels but network_g expects 1', 'inp_channels')


def test_rank_larger_than_channels(opt):
    opt['network_g']['rank'] = 100
    expect(opt, 'encoder_level1.0.attn (8 channels', 'out of range', 'rank <= 8')


def test_rank_prefix_matching_no_layer(opt):
    opt['network_g']['rank'] = {'encoder_level1': 4, 'encoder_leve2': 4}
    expect(opt, "rank: prefix(es) ['encoder_leve2'] match no attention layer", "did you mean 'encoder_level2'")


def test_rank_not_divisible_by_heads(opt):
    opt['network_g']['rank'] = 3
    expect(opt, 'not divisible by the 2 heads', 'use a multiple of 2')


def test_misspelled_network_option(opt):
    opt['network_g']['rank_ratoi'] = 0.5
    expect(opt, "GLMHARestormer has no option 'rank_ratoi'. Did you mean 'rank_ratio'")


def test_misspelled_key_in_our_dataset_block(opt):
    train = opt['datasets']['train']
    train.update(type='Dataset_PairedImage', geometric_aug=True)
    for key in ('use_hflip', 'use_rot'):  # basicsr's PairedImageDataset keys, not Dataset_PairedImage's
        train.pop(key)
    expect(opt, "datasets.train (Dataset_PairedImage): unknown option 'geometric_aug'. Did you mean 'geometric_augs'")


def test_misspelled_key_in_the_recipe(opt):
    opt['model_type'] = 'ImageCleanModel'
    opt['train']['mixing_augs'] = {'mixup': True, 'mixup_betta': 1.2}
    expect(opt, "train.mixing_augs: unknown option 'mixup_betta'. Did you mean 'mixup_beta'")


def test_missing_dataset_folder(opt, data):
    opt['datasets']['train']['dataroot_lq'] = str(data / 'nowhere')
    expect(opt, 'datasets.train (DemoRainTrain).dataroot_lq', 'does not exist')


def test_empty_dataset_folder(opt, tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    opt['datasets']['val']['dataroot_gt'] = str(empty)
    expect(opt, 'datasets.val (DemoRainTest).dataroot_gt', 'is empty')


def test_unpaired_names(opt, data):
    os.rename(data / 'train' / 'input' / 'coffee.png', data / 'train' / 'input' / 'coffee_rain.png')
    expect(opt, 'do not pair up', 'coffee.png', 'coffee_rain.png')


def test_pairing_follows_the_datasets_own_rule(tmp_path):
    """Dataset_PairedImage pairs by stem (extensions may differ): the check accepts what it accepts and reports
    its unpaired files, instead of applying basicsr's same-extension rule."""
    import cv2
    import numpy as np

    from glmha_plugin.glue.preflight import check_dataset
    for sub in ('input', 'target'):
        (tmp_path / sub).mkdir()
    img = np.full((24, 24, 3), 128, np.uint8)
    cv2.imwrite(str(tmp_path / 'input' / 'a.jpg'), img)
    cv2.imwrite(str(tmp_path / 'target' / 'a.png'), img)
    ds = dict(name='Mixed', type='Dataset_PairedImage', dataroot_lq=str(tmp_path / 'input'),
              dataroot_gt=str(tmp_path / 'target'), io_backend={'type': 'disk'})
    check_dataset('val', ds, 3)
    cv2.imwrite(str(tmp_path / 'target' / 'b.png'), img)
    with pytest.raises(OptionError, match="datasets.val \\(Mixed\\).*unpaired images.*1 in target without a "
                                          "partner in input: b"):
        check_dataset('val', ds, 3)


def test_corrupt_image(opt, data):
    (data / 'test' / 'input' / 'chelsea.png').write_bytes(b'\x89PNG\r\n\x1a\n truncated')
    expect(opt, 'datasets.val (DemoRainTest): cannot decode image', 'chelsea.png', 'corrupt or not an image')


def test_lmdb_without_the_requested_keys(opt, data, tmp_path):
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs
    folder = data / 'test' / 'target'
    make_lmdb_from_imgs(str(folder), str(tmp_path / 'gt.lmdb'), ['chelsea.png'], ['chelsea'], map_size=1 << 24)
    make_lmdb_from_imgs(str(folder), str(tmp_path / 'lq.lmdb'), ['chelsea.png'], ['other_key'], map_size=1 << 24)
    opt['datasets']['val'].update(dataroot_gt=str(tmp_path / 'gt.lmdb'), dataroot_lq=str(tmp_path / 'lq.lmdb'),
                                  io_backend={'type': 'lmdb'})
    expect(opt, 'datasets.val (DemoRainTest): cannot read the data', 'different')


def test_missing_required_option(opt):
    del opt['train']['total_iter']
    expect(opt, "option 'train.total_iter' is missing")


def test_path_must_be_a_mapping(opt):
    opt['path'] = None
    expect(opt, "'path' must be a mapping")


def test_bad_dataset_phase(opt):
    opt['datasets']['training'] = opt['datasets'].pop('train')
    expect(opt, 'datasets.training: entry names must start with train, val or test')
    opt['datasets']['val_1'] = opt['datasets'].pop('training')
    expect(opt, 'training needs datasets.train')


def test_force_yml_unknown_key(opt):
    with pytest.raises(OptionError, match="no option 'train:total_iters'. Did you mean 'train:total_iter'\\?"):
        apply_overrides(opt, ['train:total_iters=5'])


def test_force_yml_seed_is_a_silent_no_op_upstream(opt):
    with pytest.raises(OptionError, match='manual_seed.*has no effect'):
        apply_overrides(opt, ['manual_seed=5'])


def test_checkpoint_of_another_architecture(opt, tmp_path):
    from glmha_plugin.archs import Restormer
    path = tmp_path / 'restormer.pth'
    torch.save({'params': Restormer(**TINY_RESTORMER).state_dict()}, path)
    opt['path']['pretrain_network_g'] = str(path)
    del opt['path']['strict_load_g']  # basicsr's default is strict loading, and so is the check's
    expect(opt, 'does not fit network_g (GLMHARestormer)', 'missing from the checkpoint', 'attn.calib.fc1.weight',
           'with different shapes', 'strict_load_g: false')
    opt['path']['strict_load_g'] = False  # basicsr then loads the matching keys only: nothing to refuse
    check_options(opt)


def test_file_that_is_not_a_checkpoint(opt, tmp_path):
    path = tmp_path / 'notes.pth'
    path.write_text('these are my notes, not weights')
    opt['path']['pretrain_network_g'] = str(path)
    expect(opt, 'is not a readable PyTorch checkpoint')


class _Evil:
    def __reduce__(self):
        return (os.system, ('touch PWNED',))


def test_malicious_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        pickle.dump({'params': _Evil()}, f)
    with pytest.raises(CheckpointError, match='refused'):
        load_checkpoint(str(path))
    assert not (tmp_path / 'PWNED').exists()
    # basicsr's own loader (torch's weights_only default) refuses it as well
    from basicsr.models.base_model import BaseModel
    with pytest.raises(pickle.UnpicklingError, match='Weights only load failed'):
        BaseModel({'num_gpu': 0, 'is_train': False, 'dist': False}).load_network(torch.nn.Linear(1, 1), str(path))
    assert not (tmp_path / 'PWNED').exists()


def test_pickle_opt_out_is_explicit(tmp_path):
    net = torch.nn.Linear(2, 2)
    path = tmp_path / 'whole_model.pth'
    torch.save(net, path)  # a legacy whole-model pickle
    with pytest.raises(CheckpointError, match='allow_pickle=True'):
        load_into(torch.nn.Linear(2, 2), str(path))
    loaded = load_into(torch.nn.Linear(2, 2), str(path), allow_pickle=True)
    assert torch.equal(loaded.weight, net.weight)


def test_test_options_need_weights(tmp_path):
    from glmha_plugin.commands.test import check_weights
    from glmha_plugin.errors import UsageError
    with pytest.raises(UsageError, match='refusing to test without trained weights'):
        check_weights({'path': {'pretrain_network_g': None}})


def test_nan_input_propagates_without_crashing():
    """Documented behaviour: NaN/Inf pixels give NaN outputs (no exception, no silent clean-up)."""
    from glmha_plugin.archs import GLMHARestormer
    x = torch.rand(1, 3, 8, 8)
    x[0, 0, 0, 0] = float('nan')
    with torch.no_grad():
        y = GLMHARestormer(**TINY_RESTORMER)(x)
    assert y.shape == x.shape and torch.isnan(y).any()


# ---------------------------------------------------------------- through the command line


def test_cli_reports_cleanly_and_leaves_existing_experiment_alone(workdir):
    """Exit code 2, one readable line, no traceback, and the user's earlier experiment is not archived."""
    previous = workdir / 'experiments' / 'Demo_Deraining_GLMHA'
    previous.mkdir(parents=True)
    (previous / 'my_notes.txt').write_text('keep me')
    proc = run_main(glmha_train.main, ['-opt', TINY_TRAIN, '--force_yml', 'network_g:type=GLMHARestomer'], workdir,
                    check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith('error: network_g.type') and 'Traceback' not in proc.stderr
    assert (previous / 'my_notes.txt').read_text() == 'keep me'
    assert sorted(os.listdir(workdir / 'experiments')) == ['Demo_Deraining_GLMHA']


def test_cli_invalid_yaml(workdir):
    bad = workdir / 'bad.yml'
    bad.write_text('name: [unclosed\n')
    proc = run_main(glmha_train.main, ['-opt', str(bad)], workdir, check=False)
    assert proc.returncode == 2 and 'is not valid YAML' in proc.stderr


def test_checks_leave_basicsr_logger_uninitialised(opt, monkeypatch):
    """basicsr attaches the run's log file only when its logger is first initialised: a dataset that logs while
    it is checked (ARAD1KDataset and CASSIDataset do) must not initialise it before train_pipeline."""
    from basicsr.utils import get_root_logger
    from basicsr.utils import logger as blog
    from basicsr.utils.registry import DATASET_REGISTRY
    name = opt['datasets']['train']['type']

    class LoggingDataset(DATASET_REGISTRY.get(name)):
        def __init__(self, dataset_opt):
            get_root_logger().info('dataset built')
            super().__init__(dataset_opt)

    monkeypatch.setitem(DATASET_REGISTRY._obj_map, name, LoggingDataset)
    monkeypatch.setattr(blog, 'initialized_logger', {})  # uninitialised here; restored for the other tests
    check_options(opt)
    assert 'basicsr' not in blog.initialized_logger

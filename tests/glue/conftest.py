"""Fixtures of the option-file tests: a private copy of the tiny paired data, and a valid tiny option dict on it."""
import shutil

import pytest

from helpers.common import TINY_RESTORMER, TINY_TRAIN, load_yaml


@pytest.fixture
def data(tmp_path, demo_data):
    """A private, writable copy of the tiny paired data."""
    shutil.copytree(demo_data / 'datasets', tmp_path / 'datasets')
    return tmp_path / 'datasets' / 'demo_rain'


@pytest.fixture
def opt(data):
    o = load_yaml(TINY_TRAIN)
    for phase, split in (('train', 'train'), ('val', 'test')):
        o['datasets'][phase]['dataroot_gt'] = str(data / split / 'target')
        o['datasets'][phase]['dataroot_lq'] = str(data / split / 'input')
    o['datasets']['train']['gt_size'] = 32
    o['network_g'] = dict(type='GLMHARestormer', **TINY_RESTORMER)
    return o

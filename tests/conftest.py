"""Fixtures shared by every test folder; the helpers themselves are in ``tests/helpers/`` (``from helpers.common
import ...``)."""
import os
import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))   # makes ``helpers`` importable from every test folder


@pytest.fixture(scope='session')
def mst_official():
    """Upstream MST / MST++ state_dict keys and shapes per toolbox method (fixtures/mst_official_keys.json)."""
    from helpers.common import read_fixture
    return read_fixture('mst_official_keys.json')['models']


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory):
    """A tiny copy of the demo's folder layout (datasets/demo_rain/...), made once per session."""
    from glmha_plugin.demo.data import make_rain_pairs
    root = tmp_path_factory.mktemp('demo_data')
    make_rain_pairs(str(root / 'datasets' / 'demo_rain'), train_short_side=48, test_size=(20, 27),
                    train_photos=('astronaut', 'coffee'), test_photos=('chelsea',))
    return root


@pytest.fixture
def workdir(tmp_path, demo_data):
    """An empty working directory with ``datasets`` linked to the tiny data."""
    os.symlink(demo_data / 'datasets', tmp_path / 'datasets')
    return tmp_path

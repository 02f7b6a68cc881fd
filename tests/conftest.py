"""Fixtures shared by every test folder; the helpers themselves are in ``tests/helpers/`` (``from helpers.common
import ...``). How to write a fast test with them: docs/development.md, "Tests"."""
import os
import os.path as osp
import sys

# Before torch loads (this file is imported before any test module). torch's OpenMP threads spin while they
# wait; when a machine runs more threads than it has cores (two test workers, torchrun ranks, a busy shared
# machine) spinning threads take the cores from the ones working and a seconds-long training takes minutes.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
if os.environ.get('PYTEST_XDIST_WORKER'):   # pytest -n N: one torch thread per worker (and its subprocesses)
    os.environ['OMP_NUM_THREADS'] = '1'

import pytest

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))   # makes ``helpers`` importable from every test folder


def pytest_collection_modifyitems(config, items):
    """With workers (``pytest -n``, tools/run_tests.sh), the slow tests are handed out first: the many short ones
    then fill both workers to the end instead of one long test running alone at the tail."""
    if hasattr(config, 'workerinput'):   # a worker of pytest -n (each collects; all sort alike)
        items.sort(key=lambda item: item.get_closest_marker('slow') is None)   # stable: file order otherwise


@pytest.fixture(scope='session')
def mst_official():
    """Upstream MST / MST++ state_dict keys and shapes per toolbox method (fixtures/mst_official_keys.json)."""
    from helpers.common import read_fixture
    return read_fixture('mst_official_keys.json')['models']


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory):
    """A tiny copy of the demo's folder layout (datasets/demo_rain/...), made once per session."""
    from helpers.common import make_demo_data
    root = tmp_path_factory.mktemp('demo_data')
    make_demo_data(root)
    return root


@pytest.fixture
def workdir(tmp_path, demo_data):
    """An empty working directory with ``datasets`` linked to the tiny data."""
    os.symlink(demo_data / 'datasets', tmp_path / 'datasets')
    return tmp_path


@pytest.fixture(scope='session')
def demo_run(tmp_path_factory):
    """The tiny demo trained (``FAST``: 4 iterations, checkpoints at 2 and 4, validation at 4) by
    ``glmha-train``'s ``main`` and its ``net_g_latest.pth`` tested by ``glmha-test``'s ``main``, in the test
    process, once per session (shared by the workers of ``pytest -n``). Read its folder, never write into it
    (copy what you need to change)."""
    from helpers.runs import DemoRun, shared_once
    return shared_once(tmp_path_factory, 'demo_run', DemoRun)

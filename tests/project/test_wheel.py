"""A built wheel, installed into a fresh virtual environment, carries and uses the shipped option files.

The wheel is built from a copy of the packaging inputs (``pip wheel --no-deps
--no-build-isolation``) and installed with ``--no-deps`` into a new venv made
without pip; a ``.pth`` line puts this environment's site-packages (torch,
basicsr, ...) behind the venv's own, so nothing is downloaded and the checkout
is not on the path (the commands run outside the repository, without
PYTHONPATH).
"""
import configparser
import os
import os.path as osp
import shutil
import sys
import sysconfig

import pytest

from helpers.common import FAST, REPO, run

pytestmark = pytest.mark.slow


def _top_level_modules():
    """The ``py_modules`` of setup.cfg as files (the hook and what it shares with the package)."""
    cfg = configparser.ConfigParser()
    cfg.read(osp.join(REPO, 'setup.cfg'))
    return tuple(name.strip() + '.py' for name in cfg['options']['py_modules'].split(',') if name.strip())


BUILD_INPUTS = ('setup.py', 'setup.cfg', 'pyproject.toml', 'MANIFEST.in', 'README.md', *_top_level_modules(),
                'glmha_plugin', 'options')


@pytest.fixture(scope='module')
def venv(tmp_path_factory):
    """(python, bin folder) of a fresh venv with the wheel installed."""
    root = tmp_path_factory.mktemp('wheel')
    src = root / 'src'
    for name in BUILD_INPUTS:
        path = osp.join(REPO, name)
        if osp.isdir(path):
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns('__pycache__', 'option_files'))
        else:
            os.makedirs(src, exist_ok=True)
            shutil.copy(path, src / name)
    run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '--no-index', '.', '-w',
         str(root / 'dist')], cwd=src, timeout=120)
    wheel = next((root / 'dist').glob('glmha_plugin-*.whl'))
    env = root / 'venv'
    base = getattr(sys, '_base_executable', sys.executable)
    run([base, '-m', 'venv', '--without-pip', str(env)], cwd=root)
    python = env / 'bin' / 'python'
    site = run([str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], cwd=root)
    with open(osp.join(site.stdout.strip(), 'zz_reuse_outer_site_packages.pth'), 'w') as f:
        f.write(sysconfig.get_paths()['purelib'] + '\n')
    run([sys.executable, '-m', 'pip', '--python', str(python), 'install', '-q', '--no-deps', '--no-index',
         str(wheel)], cwd=root, timeout=120)
    return str(python), str(env / 'bin'), site.stdout.strip()


@pytest.fixture
def outside(tmp_path, monkeypatch):
    monkeypatch.delenv('PYTHONPATH', raising=False)
    return tmp_path


def test_list_copy_and_train_from_a_shipped_name(venv, outside, demo_data):
    python, bin_dir, site = venv
    listed = run([osp.join(bin_dir, 'glmha'), 'options', 'list'], cwd=outside).stdout
    # option_files.py finds the package data in the package: the module imported is the wheel's
    assert f'shipped option files in {osp.join(site, "glmha_plugin", "option_files")}:' in listed
    for name in ('Deraining_GLMHA.yml', 'tiny/Demo_Deraining_GLMHA.yml', 'tiny/test_Demo_Deraining_GLMHA.yml'):
        assert f'  {name} ' in listed
    copied = run([osp.join(bin_dir, 'glmha'), 'options', 'copy', 'Deraining_GLMHA.yml'], cwd=outside)
    assert (outside / 'Deraining_GLMHA.yml').is_file(), copied.stdout
    shutil.copytree(demo_data / 'datasets', outside / 'datasets')
    train = run([osp.join(bin_dir, 'glmha-train'), '-opt', 'Demo_Deraining_GLMHA.yml', '--force_yml', *FAST],
                cwd=outside)
    assert 'using the shipped option file tiny/Demo_Deraining_GLMHA.yml' in train.stderr
    assert (outside / 'experiments' / 'Demo_Deraining_GLMHA' / 'models' / 'net_g_latest.pth').is_file()
    missing = run([osp.join(bin_dir, 'glmha-test'), '-opt', 'test_Demo_Deraining_GLMA.yml'], cwd=outside,
                  check=False)
    assert missing.returncode == 2 and 'close shipped names: tiny/test_Demo_Deraining_GLMHA.yml' in missing.stderr

"""Shared fixtures: the project's interpreter, tiny paired data, subprocess runner."""
import importlib
import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
OPTIONS = osp.join(REPO, 'options')
BIN = osp.dirname(sys.executable)
TINY_TRAIN = osp.join(OPTIONS, 'tiny', 'Demo_Deraining_GLMHA.yml')
TINY_TEST = osp.join(OPTIONS, 'tiny', 'test_Demo_Deraining_GLMHA.yml')

# Overrides (basicsr's own --force_yml) that make the demo YAML a seconds-long run.
FAST = ['train:total_iter=4', 'logger:print_freq=1', 'logger:save_checkpoint_freq=2', 'val:val_freq=4',
        'datasets:train:num_worker_per_gpu=0', 'datasets:train:batch_size_per_gpu=2',
        'datasets:train:gt_size=32', 'datasets:train:dataset_enlarge_ratio=1']


def import_tool(name: str):
    """The module ``tools/<name>.py`` (the analysis front ends keep their ``main(argv)`` there)."""
    sys.path.insert(0, osp.join(REPO, 'tools'))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(('GLMHA_', 'PYTEST_'))}
    env.update({k: str(v) for k, v in extra.items()})
    env.setdefault('PYTHONUNBUFFERED', '1')
    env.setdefault('OMP_NUM_THREADS', '2')
    return env


def run(cmd, cwd, timeout=300, check=True, **env):
    """Run a command; on unexpected failure show its output in the assertion."""
    proc = subprocess.run(cmd, cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{cmd} exited {proc.returncode}\n--- stdout ---\n{proc.stdout[-6000:]}\n'
                             f'--- stderr ---\n{proc.stderr[-6000:]}')
    return proc


def torchrun_in_sync(cwd, opts, port_offset=0, timeout=400):
    """Train the tiny demo on 2 CPU ranks (torchrun, gloo, helpers/ddp_dump.py); check and return the ranks' weights.

    Each rank needs whole batches; spawned DataLoader workers (basicsr sets 'spawn') need the alias too.
    """
    import torch
    port = 29500 + (os.getpid() + port_offset) % 400
    run([osp.join(BIN, 'torchrun'), '--nproc_per_node=2', f'--master_port={port}',
         osp.join(REPO, 'registry_tests', 'helpers', 'ddp_dump.py'), '-opt', TINY_TRAIN, '--launcher', 'pytorch',
         '--force_yml', *opts], cwd=cwd, timeout=timeout)
    r0, r1 = (torch.load(osp.join(cwd, f'rank{r}.pth'), weights_only=True) for r in (0, 1))
    assert r0.keys() == r1.keys()
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    return r0


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory):
    """A tiny copy of the demo's folder layout (datasets/demo_rain/...), made once per session."""
    from glmha_plugin.demo import make_rain_pairs
    root = tmp_path_factory.mktemp('demo_data')
    make_rain_pairs(str(root / 'datasets' / 'demo_rain'), train_short_side=48, test_size=(20, 27),
                    train_photos=('astronaut', 'coffee'), test_photos=('chelsea',))
    return root


@pytest.fixture
def workdir(tmp_path, demo_data):
    """An empty working directory with ``datasets`` linked to the tiny data."""
    os.symlink(demo_data / 'datasets', tmp_path / 'datasets')
    return tmp_path

"""Shared test helpers: the project's interpreter and paths, tiny networks, option files and training logs,
recorded fixtures, the subprocess runner, free ports, the pre-flight expectation."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
import yaml

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OPTIONS = osp.join(REPO, 'options')
BIN = osp.dirname(sys.executable)
TINY_TRAIN = osp.join(OPTIONS, 'tiny', 'Demo_Deraining_GLMHA.yml')
TINY_TEST = osp.join(OPTIONS, 'tiny', 'test_Demo_Deraining_GLMHA.yml')
FIXTURES = osp.join(REPO, 'tests', 'fixtures')

# Tiny networks (a forward pass takes milliseconds): Restormer's / GLMHARestormer's and MST's arguments.
TINY_RESTORMER = dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 2, 4, 8],
                      ffn_expansion_factor=2.0)
TINY_RESTORMER_2 = dict(TINY_RESTORMER, num_blocks=[1, 1, 1, 2])  # two latent blocks: 9 attention layers
TINY_MST = dict(dim=28, stage=2, num_blocks=[1, 1, 1])
TINY_RETINEX = dict(n_feat=8, stage=1, num_blocks=[1, 1, 1])

# Overrides (basicsr's own --force_yml) that make the demo YAML a seconds-long run.
FAST = ['train:total_iter=4', 'logger:print_freq=1', 'logger:save_checkpoint_freq=2', 'val:val_freq=4',
        'datasets:train:num_worker_per_gpu=0', 'datasets:train:batch_size_per_gpu=2',
        'datasets:train:gt_size=32', 'datasets:train:dataset_enlarge_ratio=1']


def make_demo_data(root) -> None:
    """``root/datasets/demo_rain``: the demo's folder layout with two small training photos and one test photo."""
    from glmha_plugin.demo.data import make_rain_pairs
    make_rain_pairs(osp.join(root, 'datasets', 'demo_rain'), train_short_side=48, test_size=(20, 27),
                    train_photos=('astronaut', 'coffee'), test_photos=('chelsea',))


def free_port() -> int:
    """A free loopback port (for torchrun's --master_port and process groups)."""
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def read_fixture(name: str):
    """``tests/fixtures/<name>`` (JSON)."""
    with open(osp.join(FIXTURES, name), encoding='utf-8') as f:
        return json.load(f)


def load_yaml(path) -> dict:
    """An option file as a dict: a path, or a name relative to ``options/``."""
    with open(osp.join(OPTIONS, path), encoding='utf-8') as f:
        return yaml.safe_load(f)


def train_logs(cwd, name: str):
    """Texts of the training logs of experiment ``name`` under ``cwd`` (``experiments/<name>/train_*.log``),
    oldest first."""
    folder = osp.join(cwd, 'experiments', name)
    logs = sorted(f for f in os.listdir(folder) if f.startswith('train_') and f.endswith('.log'))
    assert logs, f'no training log in {folder}'
    texts = []
    for log in logs:
        with open(osp.join(folder, log), encoding='utf-8') as f:
            texts.append(f.read())
    return texts


def import_tool(name: str):
    """The module ``tools/<name>.py`` (each exposes the package's ``main(argv)``), imported from its file as
    ``tools_<name>`` (a plain ``import test`` could find the standard library's package)."""
    spec = importlib.util.spec_from_file_location(f'tools_{name}', osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


needs_no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason='the upstream symptom only shows without a GPU')


def assert_same_weights(rank_files):
    """The state dicts saved by two ranks (helpers/ddp_dump.py) are equal; returns rank 0's."""
    r0, r1 = (torch.load(f, weights_only=True) for f in rank_files)
    assert r0.keys() == r1.keys()
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    return r0


def torchrun_in_sync(cwd, opts, timeout=400):
    """Train the tiny demo on 2 CPU ranks (torchrun, gloo, helpers/ddp_dump.py); check and return the ranks' weights.

    Each rank needs whole batches; spawned DataLoader workers (basicsr sets 'spawn') need the alias too.
    """
    run([osp.join(BIN, 'torchrun'), '--nproc_per_node=2', f'--master_port={free_port()}',
         osp.join(REPO, 'tests', 'helpers', 'ddp_dump.py'), '-opt', TINY_TRAIN, '--launcher', 'pytorch',
         '--force_yml', *opts], cwd=cwd, timeout=timeout)
    return assert_same_weights([osp.join(cwd, f'rank{r}.pth') for r in (0, 1)])


def expect(opt, *fragments, is_train=True):
    """The pre-flight check refuses ``opt`` with a message holding every fragment; returns the message."""
    from glmha_plugin.errors import OptionError
    from glmha_plugin.glue.preflight import check_options
    with pytest.raises(OptionError) as info:
        check_options(opt, is_train=is_train)
    msg = str(info.value)
    for frag in fragments:
        assert frag in msg, msg
    return msg

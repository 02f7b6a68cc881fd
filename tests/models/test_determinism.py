"""Same seed, same data, CPU -> bitwise identical weights after N iterations (CSA and GLMHA).

The runs are glmha-train's ``main`` in this process, one of them a fresh ``glmha-train`` process: a result
that depended on the process (Python's per-process hash seed ordering a set or dict, state left by an earlier
run) would differ there.
"""
import os.path as osp
import shutil

import pytest
import torch
import yaml

from glmha_plugin.commands import train as glmha_train

from helpers.common import BIN, FAST, OPTIONS, load_yaml, run
from helpers.runs import run_main


@pytest.mark.slow
@pytest.mark.parametrize('yml,name', [('Demo_Deraining_GLMHA.yml', 'Demo_Deraining_GLMHA'),
                                      ('Demo_Deraining_Restormer.yml', 'Demo_Deraining_Restormer')])
def test_same_seed_same_weights(workdir, yml, name):
    base = load_yaml(osp.join('tiny', yml))

    def train(seed, fresh_process=False):
        # the seed goes into the file: basicsr seeds before applying --force_yml overrides
        opt = workdir / f'seed{seed}.yml'
        opt.write_text(yaml.safe_dump({**base, 'manual_seed': seed}))
        argv = ['-opt', str(opt), '--force_yml', *FAST]
        if fresh_process:   # as many torch threads as here: the reductions' order depends on it
            run([osp.join(BIN, 'glmha-train')] + argv, cwd=workdir, OMP_NUM_THREADS=torch.get_num_threads())
        else:
            run_main(glmha_train.main, argv, workdir)
        path = workdir / 'experiments' / name / 'models' / 'net_g_latest.pth'
        weights = torch.load(path, weights_only=True)['params']
        shutil.rmtree(workdir / 'experiments')
        return weights

    a, b = train(123), train(123, fresh_process=name == 'Demo_Deraining_GLMHA')
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    c = train(124)  # a different seed does change them: the comparison can fail
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_deterministic_kernels_can_be_requested(workdir):
    """GLMHA_DETERMINISTIC=1 turns on torch's deterministic-algorithm mode in the training process, and the
    tiny training runs under it."""
    try:
        proc = run_main(glmha_train.main, ['-opt', osp.join(OPTIONS, 'tiny', 'Demo_Deraining_GLMHA.yml'),
                                           '--force_yml', *FAST], workdir, GLMHA_DETERMINISTIC=1,
                        CUBLAS_WORKSPACE_CONFIG=None)   # what it sets is undone afterwards
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
    assert 'GLMHA_DETERMINISTIC=1: deterministic algorithms requested' in proc.stdout
    assert 'End of training' in proc.stdout + proc.stderr

"""Beyond one machine: two torchrun "nodes" over the loopback address, and ``--launcher slurm`` on CPU.

Both runs train the demo YAML a few iterations through basicsr's unmodified
``train_pipeline`` (``tests/helpers/ddp_dump.py`` saves each rank's
final weights) and check that the ranks end with identical weights.  The slurm
run gets the variables a 2-task job sets and a stand-in ``scontrol`` on PATH.
"""
import os
import os.path as osp
import subprocess

import pytest
import torch
import torch.distributed as dist

from glmha_plugin.glue import compat

from helpers.common import (
    BIN,
    FAST,
    REPO,
    TINY_TRAIN,
    assert_same_weights,
    clean_env,
    free_port,
    needs_no_gpu,
    train_logs,
)

DDP_DUMP = osp.join(REPO, 'tests', 'helpers', 'ddp_dump.py')
EXP = osp.join('experiments', 'Demo_Deraining_GLMHA')
# each rank needs whole batches: 2 photos x 4 = 8 crops, 2 ranks x batch 2; no validation until the end
OPTS = FAST + ['datasets:train:dataset_enlarge_ratio=4', 'val:val_freq=100']


def node_dirs(workdir, n=2):
    """One working directory per "node" (nothing but the data is shared, as on separate machines)."""
    dirs = []
    for i in range(n):
        d = workdir / f'node{i}'
        d.mkdir()
        os.symlink(osp.realpath(workdir / 'datasets'), d / 'datasets')
        dirs.append(d)
    return dirs


def run_together(cmds, timeout=240):
    """Start every ``(cmd, cwd, env)`` at once, wait for all; fail with the output of any that failed."""
    procs = [subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for cmd, cwd, env in cmds]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=timeout)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    failed = [(i, out) for i, (p, out) in enumerate(zip(procs, outs, strict=True)) if p.returncode != 0]
    assert not failed, '\n'.join(f'--- process {i} exited non-zero ---\n{out[-5000:]}' for i, out in failed)
    return outs


def assert_ranks_in_sync(rank_files, exp_dir):
    r0 = assert_same_weights(rank_files)
    log = train_logs(osp.dirname(osp.dirname(exp_dir)), osp.basename(exp_dir))[0]
    assert 'World size (gpu number): 2' in log and 'iter:       4,' in log, 'no DDP training iterations ran'
    at2 = torch.load(osp.join(exp_dir, 'models', 'net_g_2.pth'), weights_only=True)['params']
    assert any(not torch.equal(at2[k], r0[k]) for k in r0), 'weights did not change after iteration 2'
    return log


@pytest.mark.slow
def test_two_torchrun_nodes_over_loopback_end_in_sync(workdir):
    """torchrun --nnodes=2 --node_rank 0/1 --nproc_per_node=1, static rendezvous on 127.0.0.1, gloo."""
    port = free_port()
    dirs = node_dirs(workdir)
    env = clean_env(GLOO_SOCKET_IFNAME='lo', OMP_NUM_THREADS=1)
    cmds = [([osp.join(BIN, 'torchrun'), '--nnodes=2', f'--node_rank={rank}', '--nproc_per_node=1',
              '--master_addr=127.0.0.1', f'--master_port={port}', DDP_DUMP, '-opt', TINY_TRAIN,
              '--launcher', 'pytorch', '--force_yml', *OPTS], d, env) for rank, d in enumerate(dirs)]
    run_together(cmds)
    assert_ranks_in_sync([dirs[0] / 'rank0.pth', dirs[1] / 'rank1.pth'], dirs[0] / EXP)
    assert not (dirs[1] / EXP / 'models').exists(), 'only global rank 0 saves checkpoints'


def slurm_task_env(tmp_path, procid: int, port: int, scontrol_log) -> dict:
    """What slurm sets for task ``procid`` of a 2-task job on two nodes (one task each), plus a stand-in scontrol."""
    bindir = tmp_path / 'slurm_bin'
    if not bindir.exists():
        bindir.mkdir()
        script = bindir / 'scontrol'
        # `scontrol show hostname node[01-02]` prints one host per line; the stand-in answers with the loopback
        script.write_text(f'#!/bin/sh\necho "$@" >> {scontrol_log}\n'
                          '[ "$1 $2" = "show hostname" ] || exit 2\necho 127.0.0.1\necho 127.0.0.2\n')
        script.chmod(0o755)
    return clean_env(
        PATH=f'{bindir}{os.pathsep}{os.environ["PATH"]}', GLOO_SOCKET_IFNAME='lo', OMP_NUM_THREADS=1,
        MASTER_PORT=port, SLURM_JOB_ID=4242, SLURM_JOB_NUM_NODES=2, SLURM_NNODES=2, SLURM_NTASKS=2,
        SLURM_NPROCS=2, SLURM_NTASKS_PER_NODE=1, SLURM_TASKS_PER_NODE='1(x2)', SLURM_NODELIST='node[01-02]',
        SLURM_JOB_NODELIST='node[01-02]', SLURM_PROCID=procid, SLURM_LOCALID=0, SLURM_NODEID=procid,
        SLURMD_NODENAME=f'node0{procid + 1}', SLURM_STEP_ID=0)


@pytest.mark.slow
def test_slurm_launcher_two_tasks_end_in_sync(workdir):
    """python ddp_dump.py ... --launcher slurm in two processes with a 2-task job's SLURM_* variables."""
    port, log = free_port(), workdir / 'scontrol_calls.txt'
    dirs = node_dirs(workdir)
    cmds = [([osp.join(BIN, 'python'), DDP_DUMP, '-opt', TINY_TRAIN, '--launcher', 'slurm', '--force_yml', *OPTS],
             d, slurm_task_env(workdir, procid, port, log)) for procid, d in enumerate(dirs)]
    run_together(cmds)
    assert_ranks_in_sync([dirs[0] / 'rank0.pth', dirs[1] / 'rank1.pth'], dirs[0] / EXP)
    assert log.read_text().split('\n')[:2] == ['show hostname node[01-02]'] * 2


# ---------------------------------------------------------------- the adaptation itself, in-process


@pytest.fixture
def slurm_single_task(tmp_path, monkeypatch):
    """A 1-task job's variables (restored afterwards, with what the init sets) and the stand-in scontrol."""
    env = slurm_task_env(tmp_path, 0, free_port(), tmp_path / 'calls.txt')
    env.update(SLURM_NTASKS='1', SLURM_NNODES='1', SLURM_NODELIST='node01')
    for key in ('MASTER_ADDR', 'WORLD_SIZE', 'RANK', 'LOCAL_RANK'):
        monkeypatch.delenv(key, raising=False)
    for key in ('PATH', 'MASTER_PORT') + tuple(k for k in env if k.startswith('SLURM')):
        monkeypatch.setenv(key, env[key])
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


@needs_no_gpu
def test_upstream_slurm_init_divides_by_zero(slurm_single_task):
    with pytest.raises(ZeroDivisionError):
        compat.ORIGINALS['dist_init_cpu.slurm']('nccl')


@needs_no_gpu
def test_slurm_init_uses_gloo_and_sets_the_environment(slurm_single_task):
    from basicsr.utils.dist_util import init_dist
    assert 'dist_init_slurm_cpu' in compat.APPLIED
    init_dist('slurm')
    assert dist.get_backend() == 'gloo' and dist.get_world_size() == 1
    assert os.environ['MASTER_ADDR'] == '127.0.0.1' and os.environ['RANK'] == '0'
    assert os.environ['LOCAL_RANK'] == '0' and os.environ['WORLD_SIZE'] == '1'


def test_slurm_environment_port_and_errors(slurm_single_task, monkeypatch):
    assert compat.slurm_environment(port=1234)['MASTER_PORT'] == '1234'   # dist_params.port of the YAML
    monkeypatch.setenv('PATH', '/nonexistent')
    with pytest.raises(RuntimeError, match='no scontrol command on PATH'):
        compat.slurm_environment()
    monkeypatch.delenv('SLURM_PROCID')
    with pytest.raises(RuntimeError, match='SLURM_PROCID not set; start the command with srun'):
        compat.slurm_environment()

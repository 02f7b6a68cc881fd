"""Where a run writes: one run per name at a time, a writable output folder with room.

* :func:`run_lock`: ``experiments/<name>`` (training) and ``results/<name>``
  (testing) belong to one process at a time.  A second ``glmha-train`` /
  ``glmha-test`` with the same name refuses while the first runs (basicsr
  would move the running experiment's folder aside, ``_archived_<time>``).
  The lock is an ``fcntl.flock`` on ``experiments/.<name>.lock``: the kernel
  releases it when the process ends, however it ends, so a crashed run leaves
  no stale lock.  Under torchrun / slurm only rank 0 takes it.
* :func:`check_output_folder`: the folder runs write to is writable (a probe
  file is created and removed) and has room for one checkpoint; read-only
  and full file systems are named as such (:mod:`glmha_plugin.models.saving`,
  which also writes the checkpoints whole).
"""
import errno
import os
import os.path as osp
import shutil
import time
from contextlib import contextmanager

from ..errors import UsageError
from ..models.saving import OutputWriteError, disk_error_message, existing_parent, human_size

LOCK_SUFFIX = '.lock'


class RunLockedError(UsageError):
    """Another process runs (trains or tests) under the same name."""


# ---------------------------------------------------------------------------------------------- output folder


def check_output_folder(folder: str, need_bytes: int = 0, what: str = 'outputs') -> None:
    """UsageError unless ``folder`` (or, when it does not exist yet, its nearest existing parent) takes a new file
    and has ``need_bytes`` free.  A probe file is created and removed; nothing else is written."""
    base = existing_parent(folder)
    if not osp.isdir(base):
        raise UsageError(f'cannot write {what} under {folder!r}: {base!r} is a file, not a folder')
    probe = osp.join(base, f'.glmha-write-probe-{os.getpid()}')
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        message = disk_error_message(exc, folder, f'write {what} under')
        raise OutputWriteError(exc.errno, message or f'cannot write {what} under {folder!r} ({exc})') from None
    free = shutil.disk_usage(base).free
    if need_bytes and free < need_bytes:
        raise OutputWriteError(errno.ENOSPC, f'only {human_size(free)} free under {base!r}, but one checkpoint of this '
                                             f'run needs about {human_size(need_bytes)}: free space on that disk, or '
                                             f'run from a folder on another disk')


# ---------------------------------------------------------------------------------------------- one run per name


def rank_zero() -> bool:
    """Whether this process is rank 0 of its launcher (torchrun: RANK, slurm: SLURM_PROCID), or not launched."""
    for var in ('RANK', 'SLURM_PROCID'):
        if os.environ.get(var) not in (None, ''):
            return os.environ[var].strip() == '0'
    return True


@contextmanager
def run_lock(folder: str, name: str, what: str = 'experiment'):
    """Hold ``<folder>/.<name>.lock`` while the block runs (module docstring); RunLockedError when another
    process holds it.  Creates ``folder`` when needed (the run would create it next)."""
    import fcntl
    if not rank_zero():
        yield None
        return
    os.makedirs(folder, exist_ok=True)
    path = osp.join(folder, f'.{name}{LOCK_SUFFIX}')
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode('utf-8', 'replace').strip() or 'another process'
            raise RunLockedError(f'{what} {name!r} is in use by {holder} (lock {path}): wait until it ends, or give '
                                 f'this run another name (option name, or --force_yml name=NEW_NAME)') from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f'process {os.getpid()} (started {time.strftime("%Y-%m-%d %H:%M:%S")})'.encode(), 0)
        yield path
    finally:
        os.close(fd)   # releases the lock; the (empty) lock file stays, so that no two processes lock two files

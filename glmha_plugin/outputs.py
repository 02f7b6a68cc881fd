"""Where a run writes: one run per name at a time, a writable output folder with room, files written whole.

* :func:`run_lock`: ``experiments/<name>`` (training) and ``results/<name>``
  (testing) belong to one process at a time.  A second ``glmha-train`` /
  ``glmha-test`` with the same name refuses while the first runs (basicsr
  would move the running experiment's folder aside, ``_archived_<time>``).
  The lock is an ``fcntl.flock`` on ``experiments/.<name>.lock``: the kernel
  releases it when the process ends, however it ends, so a crashed run leaves
  no stale lock.  Under torchrun / slurm only rank 0 takes it.
* :func:`check_output_folder`: the folder runs write to is writable (a probe
  file is created and removed) and has room for one checkpoint; read-only
  and full file systems are named as such.
* :func:`atomic_save`: ``torch.save`` to ``<file>.tmp``, flushed to disk, then
  renamed over ``<file>``: a save killed or failing half-way never leaves a
  torn file under the real name (the rename is atomic on POSIX file systems).
* :func:`disk_error_message` / :class:`OutputWriteError`: an ``OSError`` of a
  write turned into one line that says disk full / read-only / no permission
  and what to do.
"""
import errno
import os
import os.path as osp
import shutil
import time
from contextlib import contextmanager
from typing import Optional

from .errors import UsageError

LOCK_SUFFIX = '.lock'
# errno -> what it means for a run's outputs.
FULL = {errno.ENOSPC: 'the disk is full', errno.EDQUOT: 'the disk quota is exhausted'}
READ_ONLY = {errno.EROFS: 'the file system is read-only', errno.EACCES: 'no permission to write there',
             errno.EPERM: 'no permission to write there'}
TMP_SUFFIX = '.tmp'


class OutputWriteError(UsageError, OSError):
    """A run's output could not be written (disk full, read-only, no permission): ``OutputWriteError(errno,
    message)``, printed as the message alone."""

    def __str__(self):
        return str(self.strerror)


class RunLockedError(UsageError):
    """Another process runs (trains or tests) under the same name."""


def disk_error_message(exc: OSError, path: str, what: str = 'write') -> Optional[str]:
    """One line for an ``OSError`` that means disk full / read-only / no permission; None for others."""
    code = getattr(exc, 'errno', None)
    if code in FULL:
        usage = shutil.disk_usage(_existing(path))
        return (f'cannot {what} {path!r}: {FULL[code]} ({os.strerror(code)}; {_size(usage.free)} free of '
                f'{_size(usage.total)}): free space on that disk (or write elsewhere); a training run continues from '
                f'its last complete checkpoint with --auto_resume')
    if code in READ_ONLY:
        return (f'cannot {what} {path!r}: {READ_ONLY[code]} ({os.strerror(code)}): run from a folder you can write '
                f'to (outputs go under the working directory {os.getcwd()!r})')
    return None


def _size(n: float) -> str:
    for unit in ('B', 'KB', 'MB', 'GB', 'TB'):
        if n < 1024 or unit == 'TB':
            return f'{n:.1f} {unit}' if unit != 'B' else f'{int(n)} B'
        n /= 1024
    return f'{n:.1f} TB'


def _existing(path: str) -> str:
    """``path`` or its nearest existing parent folder."""
    path = osp.abspath(path)
    while not osp.exists(path) and osp.dirname(path) != path:
        path = osp.dirname(path)
    return path


# ---------------------------------------------------------------------------------------------- atomic writes


class _Sink:
    """Unbuffered file writer for ``torch.save``: keeps the ``OSError`` of a failed write (torch's zip writer
    reports a short write on a full disk as ``RuntimeError: ... unexpected pos``, without the errno)."""

    def __init__(self, fd: int):
        self.fd, self.error = fd, None

    def write(self, data) -> int:
        view = memoryview(data).cast('B')
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except OSError as exc:
            self.error = exc
            raise
        return len(data)

    def flush(self):
        pass


def atomic_save(obj, path: str, retries: int = 3, delay: float = 1.0) -> None:
    """``torch.save(obj, path)`` written whole or not at all (module docstring).

    A disk-full / read-only / permission error raises :class:`OutputWriteError` at once; other I/O errors
    (basicsr retries "occasional writing errors", e.g. on network file systems) are retried ``retries`` times
    ``delay`` seconds apart, then raised as OutputWriteError.  The previous file of that name is kept until
    the new one is complete; a left-over ``<path>.tmp`` is overwritten.
    """
    import torch
    tmp = path + TMP_SUFFIX
    for attempt in range(1, retries + 1):
        sink = None
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                sink = _Sink(fd)
                torch.save(obj, sink)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            _fsync_folder(osp.dirname(path) or '.')
            return
        except (OSError, RuntimeError) as exc:
            error = sink.error if sink is not None and sink.error is not None else exc
            message = disk_error_message(error, path) if isinstance(error, OSError) else None
            if message is not None:
                _remove_quietly(tmp)
                raise OutputWriteError(error.errno, message) from None
            if attempt == retries:
                _remove_quietly(tmp)
                raise OutputWriteError(getattr(error, 'errno', None) or errno.EIO,
                                       f'cannot write {path!r} ({type(error).__name__}: {error}) after {retries} '
                                       f'tries; the previous checkpoints are intact') from None
            time.sleep(delay)


def _fsync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable (not possible on every platform / file system: then skipped)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    try:
        if osp.lexists(path) and not osp.islink(path):
            os.remove(path)
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------- output folder


def check_output_folder(folder: str, need_bytes: int = 0, what: str = 'outputs') -> None:
    """UsageError unless ``folder`` (or, when it does not exist yet, its nearest existing parent) takes a new file
    and has ``need_bytes`` free.  A probe file is created and removed; nothing else is written."""
    base = _existing(folder)
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
        raise OutputWriteError(errno.ENOSPC, f'only {_size(free)} free under {base!r}, but one checkpoint of this '
                                             f'run needs about {_size(need_bytes)}: free space on that disk, or '
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

"""Checkpoint files written whole or not at all, and write errors named for what they are.

* :func:`atomic_save`: ``torch.save`` to ``<file>.tmp``, flushed to disk, then
  renamed over ``<file>``: a save killed or failing half-way never leaves a
  torn file under the real name (the rename is atomic on POSIX file systems).
  Used by the models' training state and, through ``glmha_plugin.glue.compat``
  (atomic_checkpoints), by basicsr's ``save_network`` / ``save_training_state``.
* :func:`disk_error_message` / :class:`OutputWriteError`: an ``OSError`` of a
  write turned into one line that says disk full / read-only / no permission
  and what to do.
"""
import errno
import os
import os.path as osp
import shutil
import time
from typing import Optional

from ..errors import UsageError

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


def disk_error_message(exc: OSError, path: str, what: str = 'write') -> Optional[str]:
    """One line for an ``OSError`` that means disk full / read-only / no permission; None for others."""
    code = getattr(exc, 'errno', None)
    if code in FULL:
        usage = shutil.disk_usage(existing_parent(path))
        return (f'cannot {what} {path!r}: {FULL[code]} ({os.strerror(code)}; {human_size(usage.free)} free of '
                f'{human_size(usage.total)}): free space on that disk (or write elsewhere); a training run continues '
                f'from its last complete checkpoint with --auto_resume')
    if code in READ_ONLY:
        return (f'cannot {what} {path!r}: {READ_ONLY[code]} ({os.strerror(code)}): run from a folder you can write '
                f'to (outputs go under the working directory {os.getcwd()!r})')
    return None


def human_size(n: float) -> str:
    for unit in ('B', 'KB', 'MB', 'GB', 'TB'):
        if n < 1024 or unit == 'TB':
            return f'{n:.1f} {unit}' if unit != 'B' else f'{int(n)} B'
        n /= 1024
    return f'{n:.1f} TB'


def existing_parent(path: str) -> str:
    """``path`` or its nearest existing parent folder."""
    path = osp.abspath(path)
    while not osp.exists(path) and osp.dirname(path) != path:
        path = osp.dirname(path)
    return path


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

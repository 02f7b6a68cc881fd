"""Entry points run in the test process, and runs made once per session.

An interpreter start with the plugin costs about 4 s (torch, torchvision, basicsr), more than a tiny training
run itself: tests call a command's ``main(argv)`` through :func:`run_main` and keep real processes for the one
smoke test of each launcher (console scripts, ``python -m basicsr.train`` through the hook, torchrun, slurm,
``tools/*.py``). A run that several tests only read is made once by :func:`shared_once` (a session fixture
in ``tests/conftest.py``), also across the workers of ``pytest -n``.
"""
import contextlib
import io
import logging
import os
import os.path as osp
import shutil
import subprocess
from dataclasses import dataclass

import pytest


@contextlib.contextmanager
def fresh_basicsr_logger():
    """basicsr's root logger as a new process has it: ``get_root_logger`` sets it up once per process (its file
    handler is the first run's log file, its stream the stderr of that moment), so a second pipeline in the
    same process would log into the first run's file. Handlers attached before are put back afterwards."""
    from basicsr.utils import logger as basicsr_logger
    log = logging.getLogger('basicsr')
    saved = list(log.handlers), log.level, log.propagate, basicsr_logger.initialized_logger.pop('basicsr', None)
    for handler in saved[0]:
        log.removeHandler(handler)
    try:
        yield
    finally:
        for handler in list(log.handlers):
            log.removeHandler(handler)
            handler.close()
        for handler in saved[0]:
            log.addHandler(handler)
        log.setLevel(saved[1])
        log.propagate = saved[2]
        basicsr_logger.initialized_logger.pop('basicsr', None)
        if saved[3] is not None:
            basicsr_logger.initialized_logger['basicsr'] = saved[3]


@contextlib.contextmanager
def environment(**env):
    """``os.environ`` with ``env`` set (a value of None removes the variable), restored afterwards."""
    saved = {k: os.environ.get(k) for k in env}
    try:
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = str(v)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_main(main, argv, cwd, check=True, **env) -> subprocess.CompletedProcess:
    """``main(argv)`` in ``cwd`` with ``env`` added to the environment (the ``GLMHA_*`` variables of the shell
    removed, as :func:`helpers.common.run` does), as its process would run it: stdout and
    stderr captured (basicsr's log lines included), ``returncode`` what the process would exit with
    (``SystemExit`` caught, a returned int, else 0). An exception other than ``SystemExit`` propagates, as a
    traceback would end the process. ``check``: fail the test, with the output, on a non-zero status."""
    out, err = io.StringIO(), io.StringIO()
    old_cwd = os.getcwd()
    code = 0
    try:
        env = {**{k: None for k in os.environ if k.startswith('GLMHA_')}, **env}
        with environment(**env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                fresh_basicsr_logger():
            os.chdir(cwd)
            try:
                result = main(list(argv))
                code = result if isinstance(result, int) else 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if not isinstance(exc.code, (int, type(None))):   # sys.exit('message') prints it
                    err.write(f'{exc.code}\n')
    finally:
        os.chdir(old_cwd)
    name = f'{getattr(main, "__module__", "?")}.{getattr(main, "__name__", "?")}'
    proc = subprocess.CompletedProcess([name] + list(argv), code, out.getvalue(), err.getvalue())
    if check and code != 0:
        pytest.fail(f'{name}({list(argv)}) exited {code}\n--- stdout ---\n{proc.stdout[-6000:]}\n'
                    f'--- stderr ---\n{proc.stderr[-6000:]}')
    return proc


# ---------------------------------------------------------------------------------------------- shared runs

def shared_once(tmp_path_factory, name: str, make):
    """``make(folder)``'s result for a folder made once per session: the first test (of any ``pytest -n``
    worker) to ask makes it under a file lock, the others wait and read it. ``make`` returns a value that is a
    function of the folder alone (e.g. it reads back what it wrote), since each worker calls ``load``."""
    from filelock import FileLock
    base = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        base = base.parent   # the session's folder, above each worker's own
    folder = base / f'shared_{name}'
    with FileLock(str(folder) + '.lock'):
        done = folder / '.made'
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)   # a failed attempt is made again (and fails again)
            folder.mkdir()
            make.make(folder)
            done.touch()
    return make.load(folder)


@dataclass
class Ran:
    """A run of a command's ``main`` whose output was kept on disk (``<label>.out``, ``<label>.err``,
    ``<label>.code``) so that other workers can read it."""
    returncode: int
    stdout: str
    stderr: str

    @staticmethod
    def save(proc: subprocess.CompletedProcess, folder, label: str) -> None:
        for ext, text in (('out', proc.stdout), ('err', proc.stderr), ('code', str(proc.returncode))):
            (folder / f'{label}.{ext}').write_text(text, encoding='utf-8')

    @classmethod
    def read(cls, folder, label: str) -> 'Ran':
        text = {ext: (folder / f'{label}.{ext}').read_text(encoding='utf-8') for ext in ('out', 'err', 'code')}
        return cls(int(text['code']), text['out'], text['err'])


@dataclass
class DemoRun:
    """The ``demo_run`` fixture: ``folder`` (the working directory: ``datasets/``, ``experiments/``,
    ``results/``), ``train`` and ``test`` (their exit status and output)."""
    folder: object
    train: Ran
    test: Ran
    name = 'Demo_Deraining_GLMHA'
    weights = osp.join('experiments', 'Demo_Deraining_GLMHA', 'models', 'net_g_latest.pth')

    @staticmethod
    def make(folder):
        from glmha_plugin.commands import test, train

        from helpers.common import FAST, TINY_TEST, TINY_TRAIN, make_demo_data
        make_demo_data(folder)
        Ran.save(run_main(train.main, ['-opt', TINY_TRAIN, '--force_yml', *FAST], folder), folder, 'train')
        Ran.save(run_main(test.main, ['-opt', TINY_TEST, '--force_yml', f'path:pretrain_network_g={DemoRun.weights}'],
                          folder), folder, 'test')

    @classmethod
    def load(cls, folder) -> 'DemoRun':
        return cls(folder, Ran.read(folder, 'train'), Ran.read(folder, 'test'))


"""Shared command-line plumbing of the train/test entry points."""
import argparse
import os
import sys
from contextlib import contextmanager

from ..errors import UsageError
from ..glue.option_files import load_options  # noqa: F401  (commands.test reads it from here)


def option_file_from_argv(argv):
    """The ``-opt`` path and ``--force_yml`` overrides of a basicsr command line."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('-opt', type=str)
    parser.add_argument('--force_yml', nargs='+', default=None)
    args, _ = parser.parse_known_args(argv)
    return args.opt, args.force_yml or []


def asks_for_help(argv) -> bool:
    """``-h`` / ``--help`` on the command line: basicsr's own parser is to print its options, nothing is checked."""
    return any(a in ('-h', '--help') for a in argv)


def launcher_from_argv(argv) -> str:
    """The ``--launcher`` of a basicsr command line (``none`` when absent)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--launcher', default='none')
    args, _ = parser.parse_known_args(argv)
    return args.launcher


def resolve_option_file(argv):
    """``argv`` with its ``-opt`` value replaced by the file it means (:func:`glmha_plugin.glue.option_files.resolve`:
    a local file as given, else the shipped option file of that name, said on stderr)."""
    from ..glue.option_files import resolve
    path, _ = option_file_from_argv(argv)
    if path is None:
        return list(argv)
    resolved = resolve(path)
    if resolved == path:
        return list(argv)
    out = list(argv)
    for i in reversed(range(len(out))):  # argparse keeps the last -opt
        if out[i] == '-opt' and i + 1 < len(out) and out[i + 1] == path:
            out[i + 1] = resolved
            return out
        if out[i] == f'-opt={path}':
            out[i] = f'-opt={resolved}'
            return out
    raise UsageError(f'cannot tell which argument of {argv} is the option file {path!r}: write it as -opt {path}')


def checked_options(argv, is_train):
    """``(options, network)``: the option dict basicsr will run (YAML + ``--force_yml``), checked by
    :mod:`glmha_plugin.glue.preflight`, and the network it builds.  Notes about how the file was read go to stderr."""
    from ..glue.option_files import EXPONENT_NUMBER, read_option_file
    from ..glue.preflight import apply_overrides, check_options
    path, overrides = option_file_from_argv(argv)
    opt, notes = read_option_file(path)
    numbers = [o for o in overrides if EXPONENT_NUMBER.match(o.partition('=')[2].strip())]
    if numbers:
        notes.append(f'--force_yml {" ".join(numbers)}: read as numbers (basicsr alone reads a number with an exponent '
                     f'but no dot as text)')
    opt = apply_overrides(opt, overrides)
    net = check_options(opt, is_train=is_train, launcher=launcher_from_argv(argv))
    for note in notes:
        print(f'note: {note}', file=sys.stderr, flush=True)
    return opt, net


def effective_options(argv, is_train):
    """The option dict basicsr will run (YAML + ``--force_yml``), checked by :mod:`glmha_plugin.glue.preflight`."""
    return checked_options(argv, is_train)[0]


def run_name(opt, argv) -> str:
    """The name basicsr gives the run: ``name``, with ``debug_`` in front under ``--debug``."""
    name = str(opt['name'])
    return f'debug_{name}' if '--debug' in argv and not name.startswith('debug') else name


def checkpoint_bytes(net) -> int:
    """About what one checkpoint of ``net`` takes on disk: the weights, and twice them for Adam's state."""
    if net is None:
        return 0
    weights = sum(t.numel() * t.element_size() for t in net.state_dict().values())
    return 3 * weights


@contextmanager
def argv_as(argv):
    """Run basicsr's argparse-based pipelines on ``argv`` (program name excluded)."""
    saved = sys.argv
    sys.argv = [saved[0] if saved else 'glmha'] + list(argv)
    try:
        yield
    finally:
        sys.argv = saved


def run(main_body, argv):
    """Call ``main_body(argv)``; print UsageError cleanly and exit 2, and an OSError that means a full disk, a
    read-only file system or no permission as such (exit 2)."""
    from ..models.saving import disk_error_message
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return main_body(argv)
    except UsageError as exc:
        print(f'error: {exc}', file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as exc:
        message = disk_error_message(exc, exc.filename or os.getcwd())
        if message is None:
            raise
        print(f'error: {message}', file=sys.stderr)
        raise SystemExit(2) from None

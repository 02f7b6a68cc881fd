"""Shared command-line plumbing of the train/test entry points."""
import argparse
import sys
from contextlib import contextmanager

from ..errors import UsageError
from ..glue.option_files import load_options


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


def effective_options(argv, is_train):
    """The option dict basicsr will run (YAML + ``--force_yml``), checked by :mod:`glmha_plugin.glue.preflight`."""
    from ..glue.preflight import apply_overrides, check_options
    path, overrides = option_file_from_argv(argv)
    opt = apply_overrides(load_options(path), overrides)
    check_options(opt, is_train=is_train, launcher=launcher_from_argv(argv))
    return opt


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
    """Call ``main_body(argv)``; print UsageError cleanly and exit 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return main_body(argv)
    except UsageError as exc:
        print(f'error: {exc}', file=sys.stderr)
        raise SystemExit(2) from None

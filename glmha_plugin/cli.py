"""Shared command-line plumbing of the train/test entry points."""
import argparse
import sys
from contextlib import contextmanager

import yaml

from .errors import UsageError


def option_file_from_argv(argv):
    """The ``-opt`` path and ``--force_yml`` overrides of a basicsr command line."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('-opt', type=str)
    parser.add_argument('--force_yml', nargs='+', default=None)
    args, _ = parser.parse_known_args(argv)
    return args.opt, args.force_yml or []


def launcher_from_argv(argv) -> str:
    """The ``--launcher`` of a basicsr command line (``none`` when absent)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--launcher', default='none')
    args, _ = parser.parse_known_args(argv)
    return args.launcher


def load_options(path):
    """Read an option YAML safely, with a clear error for a missing or malformed file."""
    if path is None:
        raise UsageError('missing -opt: give the option YAML, e.g. -opt options/Deraining_GLMHA.yml')
    try:
        with open(path, encoding='utf-8') as f:
            opt = yaml.safe_load(f)
    except FileNotFoundError:
        raise UsageError(f'option file {path!r} does not exist') from None
    except yaml.YAMLError as exc:
        raise UsageError(f'option file {path!r} is not valid YAML: {exc}') from None
    if not isinstance(opt, dict):
        raise UsageError(f'option file {path!r} must hold a mapping of options, got {type(opt).__name__}')
    return opt


def effective_options(argv, is_train):
    """The option dict basicsr will run (YAML + ``--force_yml``), checked by :mod:`glmha_plugin.validate`."""
    from .validate import apply_overrides, check_options
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

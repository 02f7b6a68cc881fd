"""The option files shipped with the package, and how ``-opt NAME`` finds them.

A wheel carries every option file of the repository's ``options/`` folder
(``options/*.yml``, ``options/tiny/*.yml``) as package data under
``glmha_plugin/option_files/`` (written by ``setup.py``'s ``build_py``); a
checkout or an editable install reads the repository's ``options/`` itself.
Names are paths relative to that folder, with ``/``: ``Deraining_GLMHA.yml``,
``tiny/Demo_Deraining_GLMHA.yml``.

Lookup rule of ``glmha-train`` / ``glmha-test -opt NAME`` (and of
``python -m glmha_plugin.commands.train/test``, ``python -m basicsr.train/test``
through the import hook), :func:`resolve`:

1. ``NAME`` is an existing file (relative to the working directory, or
   absolute): it is used, as basicsr would;
2. otherwise the shipped file of that name is used, and the command says
   which: ``NAME`` may be the relative name (``tiny/Demo_Deraining_GLMHA.yml``),
   the repository path (``options/tiny/Demo_Deraining_GLMHA.yml``) or the bare
   file name when only one shipped file has it (``Demo_Deraining_GLMHA.yml``),
   each with or without ``.yml``;
3. otherwise the command stops with an error that lists close shipped names.

:func:`load_options` reads an option file with errors a user can act on (used
by the entry points and the tools).

Command line::

    glmha options list                    # the shipped names, one line each
    glmha options copy NAME [DEST] [--force]
"""
import argparse
import difflib
import glob
import os
import os.path as osp
import shutil
import sys
from typing import List, Optional, Tuple

import yaml

from ..errors import UsageError

# Written by setup.py's build_py (its OPTION_FILES_DIR) into the wheel.
PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
PACKAGED_DIR = osp.join(PACKAGE_DIR, 'option_files')
# The repository's folder, read by a checkout or an editable install.
CHECKOUT_DIR = osp.join(osp.dirname(PACKAGE_DIR), 'options')
REPO_PREFIX = 'options/'   # how the docs name them in a checkout


def shipped_dir() -> str:
    """The folder that holds the shipped option files (package data, else the checkout's ``options/``)."""
    for folder in (PACKAGED_DIR, CHECKOUT_DIR):
        if osp.isdir(folder):
            return folder
    raise UsageError(f'no shipped option files: neither {PACKAGED_DIR} (a wheel install) nor {CHECKOUT_DIR} (a '
                     f'checkout) exists; reinstall glmha-plugin')


def shipped_names() -> List[str]:
    """Every shipped option file, relative to :func:`shipped_dir` with ``/`` separators, sorted."""
    root = shipped_dir()
    files = glob.glob(osp.join(root, '**', '*.yml'), recursive=True)
    return sorted(osp.relpath(f, root).replace(os.sep, '/') for f in files)


def shipped_path(name: str) -> Optional[str]:
    """Absolute path of the shipped option file ``name`` (rule 2 of the module docstring), or None.

    Raises UsageError when a bare file name fits several shipped files.
    """
    names = shipped_names()
    key = name.replace(os.sep, '/').strip()
    if key.startswith('./'):
        key = key[2:]
    if key.startswith(REPO_PREFIX):
        key = key[len(REPO_PREFIX):]
    for candidate in (key, key + '.yml'):
        if candidate in names:
            return osp.join(shipped_dir(), *candidate.split('/'))
        same_base = [n for n in names if n.rsplit('/', 1)[-1] == candidate]
        if len(same_base) > 1:
            raise UsageError(f'{name!r} fits several shipped option files: {", ".join(same_base)}; give one of '
                             f'these names')
        if same_base:
            return osp.join(shipped_dir(), *same_base[0].split('/'))
    return None


def shipped_file(name: str) -> str:
    """Absolute path of the shipped option file ``name`` (:func:`shipped_path`: the wheel's package data, else a
    checkout's ``options/``), for the plugin's own defaults; UsageError when none fits."""
    path = shipped_path(name)
    if path is None:
        raise UsageError(f'no shipped option file {name!r} in {shipped_dir()}; reinstall glmha-plugin')
    return path


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


def close_names(name: str, limit: int = 5) -> List[str]:
    """Shipped names that look like ``name`` (full names and bare file names are compared)."""
    names = shipped_names()
    key = osp.basename(name.replace(os.sep, '/')).lower()
    by_base = {}
    for n in names:
        by_base.setdefault(n.rsplit('/', 1)[-1].lower(), n)
    close = difflib.get_close_matches(key, list(by_base), n=limit, cutoff=0.5)
    found = [by_base[c] for c in close]
    found += [n for n in names if key.removesuffix('.yml') in n.lower() and n not in found]
    return found[:limit]


def resolve(path: str, say=None) -> str:
    """The option file that ``-opt path`` means (module docstring); ``say`` (default: print to stderr) is told
    when a shipped file is used.  Raises UsageError for a name that is neither local nor shipped."""
    if osp.isfile(path):
        return path
    found = shipped_path(path)
    if found is None:
        close = close_names(path)
        hint = (f'close shipped names: {", ".join(close)}' if close else
                'no shipped name is close to it')
        raise UsageError(f'option file {path!r} does not exist (relative paths are read from the working directory '
                         f'{os.getcwd()}) and is not a shipped option file; {hint}. List them with: glmha options '
                         f'list')
    name = osp.relpath(found, shipped_dir()).replace(os.sep, '/')
    message = f'[glmha] -opt {path}: no such file here; using the shipped option file {name} ({found})'
    (say or (lambda msg: print(msg, file=sys.stderr, flush=True)))(message)
    return found


def summary(path: str, width: int = 96) -> str:
    """The first sentence of the comment block that opens an option file (one line)."""
    words = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            if not line.startswith('#'):
                break
            words.append(line.lstrip('#').strip())
    text = ' '.join(w for w in words if w)
    for end in ('. ', ': '):
        if end in text:
            text = text[:text.index(end) + 1]
    text = text.rstrip(':,')
    return text if len(text) <= width else text[:width - 3].rstrip() + '...'


def copy(name: str, dest: str = '.', force: bool = False) -> Tuple[str, bool]:
    """Copy the shipped option file ``name`` to ``dest`` (a file, or a folder that gets the file name).

    An existing file is never overwritten unless ``force``.  Returns the path
    written and whether it replaced a file.
    """
    src = shipped_path(name)
    if src is None:
        close = close_names(name)
        raise UsageError(f'{name!r} is not a shipped option file' +
                         (f'; close names: {", ".join(close)}' if close else '') +
                         '. List them with: glmha options list')
    target = osp.join(dest, osp.basename(src)) if osp.isdir(dest) or dest.endswith(('/', os.sep)) else dest
    if osp.exists(target) and not force:
        raise UsageError(f'{target} exists; not overwritten (add --force to replace it)')
    if osp.dirname(target):
        os.makedirs(osp.dirname(target), exist_ok=True)
    replaced = osp.exists(target)
    shutil.copyfile(src, target)
    return target, replaced


def main(argv=None):
    parser = argparse.ArgumentParser(description='List and copy the option files shipped with glmha-plugin; '
                                                 'glmha-train/glmha-test -opt NAME use them when NAME is no local '
                                                 'file.')
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('list', help='the shipped option files, with the first sentence of each')
    cp = sub.add_parser('copy', help='copy one shipped option file to edit it')
    cp.add_argument('name', help='a shipped name, e.g. tiny/Demo_Deraining_GLMHA.yml or Deraining_GLMHA.yml')
    cp.add_argument('dest', nargs='?', default='.', help='target file or folder (default: the current folder)')
    cp.add_argument('--force', action='store_true', help='replace an existing target file')
    args = parser.parse_args(argv)
    try:
        if args.command == 'list':
            names = shipped_names()
            print(f'{len(names)} shipped option files in {shipped_dir()}:')
            width = max(len(n) for n in names)
            for n in names:
                print(f'  {n:<{width}}  {summary(osp.join(shipped_dir(), *n.split("/")))}')
            print('use one: glmha-train -opt NAME (a local file of that name comes first); edit a copy: '
                  'glmha options copy NAME [DEST]')
        else:
            target, replaced = copy(args.name, args.dest, args.force)
            print(f'copied {args.name} -> {target}' + (' (replaced the existing file: --force)' if replaced else ''))
    except UsageError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    return 0

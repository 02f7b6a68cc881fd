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
    glmha options reference [--update FILE ...]   # every option (glmha_plugin.glue.option_schema), in Markdown
"""
import argparse
import difflib
import glob
import os
import os.path as osp
import re
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


# YAML 1.2 reads a number in exponent notation without a dot (``2e-3``) or without the exponent's sign
# (``2.0e3``) as a float; YAML 1.1, which PyYAML and so basicsr follow, reads both as text.
EXPONENT_NUMBER = re.compile(r'^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$')
EXPONENT_FIRST = list('-+0123456789.')
_EXPONENT_TAG = 'tag:glmha-plugin,2024:exponent-number'


class _OptionLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys and reads exponent numbers as YAML 1.2 does (recording
    where, for the note)."""

    def __init__(self, stream):
        super().__init__(stream)
        self.exponent_numbers: List[Tuple[int, str]] = []   # (line, text) of each plain 2e-3-style scalar

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == 'tag:yaml.org,2002:merge':
                    continue
                key = self.construct_object(key_node)
                where = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)   # also two on one line
                try:
                    first = seen.setdefault(key, where)
                except TypeError:   # an unhashable key: the constructor reports it
                    continue
                if first != where:
                    raise DuplicateKeyError(key, first, where)
        return super().construct_mapping(node, deep)


def _construct_exponent_number(loader: _OptionLoader, node):
    text = loader.construct_scalar(node)
    loader.exponent_numbers.append((node.start_mark.line + 1, text))
    return float(text.replace('_', ''))


_OptionLoader.add_implicit_resolver(_EXPONENT_TAG, EXPONENT_NUMBER, EXPONENT_FIRST)
_OptionLoader.add_constructor(_EXPONENT_TAG, _construct_exponent_number)


class DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key, first: tuple[int, int], second: tuple[int, int]):
        """``first``, ``second``: (line, column) of the two keys, counted from 1."""
        where = (f'line {first[0]}, columns {first[1]} and {second[1]}' if first[0] == second[0] else
                 f'lines {first[0]} and {second[0]}')
        super().__init__(f'key {key!r} appears twice in one block ({where}); YAML would keep only the second: '
                         f'delete one of them')


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line for a YAML error (PyYAML's own message spans several lines, with a source excerpt)."""
    mark = getattr(exc, 'problem_mark', None)
    where = f'line {mark.line + 1}, column {mark.column + 1}: ' if mark is not None else ''
    problem = getattr(exc, 'problem', None) or str(exc)
    context = getattr(exc, 'context', None)
    return ' '.join((f'{where}{problem}' + (f' ({context})' if context else '')).split())


def read_option_file(path) -> Tuple[dict, List[str]]:
    """``(options, notes)`` of an option YAML; UsageError (one line) for a file that does not say what it seems to.

    Refused: a missing file, bytes that are not UTF-8 (the byte offset and line are named), invalid YAML, a
    key given twice in one block (both lines named; YAML would silently keep the second), a file that is not
    a mapping.  Numbers in exponent notation that YAML 1.1 reads as text (``lr: 2e-3``, ``2.0e3``) are read
    as numbers, as YAML 1.2 does and as basicsr then reads them (``glmha_plugin.glue.compat``, exponent_numbers);
    ``notes`` says which, so a user knows the file means something else to plain PyYAML.
    """
    if path is None:
        raise UsageError('missing -opt: give the option YAML, e.g. -opt options/Deraining_GLMHA.yml')
    try:
        with open(path, 'rb') as f:
            raw = f.read()
    except FileNotFoundError:
        raise UsageError(f'option file {path!r} does not exist') from None
    except IsADirectoryError:
        raise UsageError(f'option file {path!r} is a folder, not a YAML file') from None
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b'\n') + 1
        raise UsageError(f'option file {path!r} is not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset '
                         f'{exc.start} (line {line}) cannot be decoded; save the file as UTF-8') from None
    loader = _OptionLoader(text)
    try:
        opt = loader.get_single_data()
    except DuplicateKeyError as exc:
        raise UsageError(f'option file {path!r}: {exc}') from None
    except yaml.YAMLError as exc:
        raise UsageError(f'option file {path!r} is not valid YAML: {_yaml_problem(exc)}') from None
    finally:
        loader.dispose()
    if not isinstance(opt, dict):
        raise UsageError(f'option file {path!r} must hold a mapping of options, got {type(opt).__name__}')
    notes = []
    if loader.exponent_numbers:
        shown = ', '.join(f'{t} (line {n})' for n, t in sorted(loader.exponent_numbers)[:6])   # in file order
        more = f' and {len(loader.exponent_numbers) - 6} more' if len(loader.exponent_numbers) > 6 else ''
        notes.append(f'{path}: {shown}{more} read as numbers (YAML 1.2; PyYAML and plain basicsr read a number with '
                     f'an exponent but no dot or no exponent sign as text; write 2.0e-3 or !!float 2e-3 for them)')
    return opt, notes


def load_options(path):
    """Read an option YAML safely, with a clear one-line error for a missing or malformed file
    (:func:`read_option_file`, without its notes)."""
    return read_option_file(path)[0]


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


def reference(update: Optional[List[str]] = None) -> int:
    """``glmha options reference``: print the reference, or write the generated parts of the files of ``update``
    (between their BEGIN and END lines: the reference, the table of the GPU-training options)."""
    from .option_schema.reference import reference_markdown, replace_generated
    if not update:
        print(reference_markdown(), end='')
        return 0
    for path in update:
        try:
            with open(path, encoding='utf-8') as f:
                page = f.read()
        except OSError as exc:
            raise UsageError(f'cannot read {path}: {exc.strerror}') from None
        try:
            new = replace_generated(page)
        except ValueError as exc:
            raise UsageError(f'{path}: {exc}') from None
        if new != page:
            with open(path, 'w', encoding='utf-8') as f:
                f.write(new)
        print(f'{path}: {"updated" if new != page else "already up to date"}')
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description='List and copy the option files shipped with glmha-plugin '
                                                 '(glmha-train/glmha-test -opt NAME use them when NAME is no local '
                                                 'file); print the reference of every option.')
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('list', help='the shipped option files, with the first sentence of each')
    cp = sub.add_parser('copy', help='copy one shipped option file to edit it')
    cp.add_argument('name', help='a shipped name, e.g. tiny/Demo_Deraining_GLMHA.yml or Deraining_GLMHA.yml')
    cp.add_argument('dest', nargs='?', default='.', help='target file or folder (default: the current folder)')
    cp.add_argument('--force', action='store_true', help='replace an existing target file')
    ref = sub.add_parser('reference', help='the reference of every option (key, type, default, description), in '
                                           'Markdown, from the declarations the pre-flight check reads')
    ref.add_argument('--update', nargs='+', metavar='FILE', help='rewrite the generated parts of these Markdown '
                     'files (docs/options.md, docs/gpu_training.md) instead of printing the reference')
    args = parser.parse_args(argv)
    try:
        if args.command == 'reference':
            return reference(args.update)
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

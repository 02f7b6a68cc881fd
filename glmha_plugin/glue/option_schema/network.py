"""``network_g``: the architecture's constructor signature is the declaration (type and default from the signature,
the description from the ``Args`` sections of its docstrings); nothing is re-declared by hand.
"""
import inspect
import re
import typing
from typing import Any, Dict, List, Tuple

from ...errors import OptionError
from .blocks import misplaced_message
from .values import Option, value_error, yaml_text

# ------------------------------------------------------------------------------------------------------------
# network_g: the constructor's signature is the declaration

def _callable_of(cls):
    return cls.__init__ if inspect.isclass(cls) else cls


def network_arguments(cls) -> Dict[str, Option]:
    """The constructor arguments of an architecture as options: type and default from the signature, the
    description from the docstrings of the class and its bases (:func:`argument_docs`)."""
    try:
        hints = typing.get_type_hints(_callable_of(cls))
    except Exception:  # noqa: BLE001  annotations that do not resolve: checked by the constructor alone
        hints = {}
    docs = argument_docs(cls)
    args = {}
    for name, p in inspect.signature(cls).parameters.items():
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        tp = hints.get(name, Any)
        default = None if p.default is p.empty else p.default
        args[name] = Option(name, tp, default, docs.get(name, ''), required='always' if p.default is p.empty else '')
    return args


def check_network_arguments(net_opt: dict, where: str = 'network_g'):
    """The keys of a network block against its architecture's signature: misplaced GPU-training options, then
    the types the signature declares (keys the signature lacks: :func:`~.preflight.build_network_checked`)."""
    from basicsr.utils.registry import ARCH_REGISTRY
    cls = ARCH_REGISTRY._obj_map.get(net_opt.get('type'))
    if cls is None:
        return
    args = network_arguments(cls)
    for key, value in net_opt.items():
        if key == 'type':
            continue
        if key not in args:
            moved = misplaced_message(str(key), where)
            if moved:
                raise OptionError(moved)
            continue
        message = value_error(f'{where}.{key}', value, args[key])
        if message:
            raise OptionError(message)


ARGS_HEADER = re.compile(r'^\s*Args(?:\s*\(([^)]*)\))?:\s*(.*)$')
ARG_LINE = re.compile(r'^(\s+)(\w+(?:\s*/\s*\w+)*):\s+(.*)$')


def clean_doc(text: str) -> str:
    """One line of docstring text in Markdown: rst roles and literals as code, whitespace collapsed."""
    text = re.sub(r':\w+:`~?(?:[\w.]+\.)?([\w]+)`', r'`\1`', text)
    text = text.replace('``', '`')
    return ' '.join(text.split()).rstrip(';,.')


def _split_items(text: str) -> List[str]:
    """Top-level comma/semicolon separated items (not inside parentheses or backquotes)."""
    items, depth, quoted, current = [], 0, False, ''
    for ch in text:
        if ch == '`':
            quoted = not quoted
        elif not quoted and ch == '(':
            depth += 1
        elif not quoted and ch == ')':
            depth -= 1
        if ch in ',;' and depth == 0 and not quoted:
            items.append(current)
            current = ''
        else:
            current += ch
    return items + [current]


def _item_docs(text: str, group: str) -> Dict[str, Tuple[str, str]]:
    """``name (description)`` items of an inline ``Args (group): a, b (desc), c / d (desc).`` paragraph."""
    docs = {}
    for item in _split_items(text.strip().rstrip('.')):
        m = re.match(r'^\s*(\w+(?:\s*/\s*\w+)*)\s*(?:\((.*)\))?\s*$', item, re.S)
        if not m:
            continue
        for name in re.split(r'\s*/\s*', m.group(1)):
            docs[name] = (clean_doc(m.group(2) or ''), group)
    return docs


def argument_docs(cls) -> Dict[str, str]:
    """Descriptions of constructor arguments from ``Args`` sections of the docstrings of ``cls`` and its bases:
    Google style (``name: text`` lines, ``a / b: text`` for several) or inline (``Args (group): a, b (text)``).
    An argument listed without a text (or with its default value only) gets its group: ``Restormer's own
    argument``."""
    found: Dict[str, Tuple[str, str]] = {}
    for klass in getattr(cls, '__mro__', (cls,)):
        for name, entry in _docstring_args(inspect.getdoc(klass) or '').items():
            found.setdefault(name, entry)
    params = inspect.signature(cls).parameters
    docs = {}
    for name, (text, group) in found.items():
        default = params[name].default if name in params else inspect.Parameter.empty
        if default is not inspect.Parameter.empty and text in (str(default), yaml_text(default)):
            text = ''
        docs[name] = text or (f'{group} argument' if group else '')
    return docs


def _docstring_args(doc: str) -> Dict[str, Tuple[str, str]]:
    docs: Dict[str, Tuple[str, str]] = {}
    paragraphs, current = [], []
    for line in doc.splitlines():
        if not line.strip():
            if current:
                paragraphs.append(current)
            current = []
        else:
            current.append(line)
    if current:
        paragraphs.append(current)
    in_args, group = False, ''
    for para in paragraphs:
        header = ARGS_HEADER.match(para[0])
        if header:
            in_args = True
            group, rest = header.group(1) or '', header.group(2)
            lines = para[1:]
            if rest and ARG_LINE.match('    ' + rest):
                lines = ['    ' + rest] + lines
            elif rest:
                for name, entry in _item_docs(' '.join([rest] + [ln.strip() for ln in lines]), group).items():
                    docs.setdefault(name, entry)
                continue
        elif not in_args or not para[0].startswith(' '):
            in_args = False
            continue
        else:
            lines = para
        entry, names, indent = '', [], None
        for line in lines:
            m = ARG_LINE.match(line)
            if m and (indent is None or len(m.group(1)) <= indent):
                for name in names:
                    docs.setdefault(name, (clean_doc(entry), group))
                indent, names, entry = len(m.group(1)), re.split(r'\s*/\s*', m.group(2)), m.group(3)
            elif names:
                entry += ' ' + line.strip()
        for name in names:
            docs.setdefault(name, (clean_doc(entry), group))
    return docs

"""Reading a declaration (``Annotated`` fields, package docstring) and checking a value against it: the type in
words, whether a value conforms, and the one-line message with the fix when it does not.
"""
import dataclasses
import math
import numbers
import operator
import re
import typing
from collections import abc
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Dict, Literal, Optional, Sequence, Tuple, Union

from ...errors import did_you_mean

# ------------------------------------------------------------------------------------------------------------
# Reading the declarations

@dataclass(frozen=True)
class Option:
    """One declared key."""
    key: str
    type: Any                       # the annotation without its Annotated strings
    default: Any
    doc: str
    bounds: Tuple[Tuple[str, float], ...] = ()
    required: str = ''              # '' | 'always' | 'train'
    not_empty: bool = False
    aliases: Tuple[str, ...] = ()
    owner: Any = None               # the dataclass (None: a constructor argument)

    @property
    def has_default(self) -> bool:
        return not self.required and (self.default is not None or allows_none(self.type))

    def child(self):
        """The dataclass of a nested block (``X``, ``Optional[X]``), the ``Dict`` value dataclass, or None."""
        return nested_block(self.type)


BOUND = re.compile(r'^(>=|>|<=|<)\s*(-?[0-9.]+(?:e-?[0-9]+)?)$')


def parse_annotation(key: str, hint, default=None, owner=None) -> Option:
    """An :class:`Option` from a field's (possibly ``Annotated``) annotation (the grammar: the package docstring)."""
    if typing.get_origin(hint) is not Annotated:
        return Option(key, hint, default, '', owner=owner)
    tp, *marks = typing.get_args(hint)
    docs, bounds, required, not_empty, aliases = [], [], '', False, ()
    for mark in marks:
        if not isinstance(mark, str):
            continue
        bound = BOUND.match(mark)
        if bound:
            bounds.append((bound.group(1), float(bound.group(2))))
        elif mark in ('required', 'required to train'):
            required = 'always' if mark == 'required' else 'train'
        elif mark == 'not empty':
            not_empty = True
        elif mark.startswith('also: '):
            aliases = tuple(a.strip() for a in mark[len('also: '):].split(','))
        else:
            docs.append(mark)
    if len(docs) != 1:
        raise TypeError(f'{getattr(owner, "__qualname__", owner)}.{key}: declare exactly one description string, '
                        f'got {docs}')
    return Option(key, tp, default, docs[0], tuple(bounds), required, not_empty, aliases, owner)


@lru_cache(maxsize=None)
def declared(cls) -> Dict[str, Option]:
    """The options a block dataclass declares, in declaration order."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return {f.name: parse_annotation(f.name, hints[f.name], f.default, cls) for f in dataclasses.fields(cls)}


def unknown_keys_mode(parts: Sequence[type]) -> str:
    """How a block made of ``parts`` treats keys none of them declares (``unknown_keys``, package docstring)."""
    modes = {getattr(p, 'unknown_keys', None) for p in parts}
    for mode in ('pass', 'hint', 'refuse'):
        if mode in modes:
            return mode
    return 'refuse'


def allows_none(tp) -> bool:
    return tp is Any or tp is type(None) or (typing.get_origin(tp) is Union and type(None) in typing.get_args(tp))


def nested_block(tp):
    """The dataclass of a nested block type (``X``, ``Optional[X]``, ``Dict[str, X]``), else None."""
    if dataclasses.is_dataclass(tp):
        return tp
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Union:
        found = [nested_block(a) for a in args if a is not type(None)]
        return found[0] if len(found) == 1 else None
    if _is_subclass(origin, abc.Mapping) and len(args) == 2 and dataclasses.is_dataclass(args[1]):
        return args[1]
    return None


def is_mapping_of_blocks(tp) -> bool:
    """``Dict[str, X]`` with X a dataclass (``datasets``, ``val.metrics``): a block per entry."""
    tp = _strip_none(tp)
    args = typing.get_args(tp)
    return _is_subclass(typing.get_origin(tp), abc.Mapping) and len(args) == 2 and dataclasses.is_dataclass(args[1])


def _strip_none(tp):
    if typing.get_origin(tp) is Union:
        arms = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(arms) == 1:
            return arms[0]
    return tp


# ------------------------------------------------------------------------------------------------------------
# Values against types

def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))


def _whole(v) -> bool:
    return _number(v) and not math.isinf(v) and float(v).is_integer()


COMPARE = {'>=': operator.ge, '>': operator.gt, '<=': operator.le, '<': operator.lt}


def _in_bounds(v, bounds) -> bool:
    return all(COMPARE[op](v, b) for op, b in bounds)


def _plain(tp):
    """``numbers.Integral`` as ``int``, ``numbers.Number`` / ``Real`` as ``float`` (annotations use both)."""
    if tp is numbers.Integral:
        return int
    if tp in (numbers.Number, numbers.Real):
        return float
    return tp


def conforms(value, tp, bounds=(), not_empty=False) -> bool:
    """Whether ``value`` (as YAML gives it) is of type ``tp`` within ``bounds``; unknown types accept anything."""
    tp = _plain(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object or isinstance(tp, (str, typing.TypeVar)):
        return True
    if tp is type(None):
        return value is None
    if origin is Union:
        return any(conforms(value, a, bounds, not_empty) for a in args)
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return _whole(value) and _in_bounds(value, bounds)
    if tp is float:
        return _number(value) and _in_bounds(value, bounds)
    if tp is str:
        return isinstance(value, str) and not (not_empty and value == '')
    if dataclasses.is_dataclass(tp) or tp is dict:
        return isinstance(value, dict)
    if _is_subclass(origin, abc.Mapping):
        if not isinstance(value, dict):
            return False
        if len(args) == 2:
            return all(conforms(k, args[0]) and conforms(v, args[1], bounds) for k, v in value.items())
        return True
    if tp in (list, tuple):
        return isinstance(value, (list, tuple))
    if _is_subclass(origin, abc.Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(conforms(v, a, bounds) for v, a in zip(value, args, strict=True))
        return all(conforms(v, args[0], bounds) for v in value) if args else True
    return True   # a type this reader does not know (e.g. a class): the constructor checks it


def _is_subclass(origin, base) -> bool:
    """``origin`` (of a generic alias: ``list`` for ``List[int]``) is a ``base`` other than text."""
    return isinstance(origin, type) and issubclass(origin, base) and not issubclass(origin, (str, bytes))


def _bound_words(bounds) -> str:
    return ' and '.join(f'{op} {b:g}' for op, b in bounds)


def describe(tp, bounds=(), not_empty=False) -> str:
    """What a value of type ``tp`` is, in words: ``a whole number >= 1``, ``true or false``, ..."""
    tp = _plain(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    within = f' {_bound_words(bounds)}' if bounds else ''
    if tp is Any or tp is object:
        return 'anything'
    if tp is type(None):
        return '~'
    if origin is Union:
        arms = [_plain(a) for a in args if a is not type(None)]
        if int in arms and float in arms:
            arms.remove(int)
        words = []
        for a in arms:
            w = describe(a, bounds, not_empty)
            if w not in words:
                words.append(w)
        return ' or '.join(words) if words else '~'
    if origin is Literal:
        return str(args[0]) if len(args) == 1 else 'one of ' + ', '.join(str(a) for a in args)
    if tp is bool:
        return 'true or false'
    if tp is int:
        return 'a whole number' + within
    if tp is float:
        return 'a number' + within
    if tp is str:
        return 'text, not empty' if not_empty else 'text'
    if dataclasses.is_dataclass(tp) or tp is dict or _is_subclass(origin, abc.Mapping):
        if len(args) == 2 and not dataclasses.is_dataclass(args[1]) and args[1] is not Any:
            return f'a mapping of names to {_plural(describe(args[1], bounds))}'
        return 'a mapping'
    if tp in (list, tuple):
        return 'a list'
    if _is_subclass(origin, abc.Sequence):
        if origin is tuple and args and args[-1] is not Ellipsis:
            kinds = {describe(a, bounds) for a in args}
            if len(kinds) == 1:
                return f'a list of {len(args)} values, each {kinds.pop()}'
            return 'a list of ' + ', '.join(describe(a, bounds) for a in args)
        return f'a list of values, each {describe(args[0], bounds)}' if args else 'a list'
    return getattr(tp, '__name__', str(tp).replace('typing.', ''))


def _plural(words: str) -> str:
    return words[2:] + 's' if words.startswith('a ') and ' ' not in words[2:] else words


def yaml_text(value) -> str:
    """A value as an option file writes it."""
    if value is None:
        return '~'
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, float):
        return yaml_float(value)
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(yaml_text(v) for v in value) + ']'
    if isinstance(value, str):
        return repr(value) if value == '' or not re.match(r'^[A-Za-z_][\w./-]*$', value) else value
    return str(value)


def yaml_float(x: float) -> str:
    """``x`` as YAML 1.1 (PyYAML, so basicsr) reads a float: ``0.002``, ``1.0e-06`` (not ``1e-06``, which is text)."""
    text = repr(float(x))
    if 'e' in text:
        mantissa, exp = text.split('e')
        if '.' not in mantissa:
            mantissa += '.0'
        if exp[0] not in '+-':
            exp = '+' + exp
        text = f'{mantissa}e{exp}'
    return text


# a number YAML 1.1 reads as text: an exponent without a dot in the mantissa or without a sign
EXPONENT_TEXT = re.compile(r'^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$')


def _number_text(text: str):
    """``(number, as an option file should write it)`` for text that reads as a number, else None."""
    try:
        number = float(text.replace('_', ''))
    except ValueError:
        return None
    if _whole(number) and 'e' not in text.lower() and '.' not in text:
        return int(number), str(int(number))
    if EXPONENT_TEXT.match(text.strip()):
        mantissa, exp = re.split('[eE]', text.strip())
        return number, f'{mantissa if "." in mantissa else mantissa + ".0"}e{exp if exp[0] in "+-" else "+" + exp}'
    return number, yaml_text(number)


def _whole_numbers_only(tp) -> bool:
    """The numbers ``tp`` accepts are whole (``int``, ``List[int]``, ``Optional[int]``, ...)."""
    kinds = set()

    def visit(t):
        if t in (int, float):
            kinds.add(t)
        for a in typing.get_args(t):
            visit(a)
    visit(tp)
    return kinds == {int}


def _numbers_in(value):
    """``value`` with its number-like texts read as numbers (in lists too), and their texts; None if none."""
    if isinstance(value, str):
        found = _number_text(value)
        return (found[0], [(value, found[1])]) if found else None
    if isinstance(value, list):
        items, texts = [], []
        for v in value:
            found = _numbers_in(v)
            items.append(found[0] if found else v)
            texts += found[1] if found else []
        return (items, texts) if texts else None
    return None


def value_error(key: str, value, option: Option) -> Optional[str]:
    """The one-line message for a value that breaks its declaration (None when it conforms): what the value must
    be, what it is, and how to fix it."""
    if conforms(value, option.type, option.bounds, option.not_empty):
        return None
    expect = describe(option.type, option.bounds, option.not_empty)
    got = 'nothing (~)' if value is None else repr(value)
    leaf = key.rsplit('.', 1)[-1]
    literal = _strip_none(option.type)
    if isinstance(value, str) and typing.get_origin(literal) is Literal:
        return f'{key} must be {expect}, got {got}.{did_you_mean(value, [str(a) for a in typing.get_args(literal)])}'
    numbers = _numbers_in(value)
    if numbers and conforms(numbers[0], option.type, option.bounds):
        converted, texts = numbers
        if isinstance(value, list):
            written = '[' + ', '.join(dict(texts).get(v, yaml_text(v)) if isinstance(v, str) else yaml_text(v)
                                      for v in value) + ']'
        else:
            written = texts[0][1]
        if _whole_numbers_only(option.type):   # total_iter: 3e5 -> 300000, not 3.0e+5
            written = yaml_text(converted if not isinstance(converted, float) else int(converted))
            if isinstance(converted, list):
                written = yaml_text([int(v) if isinstance(v, float) and _whole(v) else v for v in converted])
        yaml11 = [t for t, _ in texts if EXPONENT_TEXT.match(t.strip())]
        why = (f' (a number, without quotes: YAML 1.1, which PyYAML and basicsr follow, reads {", ".join(yaml11)} '
               f'as text)' if yaml11 else ' without quotes')
        fix = f'write {leaf}: {written}{why}'
    elif isinstance(value, str) and conforms(value.strip().lower() == 'true', option.type) and \
            value.strip().lower() in ('true', 'false'):
        fix = f'write {leaf}: {value.strip().lower()} without quotes'
    elif option.has_default:
        fix = f'remove it for the default ({yaml_text(option.default)})'
    else:
        fix = f'{leaf}: {option.doc}' if option.doc else f'see {key} in docs/options.md'
    return f'{key} must be {expect}, got {got}; {fix}'

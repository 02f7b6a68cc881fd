"""Per-layer ``rank`` / ``rank_ratio``: the one format every host, ``GLMHASwap``, ``swap_attention`` and
``glmha compress`` read.

A per-layer option is a number, for every attention layer, or a mapping from module-path prefixes to numbers::

    rank: {encoder_level1: 8, latent.0: 96}          # YAML
    rank_ratio: {'': 0.5, decoder_level1: 0.25}

A key matches the attention layer at module path ``p`` (``model.named_modules()``' name, e.g.
``latent.0.attn``) when it is ``''``, ``p`` itself or ``p`` cut after one of its dots (whole path components:
``latent`` matches ``latent.0.attn``, never ``latent2.0.attn``).  Of the keys that match, the longest wins,
whatever the order of the keys.  A number ``v`` is the mapping ``{'': v}``.  ``rank`` and ``rank_ratio`` are
looked up together: for each layer the longer match of the two applies (so ``rank_ratio: 0.5`` with ``rank:
{latent: 96}`` gives the latent stage rank 96 and every other layer half its channels); a layer that both
match equally long is an error; a layer that neither matches gets :func:`~glmha_plugin.layers.resolve_rank`'s
default (ratio 0.5).  Ranks are whole numbers, multiples of the layer's heads, ``1 <= rank <= C``; ratios are
in ``(0, 1]``.

:func:`layer_options` checks all of it for a network's attention layers before anything is built: a key that
matches no layer and a value that a layer cannot take are one-line errors naming the key and the layer.
"""
import difflib
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .attention import resolve_rank

Number = Union[int, float]
PerLayer = Union[None, int, float, Mapping[str, Number]]   # the type of a per-layer rank / rank_ratio option
OPTIONS = ('rank', 'rank_ratio')
FORMAT = '{module-path prefix: number}'


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fits(option: str, value) -> bool:
    """A value ``option`` can take: a whole number for ``rank``, a number for ``rank_ratio`` (ranges: per layer)."""
    return is_number(value) and (isinstance(value, int) or option != 'rank')


def parse(value: PerLayer, option: str) -> Optional[Dict[str, Number]]:
    """``value`` as ``{prefix: number}`` (a number ``v``: ``{'': v}``; None: None), its shape checked: ``rank``
    takes whole numbers, ``rank_ratio`` numbers (their ranges are checked per layer, :func:`layer_options`)."""
    if value is None:
        return None
    what, each = ('a whole number', 'a whole number') if option == 'rank' else ('a number in (0, 1]', 'a number')
    wrong = f'{option} must be {what} or {{module-path prefix: {each}}}'
    if not isinstance(value, Mapping):
        if not _fits(option, value):
            raise ValueError(f'{wrong}, got {value!r}')
        return {'': value}
    for key, v in value.items():
        if not isinstance(key, str):
            raise ValueError(f'{option}: keys are module-path prefixes (strings, e.g. \'latent\' or '
                             f'\'encoder_level1.0.attn\'), got {key!r}')
        if not _fits(option, v):
            raise ValueError(f'{wrong}, got {v!r} in {dict(value)!r}')
    return dict(value)


def matches(prefix: str, path: str) -> bool:
    """Whether ``prefix`` matches the module path ``path`` (whole components; ``''`` matches every path)."""
    return prefix == '' or path == prefix or path.startswith(prefix + '.')


def longest_match(spec: Mapping[str, Number], path: str) -> Optional[str]:
    """The longest key of ``spec`` that matches ``path`` (None: no key matches).

    Keys that match one path are that path cut at dots, so two of them never have the same length: the
    longest is one key, whatever the order of ``spec``.
    """
    found = [prefix for prefix in spec if matches(prefix, path)]
    return max(found, key=len) if found else None


def lookup(rank: PerLayer, rank_ratio: PerLayer, path: str) -> Dict[str, Number]:
    """The constructor options of the layer at ``path``: ``{'rank': r}``, ``{'rank_ratio': q}`` or ``{}``."""
    found = {}
    for option, value in (('rank', rank), ('rank_ratio', rank_ratio)):
        spec = parse(value, option)
        key = None if spec is None else longest_match(spec, path)
        if key is not None:
            found[option] = (key, spec[key])
    if len(found) == 2:
        (rk, r), (qk, q) = found['rank'], found['rank_ratio']
        if len(rk) == len(qk):
            raise ValueError(f'{path}: both {_source("rank", rk)} ({r}) and {_source("rank_ratio", qk)} ({q}) '
                             f'apply; give one of them for this layer')
        del found['rank' if len(rk) < len(qk) else 'rank_ratio']
    return {option: v for option, (_, v) in found.items()}


def _source(option: str, key: str) -> str:
    return option if key == '' else f'{option}[{key!r}]'


def _ancestors(path: str) -> List[str]:
    parts = path.split('.')
    return ['.'.join(parts[:i]) for i in range(1, len(parts) + 1)]


def _layers_hint(paths: Sequence[str], most: int = 8) -> str:
    """The layers' paths, or where they are: the deepest prefixes that are at most ``most``."""
    if len(paths) <= most:
        return ', '.join(paths) or 'none'
    groups = [paths[0].split('.')[0]]
    for depth in range(1, max(p.count('.') for p in paths) + 1):
        deeper = list(dict.fromkeys('.'.join(p.split('.')[:depth]) for p in paths))
        if len(deeper) > most:
            break
        groups = deeper
    return f'{len(paths)} under {", ".join(groups)} (e.g. {paths[0]})'


def layer_options(rank: PerLayer, rank_ratio: PerLayer, layers: Iterable[Tuple[str, int, int]], owner: str = '',
                  noun: str = 'attention layer') -> Dict[str, Dict[str, Number]]:
    """``{path: constructor options}`` (:func:`lookup`) of every layer ``(path, channels, heads)``, all checked.

    Raises ValueError (one line) for a malformed option, a key that matches no layer (with the closest
    module paths), a layer that both options match equally long, and a rank or ratio the layer cannot take
    (naming the layer, its channels and heads, and the key the value came from).  ``owner`` starts each
    message (e.g. ``'GLMHARestormer: '``); ``noun`` names the layers in the no-match message.
    """
    layers = list(layers)
    paths = [path for path, _, _ in layers]
    try:
        specs = {option: parse(value, option) for option, value in (('rank', rank), ('rank_ratio', rank_ratio))}
    except ValueError as exc:
        raise ValueError(f'{owner}{exc}') from None
    for option, spec in specs.items():
        # '' (a number alone) is every layer, also when there is none
        unused = sorted(key for key in spec or () if key and not any(matches(key, path) for path in paths))
        if unused:
            names = sorted({a for path in paths for a in _ancestors(path)})
            hints = ''.join(f' For {key!r}: did you mean {" or ".join(map(repr, close))}?' for key in unused
                            for close in [difflib.get_close_matches(key, names, n=2, cutoff=0.6)] if close)
            raise ValueError(f'{owner}{option}: prefix(es) {unused} match no {noun}; {noun}s: '
                             f'{_layers_hint(paths)}.{hints}')
    out = {}
    for path, dim, heads in layers:
        try:
            options = lookup(rank, rank_ratio, path)
        except ValueError as exc:
            raise ValueError(f'{owner}{exc}') from None
        try:
            resolve_rank(dim, heads, **options)
        except ValueError as exc:
            option = next(iter(options), None)
            key = None if option is None else longest_match(specs[option], path)
            source = f' (set by {_source(option, key)})' if key else ''
            raise ValueError(f'{owner}{path} ({dim} channels, {heads} heads): {exc}{source}') from None
        out[path] = options
    return out

"""The blocks of an option file and their check: which dataclasses declare each block present in a file (basicsr's,
the plugin's models', the dataset type's), unknown and misplaced keys, required keys, values.
"""
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple

from ...errors import OptionError, did_you_mean
from .basicsr_blocks import (
    BASICSR_DATASETS,
    LOSS_SUFFIX,
    DatasetOptions,
    LossOptions,
    OtherDatasetOptions,
    TopLevelOptions,
)
from .values import Option, declared, is_mapping_of_blocks, unknown_keys_mode, value_error

# ------------------------------------------------------------------------------------------------------------
# The blocks of an option file

def plugin_models() -> Dict[str, type]:
    """Registered models that declare options (the plugin's), by name."""
    from basicsr.utils.registry import MODEL_REGISTRY
    return {n: c for n, c in sorted(MODEL_REGISTRY._obj_map.items()) if model_blocks(c)}


def model_blocks(model_cls) -> Dict[str, Tuple[type, ...]]:
    """``{block path: dataclasses}`` that a model class and its bases declare in ``declared_options``."""
    blocks: Dict[str, Tuple[type, ...]] = {}
    for klass in reversed(getattr(model_cls, '__mro__', ())):
        for path, part in (vars(klass).get('declared_options') or {}).items():
            if part not in blocks.get(path, ()):
                blocks[path] = blocks.get(path, ()) + (part,)
    return blocks


def model_parts(path: str) -> Tuple[type, ...]:
    """The dataclasses the plugin's models add to the block at ``path`` (all models: a key is known whichever model
    reads it; whether the chosen model implements a lever is checked apart)."""
    parts: List[type] = []
    for model in plugin_models().values():
        for part in model_blocks(model).get(path, ()):
            if part not in parts:
                parts.append(part)
    return tuple(parts)


def dataset_parts(ds_type) -> Tuple[type, ...]:
    """The dataclasses of a dataset block's own keys, by its ``type``."""
    from basicsr.utils.registry import DATASET_REGISTRY
    if not isinstance(ds_type, str):
        return (OtherDatasetOptions, )
    own = (getattr(DATASET_REGISTRY._obj_map.get(ds_type), 'declared_options', None) or {}).get('')
    return (own or BASICSR_DATASETS.get(ds_type, OtherDatasetOptions), )


@dataclass(frozen=True)
class Block:
    """An option block as the check sees it: where it is and the dataclasses that declare its keys."""
    path: str                        # dotted path in the file ('' is the top level)
    parts: Tuple[type, ...]
    label: str = ''                  # how messages name it (default: the path)

    @property
    def options(self) -> Dict[str, Option]:
        merged: Dict[str, Option] = {}
        for part in self.parts:
            for key, option in declared(part).items():
                merged.setdefault(key, option)
        return merged

    @property
    def mode(self) -> str:
        return unknown_keys_mode(self.parts)

    @property
    def name(self) -> str:
        return self.label or self.path or 'the top level'


def join_path(path: str, key: str) -> str:
    return f'{path}.{key}' if path else str(key)


def blocks_of(opt: dict) -> Iterator[Tuple[Block, dict]]:
    """Every declared block present in ``opt`` with its value, parents first (``network_g``'s arguments are the
    architecture's: :mod:`.network`)."""
    yield from _walk(Block('', (TopLevelOptions,) + model_parts('')), opt)


def _walk(block: Block, value: dict) -> Iterator[Tuple[Block, dict]]:
    yield block, value
    options = block.options
    for key, sub in value.items():
        option = options.get(key)
        path = join_path(block.path, key)
        if option is None:
            if block.path == 'train' and str(key).endswith(LOSS_SUFFIX) and isinstance(sub, dict):
                yield from _walk(Block(path, (LossOptions,)), sub)
            continue
        if not isinstance(sub, dict):
            continue
        child = option.child()
        if child is None:
            continue
        if is_mapping_of_blocks(option.type):
            for name, entry in sub.items():
                if not isinstance(entry, dict):
                    continue
                entry_path = join_path(path, name)
                if child is DatasetOptions:
                    parts = (DatasetOptions,) + dataset_parts(entry.get('type')) + model_parts(entry_path)
                    label = f'{entry_path} ({entry.get("type")})'
                    yield from _walk(Block(entry_path, parts, label), entry)
                else:
                    yield from _walk(Block(entry_path, (child,) + model_parts(entry_path)), entry)
        else:
            yield from _walk(Block(path, (child,) + model_parts(path)), sub)


# ------------------------------------------------------------------------------------------------------------
# The check

def lever_places() -> Dict[str, str]:
    """Where each GPU-training option goes (``{key: block path}``): a lever found in another block is named as
    misplaced (traiNNer-redux puts ``accum_iter`` under ``datasets.train``)."""
    from ...models.training import GPUTrainingMixin
    places = {key: path for path, part in GPUTrainingMixin.declared_options.items() for key in declared(part)}
    places['use_checkpoint'] = 'network_g'   # every plugin architecture's constructor argument
    return places


def misplaced_message(key: str, path: str) -> Optional[str]:
    place = lever_places().get(key)
    if place is None or place == path:
        return None
    where = f'in {path}' if path else 'at the top level'
    target = join_path(place, key)
    return f'{key} {where} is a {place or "top-level"} option here; move it to {target}'


def hint(key: str, options: Dict[str, Option], prefix: str = '', cutoff: float = 0.8) -> str:
    """`` Did you mean ...?`` for a misspelt key: other projects' names first, then difflib."""
    for name, option in options.items():
        if key in option.aliases:
            return f' Did you mean {prefix + name!r}?'
    return did_you_mean(key, sorted(options), cutoff, prefix)


def check_keys(block: Block, value: dict):
    """OptionError for a key ``block`` does not declare, as its ``unknown_keys`` mode says."""
    options, mode = block.options, block.mode
    for key in value:
        if key in options or (block.path == 'train' and str(key).endswith(LOSS_SUFFIX)):
            continue
        moved = misplaced_message(str(key), block.path)
        if moved:
            raise OptionError(moved)
        if mode == 'refuse':
            raise OptionError(f'{block.name}: unknown option {key!r}.{hint(str(key), options, cutoff=0.6)} Valid '
                              f'options: {", ".join(sorted(options))}')
        if mode == 'hint':
            if block.path == '':
                close = hint(str(key), options)
                if close:
                    raise OptionError(f'unknown top-level option {key!r}.{close} (every option: docs/options.md, '
                                      f'glmha options reference)')
            else:
                close = hint(str(key), options, prefix=block.path + '.')
                if close:
                    raise OptionError(f'{block.path}.{key}: unknown option.{close}')


def check_values(block: Block, value: dict):
    """OptionError for the first value in ``block`` that breaks its declaration."""
    options = block.options
    for key, sub in value.items():
        option = options.get(key)
        if option is None:
            continue
        message = value_error(join_path(block.path, key), sub, option)
        if message:
            raise OptionError(message)


def missing_required(opt: dict, is_train: bool) -> Optional[str]:
    """The message for the first required key that is absent (declaration order, parents first), or None."""
    for block, value in blocks_of(opt):
        for key, option in block.options.items():
            if (option.required == 'always' or (option.required == 'train' and is_train)) and key not in value:
                return f'option {join_path(block.path, key)!r} is missing ({option.doc})'
    return None


def check_declared(opt: dict, is_train: bool = True):
    """OptionError for the first declared rule ``opt`` breaks: required keys, then, block by block, unknown keys
    (``unknown_keys``, package docstring) and values.  ``network_g``'s arguments:
    :func:`~.network.check_network_arguments`."""
    missing = missing_required(opt, is_train)
    if missing:
        raise OptionError(missing)
    for block, value in blocks_of(opt):
        check_keys(block, value)
        check_values(block, value)

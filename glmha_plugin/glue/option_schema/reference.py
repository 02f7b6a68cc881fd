"""The reference of every option in Markdown (``glmha options reference``; ``docs/options.md``), the table of the
GPU-training options (``docs/gpu_training.md``), and writing them into those pages.
"""
import dataclasses
import inspect
from typing import Dict, List, Sequence

from ...data.paired_image_dataset import IOBackendOptions
from .basicsr_blocks import BASICSR_DATASETS, DATASET_BLOCK, DatasetOptions, LossOptions, TopLevelOptions
from .blocks import join_path, model_blocks, model_parts, plugin_models
from .network import clean_doc, network_arguments
from .values import Option, allows_none, declared, describe, unknown_keys_mode, yaml_text

# ------------------------------------------------------------------------------------------------------------
# The reference (docs/options.md)

def _begin(name: str) -> str:
    return f'<!-- BEGIN generated: {name} (glmha options reference --update FILE; edit the declarations, not this) -->'


def _end(name: str) -> str:
    return f'<!-- END generated: {name} -->'


MODES = {'refuse': 'closed', 'hint': 'open', 'pass': 'passed on'}
LEGEND = ('Unknown keys: a **closed** block refuses a key it does not declare and names the closest one; an **open** '
          "block (basicsr's own: basicsr and its forks read more) refuses a key close to a declared one, as a likely "
          'misspelling, and lets others pass; a block **passed on** to the class or function that reads it (an '
          'optimizer, a loss, a metric) checks the declared values only. A GPU-training option in the wrong block '
          'is refused with the block it belongs to.')


def _cell(text: str) -> str:
    return text.replace('|', '\\|').replace('\n', ' ')


def _type_cell(option: Option) -> str:
    words = describe(option.type, option.bounds, option.not_empty)
    return words[2:] if words.startswith('a ') else words[3:] if words.startswith('an ') else words


def _default_cell(option: Option) -> str:
    if option.required:
        return 'required' if option.required == 'always' else 'required to train'
    if option.default is None and not allows_none(option.type):
        return ''
    return f'`{yaml_text(option.default)}`'


def _table(options: Sequence[Option], first: str = 'option') -> List[str]:
    lines = [f'| {first} | type | default | description |', '|---|---|---|---|']
    for o in options:
        doc = o.doc + (f' (other names: {", ".join(f"`{a}`" for a in o.aliases)})' if o.aliases else '')
        lines.append(f'| `{o.key}` | {_cell(_type_cell(o))} | {_default_cell(o)} | {_cell(doc)} |')
    return lines


def _summary(part) -> str:
    """The first sentence of a block dataclass's docstring, without its final full stop."""
    return clean_doc((part.__doc__ or part.__name__).split('\n\n')[0])


def _owner(part) -> str:
    return f'`{part.__module__}.{part.__qualname__}`'


def _readers(part, path: str) -> List[str]:
    return [n for n, m in plugin_models().items() if part in model_blocks(m).get(path, ())]


def _section(title: str, path: str, parts: Sequence[type], out: List[str], note: str = '', mode: bool = True):
    """One block: its first part's table, then a table for each part the plugin's models add."""
    head = _summary(parts[0]) + '.'
    if mode:
        head += f' Unknown keys: {MODES[unknown_keys_mode(parts)]}.'
    out += ['', f'### {title}', '', head + (f' {note}' if note else ''), '']
    out += _table(list(declared(parts[0]).values()))
    out.append(f'\nDeclared in {_owner(parts[0])}.')
    for part in parts[1:]:
        out += ['', f'{_summary(part)}: read by {", ".join(_readers(part, path))}; declared in {_owner(part)}.', '']
        out += _table(list(declared(part).values()))


def reference_markdown() -> str:
    """The reference of every option, in Markdown (``docs/options.md`` carries it)."""
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY
    out = [
           'Generated from the declarations (`glmha_plugin/glue/option_schema/` and the classes it names), which '
           'the pre-flight check of `glmha-train` / `glmha-test` reads: required keys, unknown keys and the type and '
           'range of every value below are checked before basicsr creates anything. A whole number may be written '
           '`5000.0` (Restormer writes `!!float 5e3`); YAML 1.1, which PyYAML and basicsr follow, reads `2e-3` as '
           'text: write `2.0e-3`. Print it with `glmha options reference`.', '', LEGEND]
    _section('Top level', '', (TopLevelOptions,) + model_parts(''), out)
    _section('`datasets.<phase>`', DATASET_BLOCK, (DatasetOptions,), out,
             'Phases: `train`, `val`, and names starting with `val_` or `test_`. Each dataset type adds its own keys '
             '(below); unknown keys: as its type says.', mode=False)
    plugin_datasets = {n: c for n, c in sorted(DATASET_REGISTRY._obj_map.items())
                       if (getattr(c, 'declared_options', None) or {}).get('')}
    for name, cls in plugin_datasets.items():
        _section(f'`datasets.<phase>` with `type: {name}`', DATASET_BLOCK, (cls.declared_options[''],), out)
    for name, part in BASICSR_DATASETS.items():
        _section(f'`datasets.<phase>` with `type: {name}` (basicsr)', DATASET_BLOCK, (part,), out)
    for part in model_parts('datasets.train'):
        _section('`datasets.train`: ' + _summary(part).split(':')[0].split(' (')[0].lower(), 'datasets.train',
                 (part,), out, f'Read by {", ".join(_readers(part, "datasets.train"))} from the train dataset, '
                               'whatever its type.', mode=False)
    _section('`datasets.<phase>.io_backend`', '', (IOBackendOptions,), out)
    _network_section(out, ARCH_REGISTRY)
    for path in ('path', 'train', 'train.optim_g', 'train.scheduler', 'train.<name>_opt', 'val',
                 'val.metrics.<name>', 'logger', 'logger.wandb', 'dist_params'):
        extra = model_parts(path)
        _section(f'`{path}`', path, (_static_part(path),) + extra, out)
        for p in extra:
            for o in declared(p).values():
                if o.child():
                    _section(f'`{path}.{o.key}`', join_path(path, o.key), (o.child(),), out,
                             f'Read by {", ".join(_readers(p, path))}.')
    return '\n'.join(out).strip('\n') + '\n'


def levers_markdown() -> str:
    """The table of the GPU-training options (``docs/gpu_training.md`` carries it)."""
    from ...models.training import GPUTrainingMixin
    rows = []
    for path, part in GPUTrainingMixin.declared_options.items():
        rows += [dataclasses.replace(o, key=join_path(path, o.key)) for o in declared(part).values()]
    return '\n'.join(_table(rows)) + '\n'


def _static_part(path: str):
    if path == 'train.<name>_opt':
        return LossOptions
    part = TopLevelOptions
    for key in path.replace('.<name>', '').split('.'):
        part = declared(part)[key].child()
    return part


def _network_section(out: List[str], registry):
    archs = {n: c for n, c in sorted(registry._obj_map.items(), key=lambda kv: kv[0].lower())
             if getattr(c, '__module__', '').startswith('glmha_plugin.')}
    out += ['', '### `network_g`', '',
            '`type` names a registered architecture; the other keys are the arguments of its constructor, read from '
            'its signature (type, default) and docstring (description): a key the signature lacks is refused with '
            'the closest name, and values are checked against the annotated types. The plugin\'s architectures:']
    groups: Dict[str, List[str]] = {}
    for name, cls in archs.items():
        groups.setdefault(str(inspect.signature(cls)), []).append(name)
    for names in groups.values():
        cls = archs[names[0]]
        out += ['', f'#### {", ".join(f"`{n}`" for n in names)}', '']
        for n in names:
            first = clean_doc((inspect.getdoc(archs[n]) or '').split('\n\n')[0])
            out.append(f'- `{n}`: {first}')
        out.append('')
        out += _table(list(network_arguments(cls).values()), 'argument')


GENERATED = {'option reference': reference_markdown, 'gpu-training options': levers_markdown}


def replace_generated(text: str) -> str:
    """``text`` (a Markdown page) with each generated part it holds (:data:`GENERATED`, between its BEGIN and END
    lines) written anew from the declarations."""
    found = False
    for name, make in GENERATED.items():
        begin, end = _begin(name), _end(name)
        start, stop = text.find(begin), text.find(end)
        if start < 0 and stop < 0:
            continue
        if start < 0 or stop < start:
            raise ValueError(f'the generated part {name!r} needs the line {begin!r} before the line {end!r}')
        text = text[:start] + begin + '\n\n' + make() + '\n' + text[stop:]
        found = True
    if not found:
        raise ValueError(f'no generated part in it (a line {_begin("option reference")!r} and its END line)')
    return text

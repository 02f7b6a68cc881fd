"""The option declarations (glmha_plugin.glue.option_schema): each key declared once, typed, with a default and a
description; the pre-flight check reads them; the docs carry the reference generated from them."""
import ast
import copy
import dataclasses
import glob
import inspect
import os.path as osp

import pytest

from glmha_plugin.errors import OptionError
from glmha_plugin.glue.option_schema.basicsr_blocks import BASICSR_DATASETS, TopLevelOptions
from glmha_plugin.glue.option_schema.blocks import check_declared, model_blocks, plugin_models
from glmha_plugin.glue.option_schema.network import argument_docs, network_arguments
from glmha_plugin.glue.option_schema.reference import levers_markdown, reference_markdown, replace_generated
from glmha_plugin.glue.option_schema.values import conforms, declared, describe
from glmha_plugin.glue.preflight import check_network_keys

from helpers.common import OPTIONS, REPO, TINY_TRAIN, load_yaml, read_fixture

SHIPPED = sorted(glob.glob(osp.join(OPTIONS, '**', '*.yml'), recursive=True))


def every_block():
    """Every block dataclass reachable from the top level, the plugin's models and datasets."""
    from basicsr.utils.registry import DATASET_REGISTRY
    todo = [TopLevelOptions, *BASICSR_DATASETS.values()]
    todo += [p for m in plugin_models().values() for parts in model_blocks(m).values() for p in parts]
    todo += [c.declared_options[''] for c in DATASET_REGISTRY._obj_map.values() if hasattr(c, 'declared_options')]
    seen = []
    while todo:
        part = todo.pop()
        if part in seen:
            continue
        seen.append(part)
        todo += [o.child() for o in declared(part).values() if o.child()]
    return seen


def plugin_archs():
    from basicsr.utils.registry import ARCH_REGISTRY
    return {n: c for n, c in ARCH_REGISTRY._obj_map.items() if c.__module__.startswith('glmha_plugin.')}


def test_every_option_has_one_line_a_known_type_and_a_default_of_that_type():
    blocks = every_block()
    assert len(blocks) >= 20
    for part in blocks:
        for key, option in declared(part).items():
            where = f'{part.__qualname__}.{key}'
            assert option.doc and '\n' not in option.doc, where
            assert not describe(option.type, option.bounds).startswith(('typing', '~')), where   # a type it reads
            if option.has_default:
                assert conforms(option.default, option.type, option.bounds), f'{where}: default {option.default!r}'


def test_each_key_is_declared_once_per_block():
    """A block's parts (basicsr's, the models', the dataset type's) never declare the same key twice."""
    from glmha_plugin.glue.option_schema.blocks import blocks_of
    opt = load_yaml(TINY_TRAIN)
    opt['datasets']['train']['type'] = 'Dataset_PairedImage'
    for block, _ in blocks_of(opt):
        keys = [k for part in block.parts for k in declared(part)]
        assert len(keys) == len(set(keys)), (block.path, sorted(k for k in keys if keys.count(k) > 1))


@pytest.mark.parametrize('path', SHIPPED, ids=lambda p: osp.relpath(p, OPTIONS))
def test_shipped_option_files_pass_the_declarations(path):
    opt = load_yaml(path)
    check_declared(opt, is_train=not osp.basename(path).startswith('test_'))
    check_network_keys(opt['network_g'])


def upstream_files():
    """Restormer's deraining / deblurring and Retinexformer's LOL-v1 option files, rebuilt from the recorded
    values (fixtures) with what the fixtures leave out put back as upstream writes it."""
    files = {}
    for task, recipe in (('Deraining', read_fixture('restormer_recipe.json')['Deraining']),
                         ('Deblurring', read_fixture('restormer_recipe.json')['Deblurring']),
                         ('LOL_v1', read_fixture('retinexformer_recipe.json')['LOL_v1'])):
        opt = {k: copy.deepcopy(v) for k, v in recipe.items()
               if k not in ('file', 'upstream_name', 'upstream_dataroots')}
        opt = dict(name=recipe.get('upstream_name', f'{task}_Restormer'), num_gpu=opt.pop('num_gpu', 8), **opt)
        roots = recipe['upstream_dataroots']
        for phase, set_name in (('train', 'TrainSet'), ('val', 'ValSet')):
            opt['datasets'][phase].update(name=set_name, dataroot_gt=roots[f'{phase}_gt'],
                                          dataroot_lq=roots[f'{phase}_lq'])
        opt['path'].update(pretrain_network_g=None, resume_state=None)
        opt['val'].update(rgb2bgr=True, use_image=opt['val'].get('use_image', True), max_minibatch=8)
        files[task] = opt
    return files


@pytest.mark.parametrize('task', ['Deraining', 'Deblurring', 'LOL_v1'])
def test_upstream_option_files_pass(task):
    opt = upstream_files()[task]
    check_declared(opt)
    check_network_keys(opt['network_g'])


BAD_VALUES = [
    # key, value, fragments of the one-line message
    ('train.optim_g.lr', '2e-3', ["train.optim_g.lr must be a number > 0, got '2e-3'",
                                  'write lr: 2.0e-3 (a number, without quotes: YAML 1.1, which PyYAML and basicsr '
                                  'follow, reads 2e-3 as text)']),
    ('train.scheduler.eta_mins', ['1e-5', 1e-6], ['each a number >= 0', 'write eta_mins: [1.0e-5, 1.0e-06]']),
    ('train.total_iter', 'abc', ["train.total_iter must be a whole number >= 1, got 'abc'",
                                 'total_iter: training length']),
    ('train.total_iter', '3e5', ['write total_iter: 300000']),
    ('train.total_iter', -300, ['train.total_iter must be a whole number >= 1, got -300']),
    ('train.total_iter', True, ['train.total_iter must be a whole number >= 1, got True']),
    ('train.optim_g.lr', True, ['train.optim_g.lr must be a number > 0, got True']),
    ('logger.print_freq', 0, ['logger.print_freq must be a whole number >= 1, got 0']),
    ('logger.save_checkpoint_freq', -1, ['logger.save_checkpoint_freq must be a whole number >= 1, got -1']),
    ('val.val_freq', 0, ['val.val_freq must be a whole number >= 1, got 0']),
    ('val.val_freq', None, ['val.val_freq must be a whole number >= 1, got nothing (~)']),
    ('datasets.train.batch_size_per_gpu', 0, ['datasets.train.batch_size_per_gpu must be a whole number >= 1']),
    ('datasets.train.dataset_enlarge_ratio', 2.5, ['dataset_enlarge_ratio must be a whole number >= 1, got 2.5',
                                                   'remove it for the default (1)']),
    ('val.save_img', 'false', ["val.save_img must be true or false, got 'false'; write save_img: false without "
                               'quotes']),
    ('train.optim_g.betas', [0.9], ['train.optim_g.betas must be a list of 2 values, each a number >= 0 and < 1']),
    ('num_gpu', 'all', ["num_gpu must be auto or a whole number >= 0, got 'all'"]),
    ('datasets.val.io_backend', {'type': 'lmbd'}, ["datasets.val.io_backend.type must be one of disk, lmdb, "
                                                   "memcached, got 'lmbd'. Did you mean 'lmdb'?"]),
    ('name', '', ["name must be text, not empty, got ''"]),
]


@pytest.mark.parametrize('key, value, fragments', BAD_VALUES, ids=lambda v: v if isinstance(v, str) else None)
def test_bad_values_are_named_with_the_expected_type_and_the_fix(key, value, fragments):
    opt = load_yaml(TINY_TRAIN)
    node, *path = opt, *key.split('.')
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(OptionError) as info:
        check_declared(opt)
    msg = str(info.value)
    assert '\n' not in msg
    for fragment in fragments:
        assert fragment in msg, msg


@pytest.mark.parametrize('block, key, fragment', [
    ('val', 'val_frq', "val.val_frq: unknown option. Did you mean 'val.val_freq'?"),
    ('logger', 'save_checkpoint_frq', "Did you mean 'logger.save_checkpoint_freq'?"),
    ('path', 'strict_load', "Did you mean 'path.strict_load_g'"),
    ('train', 'use_amp', 'use_amp in train is a top-level option here; move it to use_amp'),
    ('datasets.train', 'use_flip', "Did you mean 'datasets.train.use_hflip'?"),   # basicsr's dataset reads use_hflip
])
def test_misspelled_or_misplaced_keys_in_open_blocks(block, key, fragment):
    opt = load_yaml(TINY_TRAIN)
    node = opt
    for part in block.split('.'):
        node = node[part]
    node[key] = True
    with pytest.raises(OptionError) as info:
        check_declared(opt)
    assert fragment in str(info.value), str(info.value)


def test_open_blocks_let_unrelated_keys_pass():
    opt = load_yaml(TINY_TRAIN)
    opt['val']['my_flag'] = 1
    opt['logger']['wandb'] = {'project': None, 'entity': 'me'}
    opt['train']['optim_g']['amsgrad'] = True          # passed on to torch.optim
    check_declared(opt)


@pytest.mark.parametrize('ds_type, block, key, fragment', [
    ('ARAD1KDataset', {'dataroot': 'd'}, 'stide', "unknown option 'stide'. Did you mean 'stride'?"),
    ('CASSIDataset', {'dataroot_gt': 'd', 'mask_path': 'm'}, 'mosiac_prob', "Did you mean 'mosaic_prob'?"),
])
def test_the_plugins_datasets_are_closed_blocks(ds_type, block, key, fragment):
    opt = load_yaml(TINY_TRAIN)
    opt['datasets']['val'] = dict(name='v', type=ds_type, **block)
    check_declared(opt)
    opt['datasets']['val'][key] = 1
    with pytest.raises(OptionError) as info:
        check_declared(opt)
    assert f'datasets.val ({ds_type}): ' in str(info.value) and fragment in str(info.value)


def test_required_keys_of_nested_blocks():
    opt = load_yaml(TINY_TRAIN)
    del opt['train']['optim_g']['lr']
    with pytest.raises(OptionError, match=r"option 'train.optim_g.lr' is missing"):
        check_declared(opt)
    opt = load_yaml(TINY_TRAIN)
    del opt['logger']
    check_declared(opt, is_train=False)           # a test run needs no logger
    with pytest.raises(OptionError, match=r"option 'logger' is missing"):
        check_declared(opt)


def test_network_arguments_are_the_constructor_signatures():
    """network_g's declaration is each architecture's signature: every argument, its default, its annotated type
    checked, a description from the docstrings where they give one."""
    archs = plugin_archs()
    assert {'Restormer', 'GLMHARestormer', 'MST', 'MST_Plus_Plus', 'RetinexFormer', 'GLMHASwap'} <= set(archs)
    for name, cls in archs.items():
        args = network_arguments(cls)
        assert list(args) == [p for p in inspect.signature(cls).parameters], name
    restormer = network_arguments(archs['Restormer'])
    assert restormer['dim'].default == 48 and restormer['heads'].default == (1, 2, 4, 8)
    assert 'calibration reduction' in restormer['gamma'].doc and restormer['dim'].doc == "Restormer's own argument"
    assert argument_docs(archs['MST'])['dim'] == 'channels at level 0 and bands, 28'
    assert argument_docs(archs['MST'])['rank_ratio'] == argument_docs(archs['MST'])['rank']
    with pytest.raises(OptionError, match="network_g.dim must be a whole number, got '48'; write dim: 48 without "
                                          'quotes'):
        check_network_keys({'type': 'Restormer', 'dim': '48'})
    check_network_keys({'type': 'GLMHARestormer', 'rank_ratio': {'encoder_level1': 0.25}, 'heads': [1, 2, 4, 8]})
    with pytest.raises(OptionError, match='accum_iter in network_g is a train option here; move it to '
                                          'train.accum_iter'):
        check_network_keys({'type': 'MST', 'accum_iter': 2})
    with pytest.raises(OptionError, match="network_g.base: Restormer has no option 'dimm'. Did you mean 'dim'"):
        check_network_keys({'type': 'GLMHASwap', 'base': {'type': 'Restormer', 'dimm': 8}})


def generated_docs():
    return [osp.join(REPO, 'docs', 'options.md'), osp.join(REPO, 'docs', 'gpu_training.md')]


@pytest.mark.parametrize('page', generated_docs(), ids=osp.basename)
def test_the_docs_carry_the_reference_generated_from_the_declarations(page):
    text = open(page, encoding='utf-8').read()
    assert replace_generated(text) == text, (f'{osp.relpath(page, REPO)} differs from the declarations: run glmha '
                                             f'options reference --update docs/options.md docs/gpu_training.md')


def test_the_reference_names_every_option():
    ref = reference_markdown()
    for part in every_block():
        for key in declared(part):
            assert f'| `{key}` |' in ref, f'{part.__qualname__}.{key}'
    for name, cls in plugin_archs().items():
        assert f'`{name}`' in ref
        for key in inspect.signature(cls).parameters:
            assert f'| `{key}` |' in ref
    assert '| `train.accum_iter` | whole number >= 1 | `1` |' in levers_markdown()


def test_reference_command_prints_and_updates(tmp_path, capsys):
    from glmha_plugin.commands.glmha import main
    assert main(['options', 'reference']) == 0
    assert capsys.readouterr().out == reference_markdown()
    page = tmp_path / 'page.md'
    page.write_text(open(generated_docs()[0], encoding='utf-8').read().replace('| `total_iter` |', '| `total_it` |'))
    assert main(['options', 'reference', '--update', str(page)]) == 0
    assert 'updated' in capsys.readouterr().out
    assert page.read_text() == open(generated_docs()[0], encoding='utf-8').read()
    assert main(['options', 'reference', '--update', str(page)]) == 0 and 'up to date' in capsys.readouterr().out
    (tmp_path / 'plain.md').write_text('# no generated part\n')
    assert main(['options', 'reference', '--update', str(tmp_path / 'plain.md')]) == 2
    assert 'no generated part' in capsys.readouterr().err


def dataset_keys_read(cls) -> set:
    """String keys a dataset class reads from its option dict (``opt['k']``, ``opt.get('k')``, ``self.opt...``)."""
    tree = ast.parse(inspect.getsource(cls))
    keys = set()

    def is_opt(node):
        return (isinstance(node, ast.Name) and node.id == 'opt') or (
            isinstance(node, ast.Attribute) and node.attr == 'opt' and isinstance(node.value, ast.Name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and is_opt(node.value) and isinstance(node.slice, ast.Constant):
            keys.add(node.slice.value)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == 'get'
                and is_opt(node.func.value) and node.args and isinstance(node.args[0], ast.Constant)):
            keys.add(node.args[0].value)
    return keys


def test_the_plugins_datasets_declare_every_key_they_read():
    from basicsr.utils.registry import DATASET_REGISTRY

    from glmha_plugin.glue.option_schema.basicsr_blocks import DatasetOptions
    datasets = {n: c for n, c in DATASET_REGISTRY._obj_map.items() if hasattr(c, 'declared_options')}
    assert {'Dataset_PairedImage', 'ARAD1KDataset', 'CASSIDataset'} <= set(datasets)
    for name, cls in datasets.items():
        read = dataset_keys_read(cls)
        assert read, name
        undeclared = read - set(declared(cls.declared_options[''])) - set(declared(DatasetOptions))
        assert not undeclared, f'{name} reads undeclared options {sorted(undeclared)}'


def test_the_models_read_their_defaults_from_the_declarations(monkeypatch):
    """A changed default changes what the code does: the declaration is the only place it is written."""
    from glmha_plugin.models import training
    assert training.accum_iter({}) == 1
    monkeypatch.setattr(training, 'TrainLeverOptions', dataclasses.make_dataclass('T', [('accum_iter', int, 3)]))
    assert training.accum_iter({'train': {}}) == 3

"""ONNX export (glmha_plugin/deploy/onnx_export.py, glmha export, glmha export) of every host, checked with onnxruntime.

The slow tests export each host's GLMHA network in its smallest configuration (:data:`SMALLEST`; the time
of an export grows with the number of modules traced: 12 to 31 s of CPU each) and run the file with
onnxruntime at two sizes and batches (one needs padding); ``GLMHA_TEST_ONNX_ALL=1`` adds the CSA twins (the
six of the first three hosts matched eager within 1e-6 when run).  The fast
tests cover what makes the graph size-generic (batched attention, padding and crop while exporting)
through ``torch.export`` alone, and the command line's errors.
"""
import argparse
import os

import onnx
import pytest
import torch
import yaml
from torch.export import Dim

from glmha_plugin.analysis.hosts import HOSTS, get_host
from glmha_plugin.archs.mst_arch import extend_shifted_back
from glmha_plugin.deploy import onnx_export as export
from glmha_plugin.layers import GLMHA, SpectralMSA, crop, pad_to_multiple

from helpers.archs import ARCHS
from helpers.common import load_yaml

ALL = os.environ.get('GLMHA_TEST_ONNX_ALL') == '1'
# The hosts' tiny configurations, MST's with one level instead of two: the same modules (encoder, bottleneck,
# decoder, the mask input, padding to 2^stage), half the graph to trace.
SMALLEST = {'mst_l': dict(stage=1, num_blocks=[1, 1])}


def test_every_registered_architecture_has_a_host_to_export_it():
    assert set(export.registered_archs()) | {export.SWAP_BUILDER} == set(ARCHS)


def test_swap_builder_exports_with_its_base_networks_inputs():
    host = export.host_of('GLMHASwap', {'base': {'type': 'MST', 'stage': 1}, 'rank_ratio': 0.5})
    assert host.name == 'mst_l'
    with pytest.raises(export.UsageError, match='base: {type'):
        export.host_of('GLMHASwap', {'rank_ratio': 0.5})


def _dynamic(*inputs):
    side = Dim.DYNAMIC(min=export.MIN_SIDE)
    return tuple({0: Dim.DYNAMIC, 2: side, 3: side} for _ in inputs)


@pytest.mark.parametrize('layer,shape', [(lambda: GLMHA(16, 2), (2, 16, 17, 19)),
                                         (lambda: SpectralMSA(16, 2, 'glmha', rank=8), (2, 17, 19, 16))],
                         ids=['glmha', 'spectral_msa'])
def test_exported_layer_serves_other_batches_and_sizes(layer, shape):
    """While exporting the layers take the batched path: the per-image loop would fix the batch size."""
    torch.manual_seed(0)
    m = layer().eval()
    x = torch.randn(*shape)
    dims = ({0: Dim.DYNAMIC, 1: Dim.DYNAMIC(min=16), 2: Dim.DYNAMIC(min=16)} if isinstance(m, SpectralMSA) else
            _dynamic(x)[0])
    program = torch.export.export(m, (x,), dynamic_shapes=(dims,))
    others = ((3, 20, 16, 16), (1, 16, 24, 16)) if isinstance(m, SpectralMSA) else ((3, 16, 20, 16), (1, 16, 16, 24))
    for other in others:
        y = torch.randn(*other)
        with torch.no_grad():
            torch.testing.assert_close(program.module()(y), m(y), rtol=1e-5, atol=1e-6)


class _PadCrop(torch.nn.Module):
    def forward(self, x):
        h, w = x.shape[-2:]
        return crop(pad_to_multiple(x, 8) * 2, h, w)


class _Extend(torch.nn.Module):
    def forward(self, x):
        return extend_shifted_back(x, -x.shape[-1] % 4, 2)


@pytest.mark.parametrize('module,expected', [(_PadCrop(), lambda x: x * 2),
                                             (_Extend(), lambda x: extend_shifted_back(x, -x.shape[-1] % 4, 2))],
                         ids=['pad_crop', 'extend_shifted_back'])
def test_exported_padding_serves_sizes_with_and_without_padding(module, expected):
    """An example that needs padding must not fix the graph to padded sizes, nor one that needs none."""
    for example in ((2, 6, 17, 21), (2, 6, 16, 24)):
        program = torch.export.export(module, (torch.rand(*example),), dynamic_shapes=_dynamic(example))
        for shape in ((1, 6, 16, 16), (3, 6, 19, 23), (2, 6, 24, 17)):
            x = torch.rand(*shape)
            torch.testing.assert_close(program.module()(x), expected(x))


def _archs():
    hosts = [HOSTS[name]() for name in sorted(HOSTS)]
    return [arch for host in hosts for arch in (host.other_archs if not ALL else (host.arch, *host.other_archs))]


@pytest.mark.slow
@pytest.mark.parametrize('arch', _archs())
def test_onnx_matches_eager_at_two_sizes(arch, tmp_path):
    """Every host's GLMHA network (smallest), dynamic batch/height/width, onnxruntime within 1e-4 of eager."""
    host = export.host_of(arch)
    model = export.build_network(arch, dict(host.tiny, **SMALLEST.get(host.name, {})))
    path = str(tmp_path / f'{arch}.onnx')
    checks = export.export_and_check(model, host, path)
    assert len(checks) == 2 and {c.shapes[0][0] for c in checks} == {1, 2}
    assert any(s[-1] % 8 for c in checks for s in c.shapes[:1])               # one size needs padding
    assert all(c.ok and c.max_abs_diff <= 1e-4 for c in checks), checks
    graph = onnx.load(path).graph
    names = export.input_names(model, len(checks[0].shapes))
    assert [i.name for i in graph.input] == names and [o.name for o in graph.output] == ['output']
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        assert [bool(d.dim_param) for d in dims] == [True, False, True, True], (value.name, dims)


@pytest.mark.slow
def test_cli_exports_an_option_file_with_weights_in_fp16(tmp_path, capsys):
    """glmha export --opt (network_g of an option file: the shipped tiny CASSI one, one level) --weights --fp16:
    MST's two inputs x, mask."""
    shipped = load_yaml(os.path.join('tiny', 'Tiny_CASSI_MST_GLMHA.yml'))
    shipped['network_g'].update(SMALLEST['mst_l'])
    opt = tmp_path / 'Tiny_CASSI_MST_GLMHA.yml'
    opt.write_text(yaml.safe_dump(shipped))
    opt = str(opt)
    arch, options = export.network_spec(argparse.Namespace(opt=opt, type=None, options=None, tiny=False))
    torch.manual_seed(1)
    weights = tmp_path / 'net.pth'
    torch.save({'params': export.build_network(arch, options).state_dict()}, weights)
    out = tmp_path / 'mst.onnx'
    assert export.main(['--opt', opt, '--weights', str(weights), '--out', str(out), '--fp16']) == 0
    printed = capsys.readouterr().out
    assert f'exporting GLMHAMST (float16, weights {weights})' in printed
    assert printed.count('(ok, tolerance 0.01)') == 2 and 'inputs x, mask' in printed
    graph = onnx.load(str(out)).graph
    assert [i.type.tensor_type.elem_type for i in graph.input] == [onnx.TensorProto.FLOAT16] * 2


def test_cli_lists_and_refuses_clearly(tmp_path, capsys):
    assert export.main(['--list']) == 0
    listed = capsys.readouterr().out
    assert all(arch in listed for arch in ARCHS) and 'host mst_l' in listed
    assert export.main(['--type', 'SwinIR']) == 2
    assert "network type 'SwinIR' cannot be exported: known types are" in capsys.readouterr().err
    assert export.main([]) == 2
    assert 'give --opt OPTION.yml' in capsys.readouterr().err
    assert export.main(['--type', 'GLMHARestormer', '--options', '[1, 2]']) == 2
    assert '--options must be a mapping' in capsys.readouterr().err
    assert export.main(['--type', 'GLMHARestormer', '--options', '{heads: [1, 2]}']) == 2
    assert 'GLMHARestormer(' in capsys.readouterr().err
    bad = tmp_path / 'other.pth'
    host = get_host('restormer')
    torch.save({'params': host.build(**dict(host.tiny, dim=16)).state_dict()}, bad)
    assert export.main(['--type', 'GLMHARestormer', '--tiny', '--weights', str(bad)]) == 2
    assert 'does not fit GLMHARestormer' in capsys.readouterr().err


class _Scaled(torch.nn.Module):
    """y = scale * x + offset: the eager side of a hand-built ONNX graph computing 100 * x."""

    def __init__(self, offset: float, scale: float = 100.0):
        super().__init__()
        self.inp_channels, self.offset, self.scale = 3, offset, scale   # the channel count a Restormer reports

    def forward(self, x):
        return self.scale * x + self.offset


def _times_100_onnx(path, elem):
    from onnx import helper
    dims = ['b', 3, 'h', 'w']
    hundred = helper.make_tensor('hundred', elem, [], [100.0])
    graph = helper.make_graph([helper.make_node('Mul', ['x', 'hundred'], ['output'])], 'times100',
                              [helper.make_tensor_value_info('x', elem, dims)],
                              [helper.make_tensor_value_info('output', elem, dims)], [hundred])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def test_check_onnx_is_absolute_in_float32_and_relative_in_float16(tmp_path):
    """float32: the largest absolute difference against 1e-4 (outputs near 100 here, so a relative check would let
    2e-4 pass); float16: the difference relative to the largest output, against 1e-2."""
    from onnx import TensorProto
    host = get_host('restormer')
    f32 = _times_100_onnx(tmp_path / 'f32.onnx', TensorProto.FLOAT)
    assert all(c.ok for c in export.check_onnx(f32, _Scaled(5e-5), host))
    bad = export.check_onnx(f32, _Scaled(2e-4), host)
    assert not any(c.ok for c in bad) and all(abs(c.error - 2e-4) < 2e-5 for c in bad), bad
    f16 = _times_100_onnx(tmp_path / 'f16.onnx', TensorProto.FLOAT16)
    assert all(c.ok for c in export.check_onnx(f16, _Scaled(0.0, 100.5), host, torch.float16))   # 0.5%
    assert not any(c.ok for c in export.check_onnx(f16, _Scaled(0.0, 103.0), host, torch.float16))  # 3%

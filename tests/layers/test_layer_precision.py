"""Mixed precision in the layers: big products in bf16/fp16, the float32 islands in float32, on both paths.

What runs in which dtype is read from the ATen ops that actually execute (a
``TorchDispatchMode`` sees every op after autocast has cast its inputs), not
from flags.  The islands (glmha_plugin/layers/float32_islands.py): pixel L2 norms,
score normalisation and softmax of both attention layers, layer norms,
calibration sigmoid.

Tolerance of "bf16 output close to float32 output": relative error
||y_bf16 - y_fp32|| / ||y_fp32|| <= 0.02.  bf16 keeps 8 bits of mantissa, so
one rounding of the output alone costs 2^-9 relative (measured 0.0017 on these
inputs); a layer chains 3 to 5 roundings (projection, depth-wise conv, q k^T,
A v, output projection), measured 0.002 to 0.0065 for every layer here on
both paths.  0.02 leaves a factor 3 for other seeds and sizes and is still
small against what a broken island does (the fp16 overflow test below: NaN
or errors of 5% and more).
"""
from typing import List, Tuple

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from glmha_plugin.layers import CSA, GLMHA, Calibration, Float32LayerNorm, GatedDconvFFN, LayerNorm2d, SpectralMSA

from helpers.archs import ARCHS

LOW = {'convolution', 'mm', 'bmm', 'baddbmm', 'addmm'}                  # must run in bf16 under autocast
ISLAND = {'_softmax', 'native_layer_norm', 'sigmoid', 'sqrt', 'linalg_vector_norm', 'rsqrt', 'var', 'div'}
NORMS = {'sqrt', 'linalg_vector_norm'}                                  # CPU path: sqrt of summed squares
TOLERANCE = 0.02


class OpDtypes(TorchDispatchMode):
    """Records (op name, floating input dtypes, floating output dtypes) of every ATen op that runs."""

    def __init__(self):
        super().__init__()
        self.ops: List[Tuple[str, list, list]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))

        def dtypes(tree):
            return [t.dtype for t in tree_leaves(tree) if isinstance(t, torch.Tensor) and t.is_floating_point()]

        self.ops.append((func.overloadpacket.__name__, dtypes((args, kwargs)), dtypes(out)))
        return out

    def names(self):
        return {name for name, _, _ in self.ops}


def _run(module, *inputs, dtype=torch.bfloat16):
    with torch.autocast('cpu', dtype=dtype), OpDtypes() as rec:
        out = module(*inputs)
    return out, rec


def _check(rec: OpDtypes, required: set, low=torch.bfloat16):
    low_ops = [op for op in rec.ops if op[0] in LOW]
    assert low_ops, 'no convolution or matrix product ran'
    for name, ins, _ in low_ops:
        assert ins and all(d == low for d in ins), f'{name} ran with {ins}, expected {low}'
    for name, ins, outs in rec.ops:
        if name in ISLAND:
            # linalg_vector_norm(..., dtype=float32) casts its input to float32 before reducing (documented)
            checked = outs if name == 'linalg_vector_norm' else ins + outs
            assert all(d == torch.float32 for d in checked), f'{name} ran with {ins} -> {outs}, expected float32'
    missing = {r for r in required if not (rec.names() & (NORMS if r == 'norms' else {r}))}
    assert not missing, f'expected {missing} to run (ran: {sorted(rec.names())})'


ATTENTION_LAYERS = {
    'csa': (lambda: CSA(16, 2, bias=True), (2, 16, 5, 7), set()),
    'glmha': (lambda: GLMHA(16, 2, bias=True), (2, 16, 5, 7), {'sigmoid'}),
    'glmha_unguided': (lambda: GLMHA(16, 2, guidance='none'), (2, 16, 5, 7), set()),
    'msa_csa': (lambda: SpectralMSA(16, 2), (2, 5, 7, 16), set()),
    'msa_glmha': (lambda: SpectralMSA(16, 2, 'glmha', rank=8), (2, 5, 7, 16), {'sigmoid'}),
}


@pytest.mark.parametrize('name', sorted(ATTENTION_LAYERS))
def test_attention_islands_are_float32_and_products_bf16(path, name):
    build, shape, extra = ATTENTION_LAYERS[name]
    torch.manual_seed(0)
    m = build()
    out, rec = _run(m, torch.randn(*shape))
    _check(rec, {'_softmax', 'div', 'norms'} | extra)
    assert out.dtype == torch.bfloat16


@pytest.mark.parametrize('norm', [lambda: LayerNorm2d(16, 'WithBias'), lambda: LayerNorm2d(16, 'BiasFree'),
                                  lambda: Float32LayerNorm(16)], ids=['with_bias', 'bias_free', 'float32_ln'])
def test_layer_norms_compute_in_float32_and_return_the_input_dtype(norm):
    m = norm()
    x = torch.randn(2, 16, 5, 7)
    x = x.permute(0, 2, 3, 1) if isinstance(m, Float32LayerNorm) else x
    conv = torch.nn.Conv2d(16, 16, 1) if not isinstance(m, Float32LayerNorm) else torch.nn.Linear(16, 16)
    with torch.autocast('cpu', dtype=torch.bfloat16), OpDtypes() as rec:
        h = conv(x)                                     # bf16, as in a network
        out = m(h)
    assert h.dtype == out.dtype == torch.bfloat16
    islands = [op for op in rec.ops if op[0] in ISLAND]
    assert islands and all(d == torch.float32 for _, ins, outs in islands for d in ins + outs), islands
    with torch.no_grad():
        ref = m(h.float())
    assert ((out.float() - ref).norm() / ref.norm()) <= TOLERANCE


def test_calibration_sigmoid_is_float32():
    m = Calibration(16, 4)
    with torch.autocast('cpu', dtype=torch.bfloat16), OpDtypes() as rec:
        g = m(torch.randn(2, 16, 5, 7))
    sigmoids = [op for op in rec.ops if op[0] == 'sigmoid']
    assert sigmoids == [('sigmoid', [torch.float32], [torch.float32])]
    products = [ins for name, ins, _ in rec.ops if name in LOW]
    assert len(products) == 2 and all(ins == [torch.bfloat16] * len(ins) for ins in products)   # fc1, fc2
    assert g.dtype == torch.bfloat16                       # handed back in fc2's dtype


LAYERS = dict({k: v[:2] for k, v in ATTENTION_LAYERS.items()},
              ffn=(lambda: GatedDconvFFN(16, 2.66, False), (2, 16, 5, 7)))


@pytest.mark.parametrize('name', sorted(LAYERS))
def test_bf16_output_is_close_to_float32(path, name):
    build, shape = LAYERS[name]
    torch.manual_seed(0)
    m = build()
    with torch.no_grad():
        for p_name, p in m.named_parameters():
            if p_name in ('temperature', 'rescale'):
                p.uniform_(0.5, 4)
    x = torch.randn(*shape[:-2], 32, 32) if shape[1] == 16 else torch.randn(shape[0], 32, 32, shape[-1])
    with torch.no_grad():
        ref = m(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = m(x)
    err = ((out.float() - ref).norm() / ref.norm()).item()
    assert err <= TOLERANCE, f'{name}: bf16 relative error {err:.4f} > {TOLERANCE}'


@pytest.mark.parametrize('name', ['glmha', 'msa_csa'])
def test_fp16_stays_finite_where_unnormalised_scores_overflow(path, name):
    """128 x 128 pixels of features with std ~5: sums of squares and q k^T exceed fp16's 65,504.  Norms in
    float32 and q, k normalised before the fp16 product keep the output within the tolerance and the
    gradients finite (before these islands: NaN for the spectral layer, 6% error for GLMHA)."""
    build, shape, _ = ATTENTION_LAYERS[name]
    torch.manual_seed(0)
    m = build()
    x = (torch.randn(1, 16, 128, 128) if shape[1] == 16 else torch.randn(1, 128, 128, 16)) * 8
    with torch.no_grad():
        ref = m(x)
    x.requires_grad_()
    with torch.autocast('cpu', dtype=torch.float16):
        out = m(x)
    assert out.dtype == torch.float16
    err = ((out.float() - ref).norm() / ref.norm()).item()
    assert err <= TOLERANCE, f'fp16 relative error {err}'
    out.float().square().mean().backward()
    assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in m.parameters())


@pytest.mark.parametrize('name', ['GLMHARestormer', 'GLMHAMST', 'GLMHAMSTPlusPlus'])
def test_networks_run_products_in_bf16_and_islands_in_float32(path, name):
    """Whole tiny networks under bf16 autocast: every conv / product in bf16, every island op in float32
    (MST's mask-guidance sigmoid, upstream's gate, is not an island), output close to float32."""
    build, make_input = ARCHS[name]
    torch.manual_seed(0)
    net, x = build().eval(), make_input()
    out, rec = _run(net, x)
    if name == 'GLMHAMST':
        rec.ops = [op for op in rec.ops if op[0] != 'sigmoid' or op[1] == [torch.float32]]
    _check(rec, {'_softmax', 'native_layer_norm', 'norms', 'sigmoid'})
    with torch.no_grad():
        ref = net(x)
    assert ((out.float() - ref).norm() / ref.norm()) <= TOLERANCE

"""The speed-oriented implementations compute the reference definitions, forward and backward.

Reference definitions are written out here from Restormer's equations with
plain ``nn.Conv2d`` calls on NCHW tensors (the way upstream computes them);
the package's layers run 1x1 convs as matrix products on channels-last
tensors, fuse the L2 normalisation into the attention scores and use
``F.layer_norm``.  Both must agree on values and on every gradient.
"""
import pytest
import torch
import torch.nn.functional as F

from conftest import TINY_RESTORMER
from glmha_plugin.archs import Restormer
from glmha_plugin.layers import CSA, GLMHA, GatedDconvFFN, LayerNorm2d
from glmha_plugin.layers.pointwise import pointwise_nhwc
from references import mdta


def _reference_attention(m, x):
    """MDTA / GLMHA from the written-out equations, with the layer's parameters (and its guidance g)."""
    return mdta(x, dict(m.named_parameters()), m.num_heads, m.rank, None if m.calib is None else m.calib(x))


def _grads(module, x, fn):
    x = x.clone().requires_grad_()
    module.zero_grad(set_to_none=True)
    out = fn(x)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out.detach(), x.grad, {n: p.grad.clone() for n, p in module.named_parameters()}


def _assert_same(module, x, fast, ref):
    out_f, gx_f, gp_f = _grads(module, x, fast)
    out_r, gx_r, gp_r = _grads(module, x, ref)
    torch.testing.assert_close(out_f, out_r, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gx_f, gx_r, rtol=1e-4, atol=1e-5)
    assert gp_f.keys() == gp_r.keys()
    for name in gp_f:
        torch.testing.assert_close(gp_f[name], gp_r[name], rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('bias', [False, True])
@pytest.mark.parametrize('layer', ['csa', 'glmha', 'glmha_none'])
@pytest.mark.parametrize('batch,dim,heads,rank', [(1, 16, 1, 8), (3, 24, 4, 12), (2, 32, 2, 32)])
def test_attention_equals_reference_forward_and_backward(layer, bias, channels_last, batch, dim, heads, rank):
    torch.manual_seed(0)
    m = {'csa': lambda: CSA(dim, heads, bias), 'glmha': lambda: GLMHA(dim, heads, bias, rank=rank),
         'glmha_none': lambda: GLMHA(dim, heads, bias, rank=rank, guidance='none')}[layer]()
    with torch.no_grad():
        m.temperature.uniform_(0.5, 2)
    x = torch.randn(batch, dim, 5, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    _assert_same(m, x, m, lambda t: _reference_attention(m, t))


def test_attention_maps_are_the_forward_maps():
    torch.manual_seed(0)
    m = GLMHA(24, 4, rank=12)
    x = torch.randn(2, 24, 6, 5)
    maps = m.attention_maps(x)
    assert maps.shape == (2, 4, 6, 3)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 4, 6))
    q, k, v = m.split_qkv(x)
    out = maps @ v.reshape(2, 4, 3, 30)
    ref = pointwise_nhwc(out.reshape(2, 24, 6, 5), m.project_out.weight)
    torch.testing.assert_close(m(x), ref)


@pytest.mark.parametrize('layout', ['nchw', 'channels_last', 'strided'])
@pytest.mark.parametrize('bias', [False, True])
def test_pointwise_equals_conv(layout, bias):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 10, 1, bias=bias)
    x = torch.randn(3, 6, 4, 5)
    if layout == 'channels_last':
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == 'strided':
        x = torch.randn(3, 9, 4, 5)[:, 2:8]
    out = pointwise_nhwc(x, conv.weight, conv.bias)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, conv(x))
    per_image = torch.randn(3, 10, 6)  # a different weight per image (GLMHA's folded guidance)
    ref = torch.cat([F.conv2d(x[i:i + 1], per_image[i, :, :, None, None], conv.bias) for i in range(3)])
    torch.testing.assert_close(pointwise_nhwc(x, per_image, conv.bias), ref)


@pytest.mark.parametrize('ln_type', ['WithBias', 'BiasFree'])
@pytest.mark.parametrize('channels_last', [False, True])
def test_layer_norm_equals_restormers(ln_type, channels_last):
    """Restormer: to_3d (B, HW, C) -> LayerNorm over C (biased variance, eps 1e-5) -> to_4d."""
    torch.manual_seed(0)
    norm = LayerNorm2d(12, ln_type)
    with torch.no_grad():
        norm.body.weight.uniform_(0.5, 1.5)
        if norm.body.bias is not None:
            norm.body.bias.uniform_(-1, 1)
    x = torch.randn(2, 12, 5, 6) * 3 + 1
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def ref(t):
        b, c, h, w = t.shape
        t3 = t.flatten(2).transpose(1, 2)
        var = t3.var(-1, keepdim=True, unbiased=False)
        if ln_type == 'BiasFree':
            y = t3 / torch.sqrt(var + 1e-5) * norm.body.weight
        else:
            y = (t3 - t3.mean(-1, keepdim=True)) / torch.sqrt(var + 1e-5) * norm.body.weight + norm.body.bias
        return y.transpose(1, 2).reshape(b, c, h, w)

    _assert_same(norm, x, norm, ref)


@pytest.mark.parametrize('bias', [False, True])
def test_gdfn_equals_module_convs(bias):
    torch.manual_seed(0)
    ffn = GatedDconvFFN(8, 2.66, bias)
    x = torch.randn(2, 8, 6, 5)

    def ref(t):
        x1, x2 = ffn.dwconv(ffn.project_in(t)).chunk(2, dim=1)
        return ffn.project_out(F.gelu(x1) * x2)

    _assert_same(ffn, x, ffn, ref)


def test_restormer_output_is_contiguous_nchw():
    net = Restormer(**TINY_RESTORMER).eval()
    with torch.no_grad():
        y = net(torch.rand(1, 3, 12, 20))
    assert y.is_contiguous() and y.shape == (1, 3, 12, 20)


def test_pixel_norms_match_vector_norm_and_stay_finite_at_zero():
    from glmha_plugin.layers.attention import pixel_norms
    torch.manual_seed(0)
    t = torch.randn(3, 5, 70)
    torch.testing.assert_close(pixel_norms(t, chunk=16), torch.linalg.vector_norm(t, dim=-1))
    torch.testing.assert_close(pixel_norms(t), torch.linalg.vector_norm(t, dim=-1))
    zero = torch.zeros(2, 4, 9, requires_grad=True)
    n = pixel_norms(zero)
    assert torch.all(n == 1e-12)
    n.sum().backward()
    assert torch.isfinite(zero.grad).all()
    # and through a whole layer: an all-zero input gives finite gradients everywhere
    m = GLMHA(16, 2)
    x = torch.zeros(1, 16, 4, 4, requires_grad=True)
    m(x).sum().backward()
    assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in m.parameters())

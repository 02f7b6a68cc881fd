"""The speed-oriented implementations compute the reference definitions, forward and backward, on both paths.

Reference definitions are written out here from Restormer's equations with
plain ``nn.Conv2d`` calls on NCHW tensors (the way upstream computes them);
the package's layers run 1x1 convs as matrix products on channels-last
tensors (CPU path) or as cuDNN-style convolutions (CUDA path), fuse the L2
normalisation into the attention scores, loop over images (CPU path) or run
one batched product (CUDA path) and use ``F.layer_norm``.  Every path must
agree with the reference on values and on every gradient; the CUDA path is
forced onto CPU tensors with ``force_path`` (glmha_plugin/layers/paths.py).
"""
import pytest
import torch
import torch.nn.functional as F

from glmha_plugin.archs import GLMHAMST, GLMHAMSTPlusPlus, GLMHARestormer, Restormer
from glmha_plugin.layers import CSA, GLMHA, GatedDconvFFN, LayerNorm2d, SpectralMSA, paths
from glmha_plugin.layers.paths import CPU_PATH, CUDA_PATH, PATHS, force_path, layer_path
from glmha_plugin.layers.pointwise import GuidedConv2d, per_image_pointwise

from helpers.common import TINY_MST, TINY_RESTORMER
from helpers.references import mdta, randomise, upstream_equations

ALL_PATHS = sorted(PATHS)


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
def test_attention_equals_reference_forward_and_backward(path, layer, bias, channels_last, batch, dim, heads, rank):
    torch.manual_seed(0)
    m = {'csa': lambda: CSA(dim, heads, bias), 'glmha': lambda: GLMHA(dim, heads, bias, rank=rank),
         'glmha_none': lambda: GLMHA(dim, heads, bias, rank=rank, guidance='none')}[layer]()
    with torch.no_grad():
        m.temperature.uniform_(0.5, 2)
    x = torch.randn(batch, dim, 5, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    _assert_same(m, x, m, lambda t: _reference_attention(m, t))


def test_attention_maps_are_the_forward_maps(path):
    torch.manual_seed(0)
    m = GLMHA(24, 4, rank=12)
    x = torch.randn(2, 24, 6, 5)
    maps = m.attention_maps(x)
    assert maps.shape == (2, 4, 6, 3)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 4, 6))
    q, k, v = m.split_qkv(x)
    out = maps @ v.reshape(2, 4, 3, 30)
    ref = m.project_out(out.reshape(2, 24, 6, 5))
    torch.testing.assert_close(m(x), ref)


@pytest.mark.parametrize('layout', ['nchw', 'channels_last', 'strided'])
@pytest.mark.parametrize('bias', [False, True])
def test_guided_conv_equals_conv_of_the_scaled_input_forward_and_backward(path, layout, bias):
    """GuidedConv2d(x, gate=g) == [conv(x) rows | conv(g x) rows], values and all gradients, on either path;
    without a gate it is the plain convolution; its output is channels-last on the CPU path, in the input's
    layout on the CUDA path."""
    torch.manual_seed(0)
    conv = GuidedConv2d(6, 10, guided=4, bias=bias)
    x = torch.randn(3, 6, 4, 5)
    if layout == 'channels_last':
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == 'strided':
        x = torch.randn(3, 9, 4, 5)[:, 2:8]
    gate = torch.rand(3, 6)

    def ref(t):
        bias_ = (None, None) if conv.bias is None else conv.bias.split([6, 4])
        return torch.cat([F.conv2d(t, conv.weight[:6], bias_[0]),
                          F.conv2d(t * gate[:, :, None, None], conv.weight[6:], bias_[1])], dim=1)

    want = torch.channels_last if path.channels_last or layout == 'channels_last' else torch.contiguous_format
    assert conv(x, gate=gate).is_contiguous(memory_format=want)
    _assert_same(conv, x, lambda t: conv(t, gate=gate), ref)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight, conv.bias))
    per_image = torch.randn(3, 10, 6)
    out = per_image_pointwise(x, per_image, conv.bias)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, torch.cat(
        [F.conv2d(x[i:i + 1], per_image[i, :, :, None, None], conv.bias) for i in range(3)]))


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
@pytest.mark.parametrize('channels_last', [False, True])
def test_gdfn_equals_module_convs(path, bias, channels_last):
    torch.manual_seed(0)
    ffn = GatedDconvFFN(8, 2.66, bias)
    x = torch.randn(2, 8, 6, 5)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def ref(t):
        x1, x2 = ffn.dwconv(ffn.project_in(t)).chunk(2, dim=1)
        return ffn.project_out(F.gelu(x1) * x2)

    _assert_same(ffn, x, ffn, ref)


def test_restormer_output_is_contiguous_nchw():
    net = Restormer(**TINY_RESTORMER).eval()
    with torch.no_grad():
        y = net(torch.rand(1, 3, 12, 20))
    assert y.is_contiguous() and y.shape == (1, 3, 12, 20)


def test_pixel_norms_match_the_norm_and_stay_finite_at_zero(path):
    from glmha_plugin.layers.attention import pixel_norms
    torch.manual_seed(0)
    t = torch.randn(3, 5, 70, dtype=torch.float64).float().requires_grad_()
    grad = torch.randn(3, 5)
    ref = t.detach().double().square().sum(-1).sqrt().float()
    n = pixel_norms(t)
    torch.testing.assert_close(n, ref)
    got, = torch.autograd.grad(n, t, grad)
    torch.testing.assert_close(got, t.detach() / ref.unsqueeze(-1) * grad.unsqueeze(-1))
    # a channels-last view, as the layers pass it (pixels strided, channels contiguous)
    y = torch.randn(2, 12, 9, 11).contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(pixel_norms(y.flatten(2)), y.flatten(2).double().norm(dim=-1).float())
    zero = torch.zeros(2, 4, 9, requires_grad=True)
    n = pixel_norms(zero)
    assert torch.all(n == 1e-12)
    n.sum().backward()
    assert torch.isfinite(zero.grad).all()
    # and through a whole layer: an all-zero input gives finite gradients everywhere
    m = GLMHA(16, 2)
    x = torch.zeros(2, 16, 4, 4, requires_grad=True)
    m(x).sum().backward()
    assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in m.parameters())


def _spectral_reference(m, x, mask=None):
    """MS-MSA as the spectral_attention docstring writes it: query = to_k(x), key/value = to_q/to_v(g * x),
    F.normalize, softmax over the keys, (A (v * M)) through proj, plus the positional branch of v."""
    b, h, w, c = x.shape
    heads, r = m.num_heads, m.rank
    tokens = x.reshape(b, h * w, c)
    scaled = tokens if m.calib is None else tokens * m.calib(x.permute(0, 3, 1, 2)).unsqueeze(1)
    qry, key, val = m.to_k(tokens), m.to_q(scaled), m.to_v(scaled)
    attended = val if mask is None else val * m.mm(mask, w).flatten(2).transpose(1, 2)
    qry, key, att = (t.reshape(b, h * w, heads, -1).permute(0, 2, 3, 1) for t in (qry, key, attended))
    attn = ((F.normalize(qry, dim=-1) @ F.normalize(key, dim=-1).transpose(-2, -1)) * m.rescale).softmax(-1)
    out = m.proj((attn @ att).permute(0, 3, 1, 2).reshape(b, h * w, c)).view(b, h, w, c)
    return out + m.positional(val.reshape(b, h, w, r).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


@pytest.mark.parametrize('attention_type,kwargs,mask_step', [
    ('csa', {}, None), ('csa', {}, 2), ('glmha', dict(rank=16), 2), ('glmha', dict(rank=8, guidance='none'), None)])
def test_spectral_msa_equals_reference_forward_and_backward(path, attention_type, kwargs, mask_step):
    m = randomise(SpectralMSA(32, 2, attention_type, mask_step=mask_step, level=1, **kwargs))
    x = torch.randn(2, 6, 5, 32)
    mask = torch.rand(2, 32, 6, 5 + 40) if mask_step else None
    _assert_same(m, x, lambda t: m(t, mask), lambda t: _spectral_reference(m, t, mask))
    if attention_type == 'csa':  # and upstream's own equations (test_spectral_layers)
        emb = None if mask is None else m.mm(mask, 5).flatten(2).transpose(1, 2)
        _assert_same(m, x, lambda t: m(t, mask), lambda t: upstream_equations(m, t, emb))


@pytest.mark.parametrize('name', ['GLMHARestormer', 'GLMHAMST', 'GLMHAMSTPlusPlus'])
def test_whole_networks_agree_across_paths(name):
    """A tiny network, batch 2, odd size (padding): CUDA path == CPU path, output and every gradient."""
    torch.manual_seed(0)
    net, x = {'GLMHARestormer': (lambda: GLMHARestormer(**TINY_RESTORMER), (2, 3, 11, 13)),
              'GLMHAMST': (lambda: GLMHAMST(**TINY_MST), (2, 28, 10, 6)),
              'GLMHAMSTPlusPlus': (lambda: GLMHAMSTPlusPlus(stage=1), (2, 3, 11, 13))}[name]
    net, x = net(), torch.rand(*x)
    results = {}
    for name in ALL_PATHS:
        with force_path(name):
            results[name] = _grads(net, x, net)
    (out_c, gx_c, gp_c), (out_g, gx_g, gp_g) = results['cpu'], results['cuda']
    torch.testing.assert_close(out_g, out_c, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gx_g, gx_c, rtol=1e-4, atol=1e-5)
    for key in gp_c:
        torch.testing.assert_close(gp_g[key], gp_c[key], rtol=1e-4, atol=1e-4, msg=key)


def test_path_is_chosen_by_device_and_export_and_can_be_forced():
    assert layer_path(torch.zeros(1)) is CPU_PATH
    assert layer_path(torch.zeros(1, device='meta')) is CUDA_PATH      # any non-CPU device
    with force_path('cuda'):
        assert layer_path(torch.zeros(1)) is CUDA_PATH
        with force_path('cpu'):
            assert layer_path(torch.zeros(1, device='meta')) is CPU_PATH
        with force_path(None):
            assert layer_path(torch.zeros(1)) is CPU_PATH
        assert layer_path(torch.zeros(1)) is CUDA_PATH
    assert paths._forced is None
    with pytest.raises(ValueError, match="unknown layer path 'gpu'"):
        with force_path('gpu'):
            pass

    class Probe(torch.nn.Module):
        seen = []

        def forward(self, x):
            self.seen.append(layer_path(x).name)
            return x + 1

    torch.export.export(Probe(), (torch.zeros(2),))
    assert Probe.seen == ['cuda']                                      # exported graphs: no Python loops


def test_cuda_path_runs_on_a_non_cpu_device():
    """Unforced, on the meta device (no GPU here) every layer takes the CUDA path and keeps its shapes."""
    for m, shape in ((GLMHA(16, 2), (2, 16, 5, 7)), (CSA(16, 2), (2, 16, 5, 7)),
                     (GatedDconvFFN(16, 2, False), (2, 16, 5, 7)),
                     (SpectralMSA(16, 2, 'glmha', rank=8), (2, 5, 7, 16))):
        m = m.to('meta')
        x = torch.empty(*shape, device='meta').contiguous(
            memory_format=torch.channels_last if len(shape) == 4 and shape[1] == 16 else torch.contiguous_format)
        assert m(x).shape == shape

"""MS-MSA (MST / MST++) with CSA or GLMHA, and MST's mask guidance: equations, counts, wiring."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.analysis import FlopAnalyzer

from glmha_plugin.layers import (
    MaskGuidance,
    SpectralMSA,
    spectral_csa_macs,
    spectral_csa_params,
    spectral_glmha_macs,
    spectral_glmha_params,
)
from glmha_plugin.layers.mask_guidance import level_shifts

from helpers.references import randomise, upstream_equations


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def dispersed(mask2d: torch.Tensor, bands: int, step: int = 2) -> torch.Tensor:
    """1 x bands x H x (W + (bands-1) step): band i of the mask at columns step*i .. (written out here)."""
    h, w = mask2d.shape
    out = torch.zeros(1, bands, h, w + (bands - 1) * step)
    for i in range(bands):
        out[0, i, :, step * i:step * i + w] = mask2d
    return out


def test_csa_keys_are_upstreams():
    m = SpectralMSA(28, 1, mask_step=2)
    assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == [
        ('rescale', (1, 1, 1)), ('to_q.weight', (28, 28)), ('to_k.weight', (28, 28)), ('to_v.weight', (28, 28)),
        ('proj.weight', (28, 28)), ('proj.bias', (28, )), ('pos_emb.0.weight', (28, 1, 3, 3)),
        ('pos_emb.2.weight', (28, 1, 3, 3)), ('mm.conv1.weight', (28, 28, 1, 1)), ('mm.conv1.bias', (28, )),
        ('mm.conv2.weight', (28, 28, 1, 1)), ('mm.conv2.bias', (28, )), ('mm.depth_conv.weight', (28, 1, 5, 5)),
        ('mm.depth_conv.bias', (28, ))]


@pytest.mark.parametrize('dim,heads', [(31, 1), (56, 2), (124, 4)])
def test_csa_is_upstream_ms_msa(dim, heads):
    m = randomise(SpectralMSA(dim, heads)).eval()
    x = torch.randn(2, 5, 7, dim)
    torch.testing.assert_close(m(x), upstream_equations(m, x))


def test_csa_mask_guided_is_upstream():
    """MST: values times the shifted-back mask embedding (mm), pos-emb on the unmasked values."""
    m = randomise(SpectralMSA(28, 1, mask_step=2)).eval()
    x = torch.randn(2, 6, 9, 28)
    phi = torch.rand(2, 28, 6, 9 + 54)
    emb = m.mm(phi, 9).flatten(2).transpose(1, 2)
    torch.testing.assert_close(m(x, phi), upstream_equations(m, x, emb))


@pytest.mark.parametrize('mask_step', [None, 2])
def test_full_rank_unguided_glmha_is_upstream_ms_msa(mask_step):
    """GLMHA at r = C without guidance, loaded with a CSA state_dict, computes upstream's MS-MSA (the written-out
    reference, not the shared layer code) with those weights."""
    csa = randomise(SpectralMSA(56, 2, mask_step=mask_step, level=1))
    glmha = SpectralMSA(56, 2, 'glmha', rank=56, guidance='none', mask_step=mask_step, level=1)
    glmha.load_state_dict(csa.state_dict(), strict=True)
    x = torch.randn(2, 4, 6, 56)
    phi = torch.rand(2, 56, 4, 6 + 27) if mask_step else None
    emb = csa.mm(phi, 6).flatten(2).transpose(1, 2) if mask_step else None
    with torch.no_grad():
        torch.testing.assert_close(glmha(x, phi), upstream_equations(csa, x, emb))


def test_folded_guidance_equals_scaling_the_input():
    """key/value = Linear(g * x) as docs/method.md writes it (the module folds g into the weights);
        query = Linear(x)."""
    m = randomise(SpectralMSA(32, 2, 'glmha', rank=16)).eval()
    x = torch.randn(3, 4, 5, 32)
    g = m.calib(x.permute(0, 3, 1, 2))
    assert g.shape == (3, 32) and ((g > 0) & (g < 1)).all()
    scaled = (x * g[:, None, None, :]).reshape(3, 20, 32)
    query, key, value = m.project(x)
    assert key.shape == value.shape == (3, 20, 16)
    torch.testing.assert_close(query, m.to_k(x.reshape(3, 20, 32)))
    torch.testing.assert_close(key, m.to_q(scaled))
    torch.testing.assert_close(value, m.to_v(scaled))


def test_glmha_batch_does_not_mix_instances():
    m = randomise(SpectralMSA(32, 2, 'glmha', mask_step=2)).eval()
    a, b = torch.randn(1, 4, 4, 32), torch.randn(1, 4, 4, 32) * 2 + 1
    pa, pb = torch.rand(1, 32, 4, 4 + 62), torch.rand(1, 32, 4, 4 + 62)
    torch.testing.assert_close(m(torch.cat([a, b]), torch.cat([pa, pb])), torch.cat([m(a, pa), m(b, pb)]))
    # a 1 x ... mask is shared by the batch
    torch.testing.assert_close(m(torch.cat([a, b]), pa), torch.cat([m(a, pa), m(b, pa)]))


def test_glmha_positional_branch_is_a_channel_expanding_grouped_conv():
    """pos-emb input channel j = value channel floor(j r / C): with r | C, a grouped conv r -> C."""
    m = randomise(SpectralMSA(28, 1, 'glmha', rank=14, guidance='none')).eval()
    v = torch.randn(2, 14, 5, 6)
    first = F.conv2d(v, m.pos_emb[0].weight, padding=1, groups=14)        # 14 groups, 2 outputs each
    ref = F.conv2d(F.gelu(first), m.pos_emb[2].weight, padding=1, groups=28)
    torch.testing.assert_close(m.pos_emb(v.index_select(1, torch.arange(28) // 2)), ref)   # C-channel input
    torch.testing.assert_close(m.pos_emb(v), ref)                                          # r-channel values
    assert [k for k in m.state_dict() if k.startswith('pos_emb.')] == ['pos_emb.0.weight', 'pos_emb.2.weight']


@pytest.mark.parametrize('dim,rank', [(28, 14), (28, 7), (31, 15), (32, 24), (32, 32)])
def test_positional_branch_equals_the_expanded_values_through_pos_emb(dim, rank):
    """SpectralMSA.positional (grouped conv when r | C, else index_select) == pos_emb(expand_C(v)), grads too."""
    m = randomise(SpectralMSA(dim, 1, 'glmha', rank=rank, guidance='none'))
    v = torch.randn(2, rank, 5, 6, dtype=torch.float64, requires_grad=True)
    m = m.double()
    expanded = v if rank == dim else v.index_select(1, torch.arange(dim) * rank // dim)
    ref = m.pos_emb(expanded)
    out = m.positional(v)
    torch.testing.assert_close(out, ref)
    grad = torch.randn_like(ref)
    got = torch.autograd.grad(out, [v, m.pos_emb[0].weight, m.pos_emb[2].weight], grad)
    want = torch.autograd.grad(ref, [v, m.pos_emb[0].weight, m.pos_emb[2].weight], grad)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w)


@pytest.mark.parametrize('dim,heads,ratio,gamma,mask', [(28, 1, 0.5, 8, True), (56, 2, 0.25, 8, True),
                                                        (31, 1, 0.5, 8, False), (124, 4, 0.75, 4, False),
                                                        (112, 4, 0.5, 16, True)])
@pytest.mark.parametrize('guidance', ['calibration', 'none'])
def test_parameter_formulas(dim, heads, ratio, gamma, mask, guidance):
    step = 2 if mask else None
    csa = SpectralMSA(dim, heads, mask_step=step)
    assert n_params(csa) == spectral_csa_params(dim, heads, mask)
    m = SpectralMSA(dim, heads, 'glmha', rank_ratio=ratio, guidance=guidance, gamma=gamma, mask_step=step)
    assert n_params(m) == spectral_glmha_params(dim, heads, m.rank, guidance, gamma, mask)
    assert n_params(m) < n_params(csa)


def test_parameter_formulas_written_out():
    """The docstrings' formulas by hand for C = 28, h = 1, r = 14, gamma = 8 (hidden 3)."""
    c, h, r = 28, 1, 14
    assert spectral_csa_params(c, h) == 4 * c * c + 19 * c + h
    assert spectral_csa_params(c, h, True) - spectral_csa_params(c, h) == 2 * c * c + 28 * c
    assert spectral_glmha_params(c, h, r, 'none') == 2 * c * c + 2 * r * c + 19 * c + h
    assert spectral_glmha_params(c, h, r) - spectral_glmha_params(c, h, r, 'none') == 2 * c * 3
    assert spectral_glmha_params(c, h, r, 'none', mask_guided=True) - spectral_glmha_params(c, h, r, 'none') == (
        c * r + r * r + 28 * r)


@pytest.mark.parametrize('attention,kwargs', [('csa', {}), ('glmha', dict(rank=28)),
                                              ('glmha', dict(rank=28, guidance='none'))])
@pytest.mark.parametrize('mask', [False, True])
def test_mac_formulas_agree_with_mmengine(attention, kwargs, mask):
    """mmengine's FlopAnalyzer on the real module gives the formulas' total, except what it does not
    count: the calibration's global pooling (C N) and the fold of g into the weights (2 r C), both
    element-wise (mean, mul)."""
    c, heads, h, w, spread = 56, 2, 12, 10, 27     # level 1: 56 channels, mask 27 columns wider
    m = SpectralMSA(c, heads, attention, mask_step=2 if mask else None, level=1, **kwargs).eval()
    x = torch.rand(1, h, w, c)
    inputs = (x, torch.rand(1, c, h, w + spread)) if mask else (x, )
    analyzer = FlopAnalyzer(m, inputs)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    n_mask = h * (w + spread) if mask else 0
    if attention == 'csa':
        terms = spectral_csa_macs(c, heads, h * w, n_mask)
    else:
        terms = spectral_glmha_macs(c, heads, 28, h * w, kwargs.get('guidance', 'calibration'), 8, n_mask)
    uncounted = 2 * c * h * w if 'calibration' in terms else 0   # pooling and scaling the tokens: element-wise
    assert analyzer.total() == sum(terms.values()) - uncounted
    assert m.analytic_macs(h * w, n_mask) == terms
    assert ('mask_guidance' in terms) == mask


def test_mac_formulas_written_out():
    c, heads, r, n = 56, 2, 28, 100
    d = c // heads
    assert sum(spectral_csa_macs(c, heads, n).values()) == 4 * c * c * n + 2 * d * c * n + 18 * c * n
    assert sum(spectral_glmha_macs(c, heads, r, n, 'none').values()) == (2 * c * c * n + 2 * r * c * n + 2 * d * r * n
                                                                         + 18 * c * n)


@pytest.mark.parametrize('level,channels', [(0, 28), (1, 56), (2, 112), (3, 224)])
def test_full_rank_shifts_are_upstreams(level, channels):
    """n = C: upstream's int(step / ds^2 * i) with ds = 2^level (its 256 // rows for 256-row inputs)."""
    ds = 2**level
    upstream = [int(float(2) / float(ds * ds) * i) for i in range(channels)]
    assert level_shifts(channels, channels, 2, level) == upstream


def test_low_rank_shifts_span_the_same_dispersion():
    full, low = level_shifts(56, 56, 2, 1), level_shifts(56, 28, 2, 1)
    assert low == full[::2] and low[0] == 0 and low[-1] <= full[-1]


@pytest.mark.parametrize('hw', [(256, 256), (20, 30), (7, 64)])
def test_mask_guidance_shifts_the_mask_back_onto_the_scene(hw):
    """With conv1 = identity and a constant gate, the shifted-back embedding is the mask itself in every
    band, for any H x W (upstream's 256-based shift only does this for 256 x 256)."""
    torch.manual_seed(0)
    mask = (torch.rand(*hw) > 0.5).float()
    mm = MaskGuidance(28, 28, step=2, level=0)
    with torch.no_grad():
        mm.conv1.weight.copy_(torch.eye(28).view(28, 28, 1, 1))
        for conv in (mm.conv1, mm.conv2, mm.depth_conv):
            conv.bias.zero_()
        mm.conv2.weight.zero_()                                   # gate = sigmoid(0) = 1/2
    out = mm(dispersed(mask, 28), hw[1])
    torch.testing.assert_close(out, 1.5 * mask.expand(1, 28, *hw))


def test_narrow_mask_is_explained():
    mm = MaskGuidance(28, 28, step=2, level=0)
    with pytest.raises(ValueError, match='W \\+ \\(bands - 1\\) \\* step'):
        mm(torch.rand(1, 28, 8, 8 + 20), 8)


def test_options_are_checked():
    with pytest.raises(ValueError, match='apply only to attention: glmha'):
        SpectralMSA(28, 1, rank=14)
    with pytest.raises(ValueError, match="'csa' or 'glmha'"):
        SpectralMSA(28, 1, 'linformer')
    with pytest.raises(ValueError, match='guidance'):
        SpectralMSA(28, 1, 'glmha', guidance='yes')
    with pytest.raises(ValueError, match='not divisible by the 2 heads'):
        SpectralMSA(56, 2, 'glmha', rank=27)
    with pytest.raises(ValueError, match='built for 28 channels'):
        SpectralMSA(28, 1)(torch.rand(1, 4, 4, 31))
    with pytest.raises(ValueError, match='needs the dispersed mask'):
        SpectralMSA(28, 1, mask_step=2)(torch.rand(1, 4, 4, 28))
    with pytest.raises(ValueError, match='mask batch 2'):
        SpectralMSA(28, 1, mask_step=2)(torch.rand(3, 4, 4, 28), torch.rand(2, 28, 4, 58))

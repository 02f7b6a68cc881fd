"""MST / GLMHAMST and MST_Plus_Plus / GLMHAMSTPlusPlus: official keys, upstream outputs, sizes, options."""
import pytest
import torch
import torch.nn.functional as F

from glmha_plugin.archs import GLMHAMST, MST, GLMHAMSTPlusPlus, MST_Plus_Plus
from glmha_plugin.archs.mst_arch import extend_shifted_back
from glmha_plugin.data.cassi_simulation import simulate
from glmha_plugin.layers import SpectralMSA, spectral_csa_params, spectral_glmha_params

from helpers.common import TINY_MST, read_fixture
from helpers.recorded_outputs import assert_matches, formula_weights, image

MST_CONFIGS = {'mst_s': [2, 2, 2], 'mst_m': [2, 4, 4], 'mst_l': [4, 7, 5]}


@pytest.fixture(scope='module')
def upstream_outputs():
    return read_fixture('mst_upstream_outputs.json')


def keys_of(net):
    return [[k, list(v.shape)] for k, v in net.state_dict().items()]


@pytest.mark.parametrize('method', list(MST_CONFIGS))
def test_mst_state_dict_equals_official(mst_official, method):
    net = MST(dim=28, stage=2, num_blocks=MST_CONFIGS[method])
    assert keys_of(net) == mst_official[method]['keys']
    assert sum(p.numel() for p in net.parameters()) == mst_official[method]['num_parameters']


def test_mst_plus_plus_state_dict_equals_official(mst_official):
    net = MST_Plus_Plus()
    assert keys_of(net) == mst_official['mst_plus_plus']['keys']
    assert sum(p.numel() for p in net.parameters()) == mst_official['mst_plus_plus']['num_parameters'] == 1619625


# --- regression against upstream's own forward pass (see the fixture's 'source' entry) -----------------


def phi(b, bands, h, w, step=2):
    hh, ww = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing='ij')
    mask = (torch.sin(1.7 * hh + 2.3 * ww + 0.013 * hh * ww) > 0).float()
    out = torch.zeros(b, bands, h, w + (bands - 1) * step)
    for i in range(bands):
        out[:, i, :, step * i:step * i + w] = mask
    return out


def test_mst_reproduces_upstream_forward(upstream_outputs):
    """256 x 256 (the only size upstream supports): our MST computes upstream's function."""
    net = formula_weights(MST(**TINY_MST))
    x = image(1, 28, 256, 256, 0.0)
    with torch.no_grad():
        assert_matches(net(x, phi(1, 28, 256, 256)) - x, upstream_outputs['mst']['output_minus_input'])


def test_mst_plus_plus_reproduces_upstream_forward(upstream_outputs):
    net = formula_weights(MST_Plus_Plus())
    with torch.no_grad():
        assert_matches(net(image(2, 3, 20, 28, 0.5)), upstream_outputs['mst_plus_plus']['output'])


# --- sizes ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize('cls', [MST, GLMHAMST])
@pytest.mark.parametrize('hw', [(1, 1), (20, 30), (36, 28), (17, 45)])
def test_mst_any_size(cls, hw):
    torch.manual_seed(0)
    net = cls(**TINY_MST).eval()
    gt, mask = torch.rand(2, 28, *hw), (torch.rand(1, 1, *hw) > 0.5).float()
    x, phi_ = simulate(gt, mask)
    with torch.no_grad():
        y = net(x, phi_)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_mst_padding_equals_zero_extended_scene():
    """Sides that are not multiples of 2^stage: the inputs are extended to those of the zero-extended scene
    and mask, so the output is that of the simulated padded scene, cropped back."""
    torch.manual_seed(0)
    net = MST(**TINY_MST).eval()
    gt, mask = torch.rand(1, 28, 13, 21), (torch.rand(1, 1, 13, 21) > 0.5).float()
    padded_gt, padded_mask = F.pad(gt, (0, 3, 0, 3)), F.pad(mask, (0, 3, 0, 3))
    with torch.no_grad():
        y = net(*simulate(gt, mask))
        y_pad = net(*simulate(padded_gt, padded_mask))
    torch.testing.assert_close(y, y_pad[..., :13, :21])


@pytest.mark.parametrize('w,extra,step', [(1, 3, 2), (2, 3, 2), (9, 3, 2), (5, 4, 1), (7, 5, 3)])
def test_extend_shifted_back_is_the_zero_extended_scene(w, extra, step):
    torch.manual_seed(0)
    gt, mask = torch.rand(2, 6, 3, w), (torch.rand(1, 1, 3, w) > 0.3).float()
    h_in, _ = simulate(gt, mask, step)
    h_ref, _ = simulate(F.pad(gt, (0, extra)), F.pad(mask, (0, extra)), step)
    torch.testing.assert_close(extend_shifted_back(h_in, extra, step), h_ref)


def test_mst_batch_of_one_mask_is_broadcast():
    torch.manual_seed(0)
    net = GLMHAMST(**TINY_MST).eval()
    gt, mask = torch.rand(2, 28, 16, 16), (torch.rand(1, 1, 16, 16) > 0.5).float()
    x, phi_b = simulate(gt, mask)
    with torch.no_grad():
        torch.testing.assert_close(net(x, phi_b[:1]), net(x, phi_b))


def test_mst_without_mask_uses_zeros():
    net = MST(**TINY_MST).eval()
    x = torch.rand(1, 28, 8, 12)
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(x, torch.zeros(1, 28, 8, 12 + 54)))


def test_mst_dispersion_step_option():
    net = MST(dispersion_step=1, **TINY_MST).eval()
    gt, mask = torch.rand(1, 28, 8, 8), torch.ones(1, 1, 8, 8)
    x, phi_ = simulate(gt, mask, step=1)
    assert phi_.shape[-1] == 8 + 27
    assert net(x, phi_).shape == x.shape
    with pytest.raises(ValueError, match='mask \\(Phi\\) must be B x 28 x 8 x 62'):
        MST(**TINY_MST)(x, phi_)


def test_mst_input_errors():
    net = MST(**TINY_MST)
    with pytest.raises(ValueError, match='expects B x 28 x H x W'):
        net(torch.rand(1, 31, 8, 8))
    with pytest.raises(ValueError, match='mask \\(Phi\\)'):
        net(torch.rand(1, 28, 8, 8), torch.rand(1, 28, 9, 62))


@pytest.mark.parametrize('cls', [MST_Plus_Plus, GLMHAMSTPlusPlus])
@pytest.mark.parametrize('hw', [(1, 1), (5, 9), (16, 16), (21, 34)])
def test_mst_plus_plus_any_size(cls, hw):
    net = cls(stage=1).eval()
    with torch.no_grad():
        y = net(torch.rand(1, 3, *hw))
    assert y.shape == (1, 31, *hw) and torch.isfinite(y).all()


def test_mst_plus_plus_errors():
    with pytest.raises(ValueError, match='must equal n_feat'):
        MST_Plus_Plus(out_channels=28, n_feat=31)
    with pytest.raises(ValueError, match='in_channels=3'):
        MST_Plus_Plus(stage=1)(torch.rand(1, 4, 8, 8))


# --- GLMHA variants -----------------------------------------------------------------------------------------


def attention_layers(net):
    return [m for m in net.modules() if isinstance(m, SpectralMSA)]


def test_glmha_mst_l_parameter_saving_matches_formulas():
    """MST-L minus GLMHA-MST-L = sum over its 27 MS-MSA layers of the per-layer formula difference."""
    csa, glmha = MST(dim=28, stage=2, num_blocks=[4, 7, 5]), GLMHAMST(dim=28, stage=2, num_blocks=[4, 7, 5])
    layers = [(28, 1)] * 4 + [(56, 2)] * 7 + [(112, 4)] * 5 + [(56, 2)] * 7 + [(28, 1)] * 4
    assert [(m.dim, m.num_heads) for m in attention_layers(glmha)] == layers
    saving = sum(spectral_csa_params(c, h, True) - spectral_glmha_params(c, h, c // 2, 'calibration', 8, True)
                 for c, h in layers)
    n = sum(p.numel() for p in csa.parameters())
    assert n - sum(p.numel() for p in glmha.parameters()) == saving > 0


@pytest.mark.parametrize('net', [lambda: GLMHAMST(dim=28, stage=2, num_blocks=[1, 1, 1], rank_ratio=0.25),
                                 lambda: GLMHAMSTPlusPlus(stage=1, guidance='none', gamma=4), lambda: MST(**TINY_MST)])
def test_every_layer_reports_its_analytic_parameter_count(net):
    layers = attention_layers(net())
    assert layers and all(m.analytic_params() == sum(p.numel() for p in m.parameters()) for m in layers)


def test_glmha_mst_plus_plus_keeps_every_non_attention_key(mst_official):
    ours = dict(keys_of(GLMHAMSTPlusPlus()))
    for k, shape in mst_official['mst_plus_plus']['keys']:
        if '.blocks.' not in k or '.blocks.0.1.' in k or '.pos_emb.' in k or '.proj.' in k:
            assert ours[k] == shape, k
    assert any(k.endswith('calib.fc1.weight') for k in ours)


def test_glmha_default_ranks_per_level():
    net = GLMHAMSTPlusPlus()
    assert sorted({(m.dim, m.rank) for m in attention_layers(net)}) == [(31, 16), (62, 32), (124, 64)]
    assert {m.attention for m in attention_layers(net)} == {'glmha'}
    assert {m.attention for m in attention_layers(MST_Plus_Plus())} == {'csa'}


def test_per_level_rank_options():
    net = GLMHAMST(rank=[7, 14, 28], **TINY_MST)
    assert sorted({(m.dim, m.rank) for m in attention_layers(net)}) == [(28, 7), (56, 14), (112, 28)]
    net = GLMHAMSTPlusPlus(stage=1, rank_ratio=0.25, guidance='none')
    assert sorted({(m.dim, m.rank, m.guidance) for m in attention_layers(net)}) == [
        (31, 8, 'none'), (62, 16, 'none'), (124, 32, 'none')]
    with pytest.raises(ValueError, match='one per level \\(3 levels'):
        GLMHAMST(rank=[7, 14], **TINY_MST)
    with pytest.raises(ValueError, match=r'GLMHAMST: encoder_layers\.1\.0\.blocks\.0\.0 \(56 channels, 2 heads\).*not '
                                         r'divisible'):
        GLMHAMST(rank=7, **TINY_MST)


def test_a_per_level_list_is_the_prefix_form():
    """The per-level list of the spectral hosts becomes {module-path prefix: value}: level l's encoder and
    decoder blocks of every U-Net, the bottleneck last."""
    from glmha_plugin.archs.spectral_unet import per_level
    assert per_level([7, 14, 28], 'rank', {'': 2}) == {
        'encoder_layers.0.0': 7, 'decoder_layers.1.2': 7, 'encoder_layers.1.0': 14, 'decoder_layers.0.2': 14,
        'bottleneck': 28}
    assert per_level(0.5, 'rank_ratio', {'': 2}) == 0.5
    by_list = GLMHAMSTPlusPlus(stage=2, rank=[8, 16, 32])
    levels = {0: 8, 1: 16, 2: 32}
    by_prefix = GLMHAMSTPlusPlus(stage=2, rank={f'body.{s}.{p}': levels[level] for s in range(2) for level, p in (
        (0, 'encoder_layers.0'), (0, 'decoder_layers.1'), (1, 'encoder_layers.1'), (1, 'decoder_layers.0'),
        (2, 'bottleneck'))})
    ranks = {name: m.rank for name, m in by_list.named_modules() if isinstance(m, SpectralMSA)}
    assert len(ranks) == 10 and all(r == levels[by_list.get_submodule(name).level] for name, r in ranks.items())
    assert ranks == {name: m.rank for name, m in by_prefix.named_modules() if isinstance(m, SpectralMSA)}


def test_per_layer_rank_options_of_the_spectral_hosts():
    net = GLMHAMSTPlusPlus(stage=2, rank={'body.1.bottleneck': 4}, rank_ratio={'': 0.25, 'body.1': 1.0})
    ranks = {name: m.rank for name, m in net.named_modules() if isinstance(m, SpectralMSA)}
    assert ranks['body.1.bottleneck.blocks.0.0'] == 4 and ranks['body.1.encoder_layers.1.0.blocks.0.0'] == 62
    assert ranks['body.0.bottleneck.blocks.0.0'] == 32 and ranks['body.0.encoder_layers.0.0.blocks.0.0'] == 8
    mst = GLMHAMST(rank={'bottleneck.blocks.0': 8}, rank_ratio=[0.25, 0.5, 1.0], **TINY_MST)
    assert {(m.level, m.rank) for m in attention_layers(mst)} == {(0, 7), (1, 28), (2, 8)}
    with pytest.raises(ValueError, match=r"GLMHAMSTPlusPlus: rank: prefix\(es\) \['body\.3'\] match no attention "
                                         r"layer; .* did you mean 'body\.2'"):
        GLMHAMSTPlusPlus(rank={'body.3': 8})


def test_attention_option_is_checked():
    with pytest.raises(ValueError, match='apply only to attention: glmha'):
        MST(rank_ratio=0.5, **TINY_MST)
    with pytest.raises(ValueError, match='use type: MST_Plus_Plus'):
        GLMHAMSTPlusPlus(attention='csa')
    with pytest.raises(ValueError, match='use type: MST for'):
        GLMHAMST(attention='csa', **TINY_MST)
    assert MST(attention='glmha', **TINY_MST).attention == 'glmha'


def test_mst_num_blocks_checked():
    with pytest.raises(ValueError, match='num_blocks needs an entry per level'):
        MST(dim=28, stage=3, num_blocks=[1, 1])

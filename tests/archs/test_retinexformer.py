"""RetinexFormer / GLMHARetinexFormer: official keys, upstream outputs, sizes, illumination wiring, complexity."""
import json
import os.path as osp

import pytest
import torch
from basicsr.archs import build_network

from glmha_plugin.analysis.complexity import count
from glmha_plugin.analysis.hosts import get_host
from glmha_plugin.archs import GLMHARetinexFormer, RetinexFormer
from glmha_plugin.archs.retinexformer_arch import PUBLISHED
from glmha_plugin.glue.checkpoints import load_into
from glmha_plugin.layers import SpectralMSA

from helpers.common import REPO
from helpers.recorded_outputs import assert_matches, formula_weights, image
from helpers.references import randomise, upstream_equations

FIXTURES = osp.join(REPO, 'tests', 'fixtures')
CONFIGS = {'published': dict(PUBLISHED), 'two_stages': dict(in_channels=3, out_channels=3, n_feat=8, stage=2,
                                                            num_blocks=[1, 1, 2])}
TINY = dict(n_feat=8, stage=1, num_blocks=[1, 1, 1])


def recorded(name):
    """A fixture file recorded from the official class (see its 'source' entry)."""
    with open(osp.join(FIXTURES, f'retinexformer_{name}.json')) as f:
        return json.load(f)


OFFICIAL = recorded('official_keys')['models']
UPSTREAM = recorded('upstream_outputs')


def keys_of(net):
    return [[k, list(v.shape)] for k, v in net.state_dict().items()]


def attention_layers(net):
    return [m for m in net.modules() if isinstance(m, SpectralMSA)]


@pytest.mark.parametrize('config', list(CONFIGS))
def test_state_dict_equals_official(config):
    net = RetinexFormer(**CONFIGS[config])
    assert keys_of(net) == OFFICIAL[config]['keys']
    assert sum(p.numel() for p in net.parameters()) == OFFICIAL[config]['num_parameters']
    assert OFFICIAL['published']['num_parameters'] == 1605701


def test_official_layout_checkpoint_loads_strict(tmp_path):
    """A {'params': ...} file with upstream's keys and shapes (what Retinexformer's training writes)."""
    torch.manual_seed(0)
    state = {k: torch.randn(shape) for k, shape in OFFICIAL['published']['keys']}
    torch.save({'params': state}, tmp_path / 'LOL_v1.pth')
    net = load_into(build_network(dict(type='RetinexFormer', **PUBLISHED)), str(tmp_path / 'LOL_v1.pth'), strict=True)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in state.items())


@pytest.mark.parametrize('config', list(CONFIGS))
def test_reproduces_upstream_forward(config):
    """Same closed-form weights and input as the recorded run of the official class (see the fixture)."""
    net = formula_weights(RetinexFormer(**CONFIGS[config]))
    ref = UPSTREAM[config]
    b, c, h, w = ref['output']['shape']
    seed = 0.5 if config == 'published' else 0.25
    with torch.no_grad():
        assert_matches(net(image(b, c, h, w, seed)), ref['output'])


def test_registered_in_both_registries():
    from basicsr.utils.registry import ARCH_REGISTRY
    from mmengine.registry import MODELS

    from glmha_plugin.registry import SPECTRAL_MODELS
    for name in ('RetinexFormer', 'GLMHARetinexFormer'):
        assert SPECTRAL_MODELS.get(name) is ARCH_REGISTRY.get(name)
    net = MODELS.build(dict(type='glmha_plugin.GLMHARetinexFormer', **TINY))
    assert type(net) is GLMHARetinexFormer and all(m.attention == 'glmha' for m in attention_layers(net))


def test_upstream_defaults_fail_clearly():
    with pytest.raises(ValueError, match=r'n_feat \(31\) must be a multiple of 4 .* n_feat: 40, stage: 1'):
        RetinexFormer()
    with pytest.raises(ValueError, match='must equal out_channels'):
        RetinexFormer(in_channels=3, out_channels=4, n_feat=8)
    with pytest.raises(ValueError, match='num_blocks needs 3 entries'):
        RetinexFormer(n_feat=8, num_blocks=[1, 1])
    with pytest.raises(ValueError, match='use type: RetinexFormer'):
        GLMHARetinexFormer(attention='csa', **TINY)


@pytest.mark.parametrize('cls', [RetinexFormer, GLMHARetinexFormer])
@pytest.mark.parametrize('hw', [(1, 1), (5, 9), (16, 16), (21, 34)])
def test_any_size(cls, hw):
    net = cls(**TINY).eval()
    with torch.no_grad():
        y = net(torch.rand(1, 3, *hw))
    assert y.shape == (1, 3, *hw) and torch.isfinite(y).all()


def test_padding_is_reflect_to_a_multiple_of_four_and_crop():
    """As Retinexformer's test script: F.pad(x, (0, padw, 0, padh), 'reflect'), run, crop."""
    torch.manual_seed(0)
    net = RetinexFormer(**TINY).eval()
    x = torch.rand(1, 3, 13, 18)
    with torch.no_grad():
        padded = net(torch.nn.functional.pad(x, (0, 2, 0, 3), mode='reflect'))
        torch.testing.assert_close(net(x), padded[..., :13, :18])


def test_illumination_guided_csa_is_upstream_ig_msa():
    """IG-MSA: the attended values are multiplied by the illumination features, pos-emb sees them unmultiplied."""
    m = randomise(SpectralMSA(40, 1, illumination_guided=True)).eval()
    x, illu = torch.randn(2, 6, 8, 40), torch.rand(2, 40, 6, 8)
    torch.testing.assert_close(m(x, illu), upstream_equations(m, x, illu.flatten(2).transpose(1, 2)))


@pytest.mark.parametrize('r', [16, 20])   # r does not / does divide C (index_select / strided view)
def test_glmha_illumination_wiring(r):
    """Value channel k of r is multiplied by illumination channel floor(k C / r)."""
    c = 40
    m = randomise(SpectralMSA(c, 2, 'glmha', rank=r, guidance='none', illumination_guided=True)).eval()
    assert m.guide_index.tolist() == [k * c // r for k in range(r)]
    x, illu = torch.randn(1, 3, 5, c), torch.rand(1, c, 3, 5)
    factor = m.value_guide(illu, 1, 3, 5)
    torch.testing.assert_close(factor, illu[:, [k * c // r for k in range(r)]].flatten(2).transpose(1, 2))
    with pytest.raises(ValueError, match='needs the illumination features'):
        m(x)
    with pytest.raises(ValueError, match=r'must be B x 40 x 3 x 5'):
        m(x, torch.rand(1, 40, 4, 5))
    with pytest.raises(ValueError, match='not both'):
        SpectralMSA(c, 2, mask_step=2, illumination_guided=True)


def test_full_rank_unguided_glmha_equals_csa():
    csa = formula_weights(RetinexFormer(**CONFIGS['two_stages']))
    glmha = GLMHARetinexFormer(rank_ratio=1.0, guidance='none', **CONFIGS['two_stages']).eval()
    glmha.load_state_dict(csa.state_dict(), strict=True)
    x = torch.rand(2, 3, 12, 20)
    with torch.no_grad():
        torch.testing.assert_close(glmha(x), csa(x))


def test_glmha_keeps_every_non_attention_key():
    ours = dict(keys_of(GLMHARetinexFormer(**PUBLISHED)))
    for k, shape in OFFICIAL['published']['keys']:
        if '.blocks.' not in k or '.blocks.0.1.' in k or '.blocks.1.1.' in k or '.pos_emb.' in k or '.proj.' in k:
            assert ours[k] == shape, k
    net = GLMHARetinexFormer(**PUBLISHED)
    assert sorted({(m.dim, m.rank) for m in attention_layers(net)}) == [(40, 20), (80, 40), (160, 80)]
    assert all(m.illumination_guided and m.mm is None for m in attention_layers(net))


@pytest.mark.parametrize('options', [dict(attention='csa'), dict(attention='glmha', rank_ratio=0.5),
                                     dict(attention='glmha', rank=[4, 8, 16], guidance='none')])
def test_attention_modules_match_formulas(options):
    """mmengine's counter on every illumination-guided MS-MSA inside a small RetinexFormer equals
    SpectralMSA.analytic_macs at its level (the illumination product is element-wise: no MAC term), and the
    layer's parameters equal analytic_params."""
    host = get_host('retinexformer')
    h, w = 16, 24
    net = host.build(**host.tiny, **options).eval()
    c = count(net, host.make_inputs((3, h, w), 1, torch.device('cpu')))
    layers = {name: m for name, m in net.named_modules() if isinstance(m, SpectralMSA)}
    assert len(layers) == 5
    for name, m in layers.items():
        n = (h >> m.level) * (w >> m.level)
        not_macs = 2 * m.dim * n if m.guidance == 'calibration' else 0   # pooling, tokens scaled by g
        assert c.by_module[name] == sum(m.analytic_macs(n).values()) - not_macs, name
        assert sum(p.numel() for p in m.parameters()) == m.analytic_params()
    assert not c.unclassified


def test_published_size_matches_the_paper():
    """1,605,701 parameters; fvcore's convention (MACs + layer-norm ops) / 2^30 = 15.568 at 3 x 256 x 256, the
    paper's 15.57 (fvcore 0.1.5 on the official class prints the same, see hosts.UPSTREAM)."""
    host = get_host('retinexformer')
    c = count(host.build(attention='csa').eval(), torch.rand(1, 3, 256, 256))
    norms = sum(n for kind, (_, _, n) in c.by_op.items() if kind == 'aten::layer_norm')
    assert c.params == 1605701
    assert (c.macs + norms) / 2**30 == pytest.approx(15.5676, abs=1e-4)

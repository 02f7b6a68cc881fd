"""Restormer / GLMHARestormer: official key fixture, upstream outputs, strict loading, shapes, options."""
import pytest
import torch

from glmha_plugin.archs import RESTORMER_STAGES, GLMHARestormer, Restormer
from glmha_plugin.layers import glmha_params

from helpers.common import TINY_RESTORMER as TINY
from helpers.common import read_fixture
from helpers.recorded_outputs import RESTORMER_SCALES, assert_matches, formula_weights, image


@pytest.fixture(scope='module')
def official():
    return read_fixture('restormer_official_keys.json')


@pytest.fixture(scope='module')
def default_restormer():
    return Restormer()


def test_state_dict_equals_official(official, default_restormer):
    ours = [[k, list(v.shape)] for k, v in default_restormer.state_dict().items()]
    assert ours == official['keys']
    assert sum(p.numel() for p in default_restormer.parameters()) == official['num_parameters']


def test_official_checkpoint_loads_strict_through_basicsr(official, default_restormer, tmp_path):
    """A checkpoint shaped like the official one ({'params': ...}) loads strict via basicsr's own loader."""
    from basicsr.models.base_model import BaseModel
    torch.manual_seed(0)
    ckpt = {'params': {k: torch.randn(shape) for k, shape in official['keys']}}
    path = tmp_path / 'deraining.pth'
    torch.save(ckpt, path)
    model = BaseModel({'num_gpu': 0, 'is_train': False, 'dist': False})
    model.load_network(default_restormer, str(path), strict=True, param_key='params')
    for k, v in default_restormer.state_dict().items():
        assert torch.equal(v, ckpt['params'][k]), k


@pytest.mark.parametrize('case', ['restormer', 'restormer_dual_pixel'])
def test_reproduces_upstream_forward(case):
    """Our Restormer computes the official class's function (fixture: its outputs, 'source' entry), at sides
    that are not multiples of 8 (upstream ran the reflect-padded image, cropped back) and for dual-pixel
    defocus deblurring (6 input channels, skip connection, no global residual; BiasFree norms, biases)."""
    recorded = read_fixture('restormer_upstream_outputs.json')[case]
    net = formula_weights(Restormer(**recorded['constructor']), RESTORMER_SCALES)
    with torch.no_grad():
        assert_matches(net(image(*recorded['input'])), recorded['output'])


def test_glmha_keeps_every_non_attention_key(official):
    glmha = GLMHARestormer().state_dict()
    for k, shape in official['keys']:
        if '.attn.' not in k:
            assert list(glmha[k].shape) == shape, k
    extra = [k for k in glmha if '.attn.' not in k and k not in dict(official['keys'])]
    assert extra == []
    assert any('.attn.calib.' in k for k in glmha)


def test_glmha_restormer_parameter_saving_matches_formula(official):
    """Total difference = sum over blocks of (CSA - GLMHA) per-layer formulas."""
    glmha = GLMHARestormer()
    dim, heads, blocks, refine = 48, [1, 2, 4, 8], [4, 6, 6, 8], 4
    layers = ([(dim, heads[0])] * blocks[0] + [(2 * dim, heads[1])] * blocks[1] + [(4 * dim, heads[2])] * blocks[2]
              + [(8 * dim, heads[3])] * blocks[3] + [(4 * dim, heads[2])] * blocks[2]
              + [(2 * dim, heads[1])] * blocks[1] + [(2 * dim, heads[0])] * (blocks[0] + refine))
    expected = official['num_parameters'] - sum(
        4 * c * c + 27 * c + h - glmha_params(c, h, c // 2, 'calibration', 8) for c, h in layers)
    assert sum(p.numel() for p in glmha.parameters()) == expected


@pytest.mark.parametrize('cls', [Restormer, GLMHARestormer])
@pytest.mark.parametrize('hw', [(1, 1), (7, 13), (16, 16), (17, 30)])
def test_any_input_size(cls, hw):
    torch.manual_seed(0)
    net = cls(**TINY).eval()
    x = torch.rand(2, 3, *hw)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_padding_is_cropped_not_mixed():
    """The crop returns the image region: output equals the same net run on an explicitly padded input."""
    torch.manual_seed(0)
    net = Restormer(**TINY).eval()
    x = torch.rand(1, 3, 13, 21)
    padded = torch.nn.functional.pad(x, (0, 3, 0, 3), mode='reflect')
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(padded)[..., :13, :21])


def test_dual_pixel_task():
    net = Restormer(inp_channels=6, dual_pixel_task=True, **TINY)
    assert 'skip_conv.weight' in net.state_dict()
    assert net(torch.rand(1, 6, 8, 8)).shape == (1, 3, 8, 8)


def test_wrong_input_channels_are_explained():
    with pytest.raises(ValueError, match='inp_channels=3.*got \\(1, 1, 8, 8\\)'):
        Restormer(**TINY)(torch.rand(1, 1, 8, 8))


def attention_ranks(net):
    return {name: m.rank for name, m in net.named_modules() if name.endswith('.attn')}


def test_per_stage_rank():
    ranks = {'latent': 16, 'encoder_level1': 2}
    net = GLMHARestormer(rank=ranks, **TINY)
    assert net.latent[0].attn.rank == 16
    assert net.encoder_level1[0].attn.rank == 2
    assert net.decoder_level1[0].attn.rank == 8  # default ratio 0.5 of 16 channels
    ratio = GLMHARestormer(rank_ratio={'refinement': 0.25}, **TINY)
    assert ratio.refinement[0].attn.rank == 4


def test_per_layer_rank_longest_prefix_wins():
    """Stage names are module-path prefixes like any other: a block or one layer can have its own rank."""
    options = dict(TINY, num_blocks=[1, 1, 1, 2])
    net = GLMHARestormer(rank={'latent.1': 16, 'encoder_level1': 2}, rank_ratio={'': 0.25, 'latent': 1.0},
                         **options)
    assert attention_ranks(net) == {'encoder_level1.0.attn': 2, 'encoder_level2.0.attn': 4,
                                    'encoder_level3.0.attn': 8, 'latent.0.attn': 64, 'latent.1.attn': 16,
                                    'decoder_level3.0.attn': 8, 'decoder_level2.0.attn': 4,
                                    'decoder_level1.0.attn': 4, 'refinement.0.attn': 4}
    assert attention_ranks(GLMHARestormer(rank=8, rank_ratio={'latent.1.attn': 0.5}, **options))['latent.1.attn'] \
        == 32


def test_rank_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"GLMHARestormer: rank: prefix\(es\) \['level9'\] match no attention layer"):
        GLMHARestormer(rank={'level9': 4}, **TINY)
    with pytest.raises(ValueError, match=r"\['encoder_leve1'\] match no .*did you mean 'encoder_level1'"):
        GLMHARestormer(rank={'encoder_leve1': 4}, **TINY)
    with pytest.raises(ValueError, match=r'GLMHARestormer: encoder_level2\.0\.attn \(16 channels, 2 heads\).*not '
                                         r'divisible'):
        GLMHARestormer(rank=3, **TINY)
    with pytest.raises(ValueError, match=r"latent\.0\.attn \(64 channels, 8 heads\): rank 12 .*rank\['latent'\]"):
        GLMHARestormer(rank={'latent': 12}, **TINY)
    with pytest.raises(ValueError, match='out of range'):
        GLMHARestormer(rank=64, **TINY)


def test_attention_option_is_checked():
    with pytest.raises(ValueError, match='apply only to attention: glmha'):
        Restormer(rank_ratio=0.5, **TINY)
    with pytest.raises(ValueError, match='use type: Restormer'):
        GLMHARestormer(attention='csa', **TINY)
    assert Restormer(attention='glmha', **TINY).encoder_level1[0].attn.guidance == 'calibration'
    assert GLMHARestormer(guidance='none', **TINY).latent[0].attn.calib is None


def test_stage_names_are_module_names():
    net = Restormer(**TINY)
    for name in RESTORMER_STAGES:
        assert isinstance(getattr(net, name), torch.nn.Sequential)

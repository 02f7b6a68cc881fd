"""CSA and GLMHA layers: rank rules, shapes, parameter formulas, equivalences."""
import pytest
import torch

from glmha_plugin.layers import (
    CSA,
    GLMHA,
    Calibration,
    build_attention,
    csa_macs,
    csa_params,
    glmha_macs,
    glmha_params,
    resolve_rank,
)

from helpers.references import mdta


def n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize('dim,heads,ratio,expected', [(48, 1, 0.5, 24), (96, 2, 0.5, 48), (28, 1, 0.5, 14),
                                                      (31, 1, 0.5, 16), (384, 8, 0.25, 96), (28, 4, 0.1, 4),
                                                      (48, 8, 1.0, 48)])
def test_rank_ratio_rounds_to_multiple_of_heads(dim, heads, ratio, expected):
    r = resolve_rank(dim, heads, rank_ratio=ratio)
    assert r == expected and r % heads == 0


def test_default_rank_is_half():
    assert resolve_rank(96, 2) == 48


@pytest.mark.parametrize('kwargs,message', [
    (dict(rank=100), 'out of range'),
    (dict(rank=0), 'out of range'),
    (dict(rank=10), 'not divisible by the 4 heads'),
    (dict(rank=8, rank_ratio=0.5), 'not both'),
    (dict(rank_ratio=1.5), 'rank_ratio'),
    (dict(rank=8.0), 'integer'),
])
def test_bad_rank_is_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        resolve_rank(48, 4, **kwargs)


def test_channels_not_divisible_by_heads():
    with pytest.raises(ValueError, match='divisible by the number of heads'):
        GLMHA(30, 4)


@pytest.mark.parametrize('bias', [False, True])
@pytest.mark.parametrize('dim,heads', [(28, 1), (48, 1), (96, 2), (31, 1), (64, 8)])
def test_csa_parameter_formula(dim, heads, bias):
    assert n_params(CSA(dim, heads, bias)) == csa_params(dim, heads, bias)


@pytest.mark.parametrize('bias', [False, True])
@pytest.mark.parametrize('guidance', ['calibration', 'none'])
@pytest.mark.parametrize('dim,heads,ratio,gamma', [(48, 1, 0.5, 8), (96, 2, 0.25, 4), (28, 1, 0.75, 16),
                                                   (31, 1, 0.5, 8), (384, 8, 0.5, 8)])
def test_glmha_parameter_formula(dim, heads, ratio, gamma, guidance, bias):
    m = GLMHA(dim, heads, bias, rank_ratio=ratio, guidance=guidance, gamma=gamma)
    assert n_params(m) == glmha_params(dim, heads, m.rank, guidance, gamma, bias)


def test_parameter_formulas_match_design_table():
    """docs/method.md's cost table, written out by hand for C=96, h=2, r=48, gamma=8 (C/gamma = 12)."""
    c, h, r, gamma = 96, 2, 48, 8
    assert csa_params(c, h) == 4 * c**2 + 27 * c + h
    assert glmha_params(c, h, r, 'calibration', gamma) == 2 * c**2 + 9 * c + 2 * r * c + 18 * r + 2 * c**2 // gamma + h
    assert glmha_params(c, h, r, 'calibration', gamma) < csa_params(c, h)


@pytest.mark.parametrize('dim,rank,gamma,hidden', [(31, 16, 8, 3), (28, 14, 16, 1), (4, 2, 8, 1), (96, 48, 8, 12)])
def test_calibration_width_is_rounded_down(dim, rank, gamma, hidden):
    """The hidden width max(1, C // gamma) written out (formula and module share calibration_hidden, so the
    formula tests alone cannot see its rounding): parameters by hand for C x hidden x C weights."""
    assert Calibration(dim, gamma).fc1.out_features == hidden
    by_hand = 2 * dim**2 + 9 * dim + 2 * rank * dim + 18 * rank + 2 * dim * hidden + 1
    assert glmha_params(dim, 1, rank, 'calibration', gamma) == by_hand
    assert n_params(GLMHA(dim, 1, rank=rank, gamma=gamma)) == by_hand


def test_mac_formulas_match_design_table():
    c, h, r, n, gamma = 96, 2, 48, 64 * 64, 8
    d = c // h
    assert sum(csa_macs(c, h, n).values()) == 3 * c * c * n + 27 * c * n + 2 * d * c * n + c * c * n
    verbatim = glmha_macs(c, h, r, n, 'calibration', gamma, fold_guidance=False)
    assert sum(verbatim.values()) == (c * c * n + 2 * r * c * n + 9 * c * n + 18 * r * n + 2 * d * r * n + c * c * n
                                      + c * n + 2 * c * c // gamma + c * n)
    folded = glmha_macs(c, h, r, n, 'calibration', gamma)
    assert sum(verbatim.values()) - sum(folded.values()) == c * n - 2 * r * c
    assert 'calibration' not in glmha_macs(c, h, r, n, 'none')


@pytest.mark.parametrize('hw', [(1, 1), (1, 7), (3, 5), (9, 4), (16, 16)])
@pytest.mark.parametrize('layer', ['csa', 'glmha', 'glmha_none'])
def test_forward_shapes_any_size(hw, layer):
    dim, heads = 16, 2
    m = {'csa': lambda: CSA(dim, heads), 'glmha': lambda: GLMHA(dim, heads),
         'glmha_none': lambda: GLMHA(dim, heads, guidance='none')}[layer]()
    x = torch.randn(2, dim, *hw)
    y = m(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_wrong_channels_raise():
    with pytest.raises(ValueError, match='built for 16 channels'):
        GLMHA(16, 2)(torch.randn(1, 8, 4, 4))


@pytest.mark.parametrize('bias', [False, True])
def test_full_rank_unguided_glmha_is_mdta(bias):
    """GLMHA at r = C without guidance, loaded with a CSA state_dict, computes MDTA (the written-out reference,
    not the shared layer code) with those weights: the SVD warm start relies on it."""
    torch.manual_seed(0)
    csa = CSA(32, 4, bias)
    with torch.no_grad():
        csa.temperature.uniform_(0.5, 2)
    glmha = GLMHA(32, 4, bias, rank=32, guidance='none')
    glmha.load_state_dict(csa.state_dict(), strict=True)
    x = torch.randn(2, 32, 6, 10)
    with torch.no_grad():
        torch.testing.assert_close(glmha(x), mdta(x, dict(csa.named_parameters()), heads=4))


@pytest.mark.parametrize('bias', [False, True])
def test_folded_guidance_equals_scaling_the_input(bias):
    """(W diag(g)) X, as implemented, equals PW(g * X) of docs/method.md."""
    torch.manual_seed(0)
    m = GLMHA(32, 4, bias=bias, rank=16)
    x = torch.randn(3, 32, 5, 6)
    g = m.calib(x)
    q_ref = m.qkv(x)[:, :32]
    kv_ref = m.qkv(x * g[:, :, None, None])[:, 32:]
    torch.testing.assert_close(m.project(x), torch.cat([q_ref, kv_ref], 1))


def test_guidance_is_per_instance():
    torch.manual_seed(0)
    m = GLMHA(16, 2)
    a, b = torch.randn(1, 16, 8, 8), torch.randn(1, 16, 8, 8) * 3 + 1
    ga, gb = m.calib(a), m.calib(b)
    assert ga.shape == (1, 16) and ((ga > 0) & (ga < 1)).all()
    assert not torch.allclose(ga, gb)
    # batching does not mix instances
    torch.testing.assert_close(m(torch.cat([a, b])), torch.cat([m(a), m(b)]))


def test_calibration_gamma_validation():
    with pytest.raises(ValueError, match='gamma'):
        Calibration(16, 0)
    assert Calibration(16, 1).fc1.out_features == 16  # gamma = 1: no reduction, allowed
    default = Calibration(16)
    assert default.fc1.out_features == 2 and default.fc1.bias is None and default.fc2.bias is None  # gamma 8, no bias


def test_build_attention_rejects_glmha_options_for_csa():
    with pytest.raises(ValueError, match='apply only to attention: glmha'):
        build_attention('csa', 16, 2, rank=8)
    with pytest.raises(ValueError, match="'csa' or 'glmha'"):
        build_attention('linformer', 16, 2)
    with pytest.raises(ValueError, match='guidance'):
        build_attention('glmha', 16, 2, guidance='yes')

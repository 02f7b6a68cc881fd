"""The MAC counter (mmengine FlopAnalyzer + our op rules) against docs/method.md's per-layer formulas, and the
report tool."""
import csv

import pytest
import torch
from torch import nn

from glmha_plugin.analysis import complexity_report
from glmha_plugin.analysis.baselines import LinformerChannelAttention, linformer_macs
from glmha_plugin.analysis.complexity import FREE, MAC, OP_RULES, OTHER, count
from glmha_plugin.analysis.hosts import get_host
from glmha_plugin.archs import GLMHARestormer, Restormer
from glmha_plugin.layers import CSA, GLMHA, SpectralMSA, csa_macs, glmha_macs

from helpers.common import TINY_RESTORMER, TINY_RESTORMER_2


def _op(c, kind):
    return c.by_op.get(kind, (None, 0, 0))[2]


@pytest.mark.parametrize('dim,heads,hw', [(16, 1, (8, 8)), (48, 1, (12, 10)), (96, 2, (8, 8)), (64, 8, (5, 7)),
                                          (28, 4, (6, 6))])
def test_csa_counter_equals_formula(dim, heads, hw):
    n = hw[0] * hw[1]
    c = count(CSA(dim, heads).eval(), torch.randn(1, dim, *hw))
    f = csa_macs(dim, heads, n)
    assert c.macs == sum(f.values())
    assert _op(c, 'aten::matmul') == f['attention']          # q k^T and A v
    assert _op(c, 'aten::_convolution') == f['dwconv'] + f['qkv_proj'] + f['out_proj']  # the modules' convs
    assert 'aten::bmm' not in c.by_op
    assert not c.unclassified


@pytest.mark.parametrize('bias', [False, True])
@pytest.mark.parametrize('guidance', ['calibration', 'none'])
@pytest.mark.parametrize('dim,heads,rank,gamma', [(48, 1, 24, 8), (96, 2, 48, 8), (96, 2, 24, 4), (64, 8, 16, 8),
                                                  (31, 1, 16, 8), (28, 4, 28, 16)])
def test_glmha_counter_equals_formula(dim, heads, rank, gamma, guidance, bias):
    """Counter MACs == formula; the two calibration terms that are not MACs (pooling C*N, folding g into the
    2r x C K/V weight) appear as the 'mean' and part of the 'mul' ops."""
    h, w = 6, 9
    n = h * w
    m = GLMHA(dim, heads, bias=bias, rank=rank, guidance=guidance, gamma=gamma).eval()
    c = count(m, torch.randn(1, dim, h, w))
    f = glmha_macs(dim, heads, rank, n, guidance, gamma)  # folded guidance, as implemented
    not_macs = dim * n + 2 * rank * dim if guidance == 'calibration' else 0
    assert c.macs == sum(f.values()) - not_macs
    assert _op(c, 'aten::matmul') == f['attention']
    if guidance == 'calibration':
        assert _op(c, 'aten::mean') == dim * n                     # global average pooling
        assert _op(c, 'aten::linear') == 2 * dim * max(1, dim // gamma)
        assert _op(c, 'aten::mul') >= 2 * rank * dim               # g folded into the K/V weight
    else:
        assert 'aten::mean' not in c.by_op
    assert not c.unclassified


@pytest.mark.parametrize('dim,heads,rank', [(48, 1, 24), (96, 2, 48), (96, 2, 16), (28, 1, 7), (384, 8, 96)])
def test_linformer_counter_equals_formula(dim, heads, rank):
    n = 7 * 8
    layer = LinformerChannelAttention(dim, heads, rank=rank).eval()
    c = count(layer, torch.randn(2, dim, 7, 8))
    f = linformer_macs(dim, heads, rank, n)
    assert c.macs == 2 * sum(f.values())
    assert _op(c, 'aten::matmul') == 2 * f['attention']
    assert layer(torch.randn(2, dim, 7, 8)).shape == (2, dim, 7, 8)
    # the paper's argument: the projections (2rCN) cost at least what the attention saves (2d(C-r)N)
    # exactly when r (C + d) >= d C; with several heads that holds already for small r
    d = dim // heads
    assert (sum(f.values()) >= sum(csa_macs(dim, heads, n).values())) == (rank * (dim + d) >= d * dim)


def test_counts_scale_with_batch():
    m = GLMHA(32, 2, rank=16).eval()
    one, two = count(m, torch.randn(1, 32, 8, 8)), count(m, torch.randn(2, 32, 8, 8))
    assert two.macs == 2 * one.macs


def test_restormer_attention_modules_match_formulas():
    """Per transformer block of a (small) Restormer/GLMHARestormer, the attention MACs equal the formula."""
    size = 32
    for net in (Restormer(**TINY_RESTORMER_2), GLMHARestormer(rank_ratio=0.5, guidance='none', **TINY_RESTORMER_2)):
        c = count(net.eval(), torch.rand(1, 3, size, size))
        attn = {name: mod for name, mod in net.named_modules() if name.endswith('.attn')}
        assert len(attn) == 1 + 1 + 1 + 2 + 1 + 1 + 1 + 1
        for name, mod in attn.items():
            level = {'encoder_level1': 1, 'encoder_level2': 2, 'encoder_level3': 4, 'latent': 8, 'decoder_level3': 4,
                     'decoder_level2': 2, 'decoder_level1': 1, 'refinement': 1}[name.split('.')[0]]
            n = (size // level) ** 2
            if mod.guidance == 'none' and mod.rank == mod.dim:
                expected = sum(csa_macs(mod.dim, mod.num_heads, n).values())
            else:
                expected = sum(glmha_macs(mod.dim, mod.num_heads, mod.rank, n, mod.guidance).values())
            assert c.by_module[name] == expected, name
        assert c.params == sum(p.numel() for p in net.parameters())
        assert not c.unclassified


def test_every_op_of_the_hosts_has_a_rule():
    for net in (Restormer(**TINY_RESTORMER), GLMHARestormer(**TINY_RESTORMER)):
        c = count(net.eval(), torch.rand(1, 3, 20, 27))  # padded to a multiple of 8 and cropped back
        assert not c.unclassified
        assert {cat for cat, _, _ in c.by_op.values()} == {MAC, OTHER, FREE}


def test_rules_cover_mmengines_silently_ignored_ops():
    """mmengine skips these op kinds without a word; we give each an explicit rule instead."""
    jit_analysis = pytest.importorskip('mmengine.analysis.jit_analysis')
    assert set(jit_analysis._IGNORED_OPS) <= set(OP_RULES)


def test_an_op_without_a_rule_is_reported_not_dropped():
    class Odd(nn.Module):
        def forward(self, x):
            return torch.cumsum(self.conv(x), dim=1)

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 1, bias=False)

    c = count(Odd(), torch.randn(1, 4, 3, 3))
    assert c.unclassified == {'aten::cumsum': 1}
    assert c.macs == 4 * 4 * 9
    assert any('UNCLASSIFIED' in line and 'cumsum' in line for line in c.notes())


def test_complexity_tool_writes_markdown_csv_png(tmp_path, capsys):
    rc = complexity_report.main(['--tiny', '--hosts', 'restormer', '--sizes', 'restormer=3x32x32', '--ratios', '0.5',
                    '--out-dir', str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert '| restormer | 3x32x32 | CSA |' in out and 'GLMHA r=0.5 calibration' in out and 'Convention:' in out
    for ext in ('md', 'csv', 'png'):
        assert (tmp_path / f'complexity.{ext}').stat().st_size > 0
    with open(tmp_path / 'complexity.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['variant'] for r in rows] == ['CSA', 'GLMHA r=0.5 calibration', 'GLMHA r=0.5 none']
    host = get_host('restormer')
    csa = host.build(attention='csa', **host.tiny)
    assert int(rows[0]['params']) == sum(p.numel() for p in csa.parameters())
    assert int(rows[1]['macs']) < int(rows[0]['macs'])


def test_unknown_host_lists_known_ones():
    known = 'mst_l, mst_plus_plus, restormer, retinexformer'
    with pytest.raises(ValueError, match=f"unknown host 'restomer'; known hosts: {known}"):
        get_host('restomer')


def _spectral_layers(net):
    return {name: m for name, m in net.named_modules() if isinstance(m, SpectralMSA)}


def _guidance_not_macs(m: SpectralMSA, n: int) -> int:
    """The calibration's pooling (C N) and the scaling of the tokens by g (C N): element-wise, not MACs."""
    return 2 * m.dim * n if m.guidance == 'calibration' else 0


@pytest.mark.parametrize('options', [dict(attention='csa'), dict(attention='glmha', rank_ratio=0.5),
                                     dict(attention='glmha', rank=[7, 14, 56], guidance='none')])
def test_mst_attention_modules_match_formulas(options):
    """Inside a (small) MST fed as the host feeds it ((H, Phi) of a simulated CASSI shot), every MS-MSA's
    counted MACs equal SpectralMSA.analytic_macs at its level: N = H W / 4^l tokens and the dispersed mask,
    (W + 27 * 2) columns wide at level 0, halved in both sides per level by the mask downsampling."""
    host = get_host('mst_l')
    h, w = 16, 24
    net = host.build(**host.tiny, **options).eval()
    inputs = host.make_inputs((28, h, w), 1, torch.device('cpu'))
    assert inputs[1].shape == (1, 28, h, w + 27 * 2)
    c = count(net, inputs)
    layers = _spectral_layers(net)
    assert len(layers) == 5 and all(m.mm is not None for m in layers.values())
    for name, m in layers.items():
        n = (h >> m.level) * (w >> m.level)
        n_mask = (h >> m.level) * ((w + 27 * 2) >> m.level)
        assert c.by_module[name] == sum(m.analytic_macs(n, n_mask).values()) - _guidance_not_macs(m, n), name
        assert sum(p.numel() for p in m.parameters()) == m.analytic_params()
    if 'rank' in options:
        assert [m.rank for m in layers.values()] == [7, 14, 56, 14, 7]  # encoder 0, 1, bottleneck, decoder 1, 0
    assert c.params == sum(p.numel() for p in net.parameters())
    assert not c.unclassified


@pytest.mark.parametrize('options', [dict(attention='csa'), dict(attention='glmha', rank=[4, 8, 16]),
                                     dict(attention='glmha', rank_ratio=0.25, guidance='none')])
def test_mst_plus_plus_attention_modules_match_formulas(options):
    host = get_host('mst_plus_plus')
    side = 16
    net = host.build(**host.tiny, **options).eval()
    c = count(net, host.make_inputs((3, side, side), 1, torch.device('cpu')))
    layers = _spectral_layers(net)
    assert len(layers) == 5 and all(m.mm is None for m in layers.values())
    for name, m in layers.items():
        n = (side >> m.level) ** 2
        assert c.by_module[name] == sum(m.analytic_macs(n).values()) - _guidance_not_macs(m, n), name
    assert not c.unclassified


@pytest.mark.parametrize('host_name,size', [('mst_l', (28, 18, 22)), ('mst_plus_plus', (3, 19, 21))])
def test_every_op_of_the_spectral_hosts_has_a_rule(host_name, size):
    """Sizes that are not multiples of the U-Net's stride: MST extends its inputs, MST++ pads (reflect)."""
    host = get_host(host_name)
    for options in (dict(attention='csa'), dict(attention='glmha')):
        c = count(host.build(**host.tiny, **options).eval(), host.make_inputs(size, 1, torch.device('cpu')))
        assert not c.unclassified, c.unclassified
        assert {cat for cat, _, _ in c.by_op.values()} == {MAC, OTHER, FREE}


def test_host_size_options_parse_and_explain_mistakes():
    from glmha_plugin.analysis.complexity_report import parse_host_sizes
    hosts = [get_host('restormer'), get_host('mst_l')]
    assert parse_host_sizes(['restormer=3x16x24', 'mst_l=28x8x8', 'restormer=3x32x32'], hosts, '--sizes') == {
        'restormer': [(3, 16, 24), (3, 32, 32)], 'mst_l': [(28, 8, 8)]}
    assert parse_host_sizes(None, hosts, '--sizes') == {}
    with pytest.raises(ValueError, match=r"--sizes entry 'unet=3x8x8' must be HOST=CxHxW with HOST one of "
                                         r"\['restormer', 'mst_l'\]"):
        parse_host_sizes(['unet=3x8x8'], hosts, '--sizes')
    with pytest.raises(ValueError, match="input size '3x8' must look like CxHxW"):
        parse_host_sizes(['restormer=3x8'], hosts, '--sizes')

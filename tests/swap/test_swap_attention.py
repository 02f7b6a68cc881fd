"""swap_attention, the GLMHASwap builder and glmha swap on stand-in networks written for the tests."""
import os.path as osp

import pytest
import torch
import yaml
from basicsr.archs import build_network

import glmha_plugin
from glmha_plugin import SwapError, swap_attention
from glmha_plugin.archs import MST, GLMHAMSTPlusPlus, GLMHARestormer, MST_Plus_Plus, Restormer, RetinexFormer
from glmha_plugin.data.cassi_simulation import simulate
from glmha_plugin.layers import GLMHA, ChannelAttention, SpectralMSA
from glmha_plugin.swap.attention_swap import SwappedGuidedMSA, SwappedMaskMSA
from glmha_plugin.swap.tool import main as swap_tool

from helpers import standin_nets as sn
from helpers.common import OPTIONS, REPO
from helpers.runs import run_main

STANDIN = 'helpers.standin_nets'


def randomised(net, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return net.eval()


def outputs(net, *inputs):
    with torch.no_grad():
        return net(*inputs)


def test_mdta_by_structure_under_another_class_name():
    net = randomised(sn.StandInUNet(bias=True))
    x = torch.rand(2, 3, 12, 16)
    want = outputs(net, x)
    report = swap_attention(net, rank_ratio=1.0, guidance='none')
    assert [r.name for r in report.layers] == ['enc.attn', 'mid.0.attn', 'mid.1.attn', 'dec.attn']
    assert all(isinstance(net.get_submodule(r.name), GLMHA) for r in report.layers)
    assert [(r.dim, r.heads, r.rank) for r in report.layers] == [(8, 1, 8), (16, 2, 16), (16, 2, 16), (8, 1, 8)]
    torch.testing.assert_close(outputs(net, x), want)      # full rank, no guidance: the original network
    text = str(report)
    assert 'mid.1.attn' in text and 'MDTA' in text and '4 attention layer(s) swapped to GLMHA' in text


@pytest.mark.parametrize('ratios', [{'mid': 0.25, 'mid.1': 0.5}, {'mid.1': 0.5, 'mid': 0.25}])
def test_low_rank_guided_swap_keeps_state_device_dtype(ratios):
    net = randomised(sn.StandInUNet()).double().train()
    net.enc.attn.requires_grad_(False)
    report = swap_attention(net, rank_ratio=ratios, rank={'enc': 2})   # the longest prefix wins, in either order
    assert {r.name: r.rank for r in report.layers} == {'enc.attn': 2, 'mid.0.attn': 4, 'mid.1.attn': 8,
                                                       'dec.attn': 4}
    assert all(0 < r.key_energy <= 1 and 0 < r.value_energy <= 1 for r in report.layers)
    layer = net.mid.get_submodule('1.attn')
    assert layer.training and layer.calib is not None and layer.qkv.weight.dtype == torch.float64
    assert not any(p.requires_grad for p in net.enc.attn.parameters())
    assert all(p.requires_grad for p in net.dec.attn.parameters())
    y = net(torch.rand(1, 3, 8, 8, dtype=torch.float64))
    y.sum().backward()


def test_rank_options_are_checked():
    with pytest.raises(SwapError, match=r"rank_ratio: prefix\(es\) \['encoder'\] match no swapped attention layer"):
        swap_attention(sn.StandInUNet(), rank_ratio={'encoder': 0.5})
    with pytest.raises(SwapError, match=r'mid.0.attn \(16 channels, 2 heads\): rank 3 is not divisible'):
        swap_attention(sn.StandInUNet(), rank={'mid': 3})
    with pytest.raises(SwapError, match=r"enc.attn: both rank\['enc'\] \(4\) and rank_ratio\['enc'\] \(0.5\) apply"):
        swap_attention(sn.StandInUNet(), rank={'enc': 4}, rank_ratio={'enc': 0.5})
    with pytest.raises(SwapError, match='guidance must be one of'):
        swap_attention(sn.StandInUNet(), guidance='yes')


def test_a_lookalike_with_an_extra_parameter_is_refused_under_strict_and_skipped_otherwise():
    net = sn.StandInUNet(lookalike=True)
    with pytest.raises(SwapError, match=r"mid.1.attn: looks like MDTA \(TopKAttention\) but extra parameters "
                                        r"\['attn1'\]"):
        swap_attention(net)
    assert type(net.enc.attn) is sn.Attention          # nothing was replaced
    report = swap_attention(net, strict=False)
    assert [r.name for r in report.layers] == ['enc.attn', 'mid.0.attn', 'dec.attn']
    assert report.skipped[0][0] == 'mid.1.attn' and 'attn1' in report.skipped[0][1]
    assert type(net.mid[1].attn) is sn.TopKAttention
    assert "mid.1.attn: looks like MDTA (TopKAttention) but extra parameters ['attn1']" in str(report)


def test_the_structure_with_another_function_is_caught_by_the_probe():
    net = sn.StandInUNet()
    net.mid[0].attn = sn.UnnormalisedAttention(16, 2)
    with pytest.raises(SwapError, match='mid.0.attn: has the structure of MDTA .* computes another function'):
        swap_attention(net)


def test_structural_differences_are_named():
    net = sn.StandInUNet()
    net.enc.attn.qkv_dwconv = torch.nn.Conv2d(24, 24, 5, padding=2, groups=24)
    with pytest.raises(SwapError, match=r'enc.attn: .*qkv_dwconv is Conv2d\(24, 24, kernel \(5, 5\)'):
        swap_attention(net)


@pytest.mark.parametrize('kind', ['plain', 'mask', 'guide'])
def test_ms_msa_standins(kind):
    net = randomised(sn.SpectralNet(dim=8, heads=2, kind=kind))
    x, guide = torch.rand(2, 3, 6, 10), (torch.rand(2, 8, 6, 10) if kind != 'plain' else None)
    want = outputs(net, x, guide)
    report = swap_attention(net, rank_ratio=1.0, guidance='none')
    assert [r.kind for r in report.layers] == ['MS-MSA', 'MS-MSA']
    cls = {'plain': SpectralMSA, 'mask': SwappedMaskMSA, 'guide': SwappedGuidedMSA}[kind]
    assert type(net.blocks[0]) is cls
    torch.testing.assert_close(outputs(net, x, guide), want)
    low = randomised(sn.SpectralNet(dim=8, heads=2, kind=kind))
    swap_attention(low, rank_ratio=0.5)
    assert low.blocks[1].rank == 4 and outputs(low, x, guide).shape == x.shape
    if kind == 'mask':   # the network's own mask branch is kept (C channels), GLMHA multiplies r of them
        assert isinstance(low.blocks[0].mm, sn.MaskBranch) and low.blocks[0].guide_index.tolist() == [0, 2, 4, 6]


def test_the_plugins_own_networks():
    torch.manual_seed(0)
    mst = randomised(MST(dim=28, stage=2, num_blocks=[1, 1, 1]))
    inputs = simulate(torch.rand(1, 28, 16, 16), (torch.rand(1, 1, 16, 16) > 0.5).float())
    want = outputs(mst, *inputs)
    assert len(swap_attention(mst, rank_ratio=1.0, guidance='none').layers) == 5
    torch.testing.assert_close(outputs(mst, *inputs), want)
    retinex = randomised(RetinexFormer(n_feat=8, stage=1, num_blocks=[1, 1, 1]))
    x = torch.rand(1, 3, 12, 12)
    want = outputs(retinex, x)
    swap_attention(retinex, rank_ratio=1.0, guidance='none')
    assert all(m.attention == 'glmha' for m in retinex.modules() if isinstance(m, SpectralMSA))
    torch.testing.assert_close(outputs(retinex, x), want)
    report = swap_attention(GLMHARestormer(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1))
    assert not report.layers and len(report.skipped) == 8 and 'already GLMHA' in report.skipped[0][1]


def test_glmha_swap_builder_adds_no_prefix():
    net = build_network({'type': 'GLMHASwap', 'base': {'type': 'Restormer', 'dim': 8, 'num_blocks': [1, 1, 1, 1],
                                                       'num_refinement_blocks': 1}, 'rank_ratio': 0.5})
    assert type(net) is Restormer
    ref = GLMHARestormer(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, rank_ratio=0.5)
    assert [(k, v.shape) for k, v in net.state_dict().items()] == [(k, v.shape) for k, v in ref.state_dict().items()]
    with pytest.raises(ValueError, match="GLMHASwap base.type: No object named 'Restomer'"):
        build_network({'type': 'GLMHASwap', 'base': {'type': 'Restomer'}})


@pytest.mark.parametrize('csa, glmha, options', [
    (Restormer, GLMHARestormer, dict(dim=8, num_blocks=[1, 1, 1, 2], num_refinement_blocks=1)),
    (MST_Plus_Plus, GLMHAMSTPlusPlus, dict(stage=2)),
])
def test_a_per_layer_plan_is_one_format_for_the_swap_the_swap_builder_and_the_hosts(csa, glmha, options):
    """A plan {module path: rank} (what compress writes) means the same to swap_attention, GLMHASwap and the
    host's own rank option: the same layers get the same ranks, the networks the same keys and shapes."""
    swapped = csa(**options)
    paths = [p for p, m in swapped.named_modules() if isinstance(m, (ChannelAttention, SpectralMSA))]
    plan = {p: swapped.get_submodule(p).num_heads * (1 + i % 2) for i, p in enumerate(paths)}
    report = swap_attention(swapped, rank=plan)
    assert {r.name: r.rank for r in report.layers} == plan
    built = glmha(rank=plan, **options)
    via_yaml = build_network({'type': 'GLMHASwap', 'base': dict(type=csa.__name__, **options), 'rank': plan})
    for net in (built, via_yaml):
        assert {p: net.get_submodule(p).rank for p in paths} == plan
        assert [(k, v.shape) for k, v in net.state_dict().items()] == \
            [(k, v.shape) for k, v in swapped.state_dict().items()]


def test_glmha_swap_trains_through_train_pipeline(workdir, monkeypatch):
    """A network registered by another plugin (the stand-in), its GLMHA version trained from YAML by basicsr
    (glmha-train's main in this process; the stand-in registered for this test only)."""
    from basicsr.utils.registry import ARCH_REGISTRY

    from glmha_plugin.commands.train import main as glmha_train
    monkeypatch.setitem(ARCH_REGISTRY._obj_map, 'StandInUNet', sn.StandInUNet)
    with open(osp.join(OPTIONS, 'tiny', 'Demo_Deraining_GLMHA.yml')) as f:
        opt = yaml.safe_load(f)
    opt.update(name='swap_standin')
    opt['network_g'] = {'type': 'GLMHASwap', 'base': {'type': 'StandInUNet', 'dim': 8}, 'rank_ratio': 0.5}
    opt['datasets']['train'].update(batch_size_per_gpu=2, gt_size=32, num_worker_per_gpu=0)
    opt['train']['total_iter'] = 2
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False)
    opt['val']['val_freq'] = 2
    path = workdir / 'swap.yml'
    path.write_text(yaml.safe_dump(opt))
    run_main(glmha_train, ['-opt', str(path)], workdir)
    log_dir = workdir / 'experiments' / 'swap_standin'
    log = next(log_dir.glob('train_*.log')).read_text()
    assert 'GLMHASwap on StandInUNet' in log and '4 attention layer(s) swapped' in log and 'End of training' in log
    state = torch.load(log_dir / 'models' / 'net_g_latest.pth', weights_only=True)['params']
    assert 'mid.1.attn.calib.fc1.weight' in state and not any(k.startswith('base.') for k in state)


def test_checkpoint_tool(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(REPO)
    net = randomised(sn.StandInUNet(dim=8))
    torch.save({'params_ema': net.state_dict()}, tmp_path / 'standin.pth')
    common = ['--network', f'{STANDIN}:StandInUNet', '--options', '{"dim": 8}',
              '--input', str(tmp_path / 'standin.pth'),
              '--param-key', 'params_ema']
    assert swap_tool(common + ['--output', str(tmp_path / 'glmha.pth'), '--rank-ratio', '{"mid": 0.25}',
                               '--full-rank-check', '--input-shape', '1x3x16x16']) == 0
    out = capsys.readouterr().out
    assert 'full-rank check: relative max difference' in out and '(OK' in out
    assert 'mid.0.attn' in out and 'wrote' in out
    swapped = torch.load(tmp_path / 'glmha.pth', weights_only=True)['params']
    fresh = sn.StandInUNet(dim=8)
    report = swap_attention(fresh, rank_ratio={'mid': 0.25})
    fresh.load_state_dict(swapped, strict=True)          # what GLMHASwap builds with the same options
    assert [r.rank for r in report.layers] == [4, 4, 4, 4]
    assert swap_tool(common + ['--output', str(tmp_path / 'glmha.pth')]) == 2
    assert 'exists' in capsys.readouterr().err
    lookalike = sn.StandInUNet(dim=8, lookalike=True)
    torch.save({'params': lookalike.state_dict()}, tmp_path / 'topk.pth')
    args = ['--network', f'{STANDIN}:StandInUNet', '--options', '{"dim": 8, "lookalike": true}', '--input',
            str(tmp_path / 'topk.pth'), '--output', str(tmp_path / 'topk_glmha.pth')]
    assert swap_tool(args) == 2 and 'attn1' in capsys.readouterr().err
    assert swap_tool(args + ['--no-strict']) == 0 and 'skipped' in capsys.readouterr().out


def test_checkpoint_tool_registered_network_prints_the_yaml_block(tmp_path, capsys):
    net = Restormer(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1)
    torch.save({'params': net.state_dict()}, tmp_path / 'restormer.pth')
    assert swap_tool(['--network', 'Restormer', '--options', '{"dim": 8, "num_blocks": [1, 1, 1, 1], '
                      '"num_refinement_blocks": 1}', '--input', str(tmp_path / 'restormer.pth'), '--output',
                      str(tmp_path / 'out.pth'), '--rank-ratio', '0.5', '--full-rank-check']) == 0
    out = capsys.readouterr().out
    block = yaml.safe_load(out[out.index('network_g:'):])['network_g']
    assert block['type'] == 'GLMHASwap' and block['base']['type'] == 'Restormer' and block['rank_ratio'] == 0.5
    rebuilt = build_network(block)
    rebuilt.load_state_dict(torch.load(tmp_path / 'out.pth', weights_only=True)['params'], strict=True)


def test_swap_attention_is_exported():
    assert glmha_plugin.swap_attention is swap_attention
    from glmha_plugin.commands.glmha import ACTIONS
    assert ACTIONS['swap'].module == 'swap.tool'


def test_without_warm_start_the_new_layers_are_fresh():
    net = randomised(sn.StandInUNet())
    old = net.enc.attn.qkv.weight.detach().clone()
    report = swap_attention(net, warm_start=False, guidance='none', rank_ratio=1.0)
    assert all(r.key_energy is None for r in report.layers) and '        -' in str(report)
    assert not torch.equal(net.enc.attn.qkv.weight, old)

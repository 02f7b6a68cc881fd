"""Warm start of GLMHARestormer from a Restormer (CSA) checkpoint by truncated SVD."""

import pytest
import torch

from glmha_plugin import convert
from glmha_plugin.archs import GLMHARestormer, Restormer

TINY = dict(dim=8, num_blocks=[1, 1, 1, 2], num_refinement_blocks=1, ffn_expansion_factor=2.0)


def parent_and_input(bias=False):
    torch.manual_seed(0)
    parent = Restormer(**TINY, bias=bias).eval()
    x = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        return parent, x, parent(x)


def rel_error(net, x, ref):
    """||net(x) - ref|| / ||ref - x||: error relative to what the network changes in its input."""
    with torch.no_grad():
        y = net.eval()(x)
    return float((y - ref).norm() / (ref - x).norm())


@pytest.mark.parametrize('guidance', ['none', 'calibration'])
@pytest.mark.parametrize('bias', [False, True])
def test_full_rank_conversion_reproduces_the_parent(guidance, bias):
    parent, x, ref = parent_and_input(bias)
    child = GLMHARestormer(**TINY, bias=bias, rank_ratio=1.0, guidance=guidance)
    reports = convert.convert_network(parent, child)
    assert len(reports) == 9 and all(r.key_energy == pytest.approx(1.0) for r in reports)
    with torch.no_grad():
        out = child.eval()(x)
    print(f'full rank, guidance {guidance}, bias {bias}: max |GLMHA - CSA| = {(out - ref).abs().max():.2e}')
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_half_rank_start_is_close_to_the_parent():
    parent, x, ref = parent_and_input()
    torch.manual_seed(1)
    converted = GLMHARestormer(**TINY, rank_ratio=0.5)
    convert.convert_network(parent, converted)
    torch.manual_seed(1)
    random_init = GLMHARestormer(**TINY, rank_ratio=0.5)
    torch.manual_seed(1)
    shared_only = GLMHARestormer(**TINY, rank_ratio=0.5)  # every shared tensor copied, K/V and calibration random
    attn = tuple(f'{n}.' for n, m in shared_only.named_modules() if isinstance(m, convert.ChannelAttention))
    p_state = parent.state_dict()
    shared_only.load_state_dict({k: (v if k.startswith(attn) else p_state[k])
                                 for k, v in shared_only.state_dict().items()})
    errors = {'converted (SVD warm start)': rel_error(converted, x, ref),
              'shared tensors copied, random K/V': rel_error(shared_only, x, ref),
              'random GLMHA init': rel_error(random_init, x, ref)}
    for name, err in errors.items():
        print(f'rank 0.5 {name:36s} ||out - parent|| / ||parent - input|| = {err:.3f}')
    # a randomly initialised parent has a flat singular spectrum, the hardest case for truncation
    assert errors['converted (SVD warm start)'] < 0.9 * errors['shared tensors copied, random K/V']
    assert errors['converted (SVD warm start)'] < 0.35 * errors['random GLMHA init']


def test_neutral_guidance_is_constant_and_compensated():
    parent, x, _ = parent_and_input()
    guided, plain = GLMHARestormer(**TINY, rank_ratio=0.5), GLMHARestormer(**TINY, rank_ratio=0.5, guidance='none')
    convert.convert_network(parent, guided)
    convert.convert_network(parent, plain)
    layer = guided.latent[0].attn
    assert torch.equal(layer.calib(torch.randn(3, layer.dim, 4, 4)), torch.full((3, layer.dim), 0.5))
    with torch.no_grad():
        torch.testing.assert_close(guided.eval()(x), plain.eval()(x), rtol=1e-6, atol=1e-6)


def test_checkpoint_round_trip_and_errors(tmp_path, capsys):
    parent, x, ref = parent_and_input()
    src, dst = tmp_path / 'restormer.pth', tmp_path / 'glmha.pth'
    torch.save({'params': {f'module.{k}': v for k, v in parent.state_dict().items()}}, src)  # DDP-style keys too
    opt = tmp_path / 'net.yml'
    opt.write_text('network_g:\n  type: GLMHARestormer\n  dim: 8\n  num_blocks: [1, 1, 1, 2]\n'
                   '  num_refinement_blocks: 1\n  ffn_expansion_factor: 2.0\n  rank_ratio: 1.0\n  guidance: none\n')
    assert convert.main(['--input', str(src), '--output', str(dst), '-opt', str(opt)]) == 0
    assert 'latent.1.attn' in capsys.readouterr().out
    child = GLMHARestormer(**TINY, rank_ratio=1.0, guidance='none')
    child.load_state_dict(torch.load(dst, weights_only=True)['params'], strict=True)
    with torch.no_grad():
        torch.testing.assert_close(child.eval()(x), ref, rtol=1e-5, atol=1e-5)
    assert convert.main(['--input', str(src), '--output', str(dst), '-opt', str(opt)]) == 2
    assert 'exists' in capsys.readouterr().err  # nothing overwritten without --overwrite
    opt.write_text(opt.read_text().replace('dim: 8', 'dim: 16'))
    assert convert.main(['--input', str(src), '--output', str(tmp_path / 'x.pth'), '-opt', str(opt)]) == 2
    assert 'is not a Restormer (CSA) checkpoint matching network_g' in capsys.readouterr().err

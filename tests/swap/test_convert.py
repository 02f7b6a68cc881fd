"""Warm start of GLMHARestormer from a Restormer (CSA) checkpoint by truncated SVD."""
import math

import pytest
import torch
import yaml

from glmha_plugin.archs import GLMHARestormer, Restormer
from glmha_plugin.swap import convert as convert_tool
from glmha_plugin.swap import warm_start as convert

from helpers.common import TINY_RESTORMER_2 as TINY


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


def left_vectors_on_channels_1_and_3(a: float, b: float) -> torch.Tensor:
    """Orthogonal 4 x 4 U whose first two columns sit mostly on channels 1 and 3 (entries cos a, cos b;
    channels 0 and 2 hold sin a, sin b)."""
    u = torch.zeros(4, 4, dtype=torch.float64)
    ca, sa, cb, sb = math.cos(a), math.sin(a), math.cos(b), math.sin(b)
    u[1, 0], u[0, 0], u[1, 2], u[0, 2] = ca, sa, -sa, ca
    u[3, 1], u[2, 1], u[3, 3], u[2, 3] = cb, sb, -sb, cb
    return u


@pytest.mark.parametrize('bias', [False, True])
def test_half_rank_conversion_of_a_known_spectrum(bias):
    """The documented steps on a layer (8 channels, 2 heads) whose per-head key and value weights have a known
    SVD U S V^T: the kept channels are the pivots of the top-2 left singular vectors (channels 1 and 3 of each
    head, not the first two), their key/value rows are those of the rank-2 truncation U_2 S_2 V_2^T (not of
    W), the kept energy is (s1^2 + s2^2) / sum s^2, and the depth-wise kernels (and biases) of the kept channels
    are copied."""
    torch.manual_seed(0)
    csa = convert.ChannelAttention(8, 2, bias, rank=8, guidance='none', gamma=8)
    glmha = convert.ChannelAttention(8, 2, bias, rank=4, guidance='none', gamma=8)
    if bias:
        with torch.no_grad():
            csa.qkv.bias.copy_(torch.arange(24.0))
            csa.qkv_dwconv.bias.copy_(100 + torch.arange(24.0))
    hadamard = torch.tensor([[1.0]], dtype=torch.float64)
    for _ in range(3):
        hadamard = torch.cat([torch.cat([hadamard, hadamard], 1), torch.cat([hadamard, -hadamard], 1)])
    right = hadamard / math.sqrt(8)  # orthonormal rows: 4 of them per head
    spectra = {'k': torch.tensor([4.0, 2.0, 1.0, 0.5]).double(), 'v': torch.tensor([3.0, 1.0, 0.5, 0.5]).double()}
    full, truncated = {'k': [], 'v': []}, {'k': [], 'v': []}
    for head, (a, b) in enumerate([(0.3, 0.5), (0.4, 0.2)]):
        u, vh = left_vectors_on_channels_1_and_3(a, b), right[4 * head:4 * head + 4]
        for kind, s in spectra.items():
            full[kind].append(u @ torch.diag(s) @ vh)                          # 4 x 8
            truncated[kind].append(u[:, :2] @ torch.diag(s[:2]) @ vh[:2])
    q = torch.randn(8, 8)
    with torch.no_grad():
        csa.qkv.weight.copy_(torch.cat([q.double(), *full['k'], *full['v']]).float().view(24, 8, 1, 1))
    report = convert.init_attention_from_csa(csa, glmha, 'layer')
    kept = [1, 3, 5, 7]
    rows = {kind: torch.cat([t[[1, 3]] for t in truncated[kind]]) for kind in ('k', 'v')}
    assert not torch.allclose(rows['k'], torch.cat([w[[1, 3]] for w in full['k']]), atol=0.1)  # truncation shows
    torch.testing.assert_close(glmha.qkv.weight.flatten(1).double(), torch.cat([q.double(), rows['k'], rows['v']]),
                               rtol=1e-5, atol=1e-6)
    assert report.key_energy == pytest.approx(20 / 21.25) and report.value_energy == pytest.approx(10 / 10.5)
    dw = csa.qkv_dwconv.weight
    torch.testing.assert_close(glmha.qkv_dwconv.weight, torch.cat([dw[:8], dw[8:16][kept], dw[16:][kept]]))
    if bias:
        for mine, parent in ((glmha.qkv.bias, csa.qkv.bias), (glmha.qkv_dwconv.bias, csa.qkv_dwconv.bias)):
            torch.testing.assert_close(mine, torch.cat([parent[:8], parent[8:16][kept], parent[16:][kept]]))
    # the kept energy of small weights (sum s^2 < 1) is still the ratio; all-zero weights lose nothing
    assert convert._truncate(0.1 * full['v'][0], 2)[2] == pytest.approx(10 / 10.5)
    assert convert._truncate(torch.zeros(4, 8, dtype=torch.float64), 2)[2] == 1.0


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
    opt.write_text(yaml.safe_dump({'network_g': dict(type='GLMHARestormer', **TINY, rank_ratio=1.0, guidance='none')}))
    assert convert_tool.main(['--input', str(src), '--output', str(dst), '-opt', str(opt)]) == 0
    assert 'latent.1.attn' in capsys.readouterr().out
    child = GLMHARestormer(**TINY, rank_ratio=1.0, guidance='none')
    child.load_state_dict(torch.load(dst, weights_only=True)['params'], strict=True)
    with torch.no_grad():
        torch.testing.assert_close(child.eval()(x), ref, rtol=1e-5, atol=1e-5)
    assert convert_tool.main(['--input', str(src), '--output', str(dst), '-opt', str(opt)]) == 2
    assert 'exists' in capsys.readouterr().err  # nothing overwritten without --overwrite
    opt.write_text(opt.read_text().replace('dim: 8', 'dim: 16'))
    assert convert_tool.main(['--input', str(src), '--output', str(tmp_path / 'x.pth'), '-opt', str(opt)]) == 2
    assert 'is not a Restormer (CSA) checkpoint matching network_g' in capsys.readouterr().err

"""The attention-spectrum analysis and glmha spectrum on a small model and real photos."""
import ast
import re

import numpy as np
import pytest
import torch
import yaml

from glmha_plugin.analysis import spectrum
from glmha_plugin.analysis import spectrum_report as tool  # glmha spectrum
from glmha_plugin.archs import RESTORMER_STAGES, Restormer
from glmha_plugin.layers import GLMHA

from helpers.common import TINY_RESTORMER_2 as TINY
from helpers.common import load_yaml


def test_cumulative_spectra_of_known_matrices():
    d = 6
    identity = torch.eye(d)
    uniform = torch.full((d, d), 1.0 / d)           # rank 1, row-stochastic
    sv, eig = spectrum.cumulative_spectra(torch.stack([identity, uniform]))
    np.testing.assert_allclose(sv[0], np.arange(1, d + 1) / d)
    np.testing.assert_allclose(eig[0], np.arange(1, d + 1) / d)
    np.testing.assert_allclose(sv[1], np.ones(d), atol=1e-12)
    np.testing.assert_allclose(eig[1], np.ones(d), atol=1e-9)
    assert spectrum.smallest_rank(sv[0], 0.5) == 3 and spectrum.smallest_rank(sv[0], 0.51) == 4
    assert spectrum.smallest_rank(sv[1], 0.99) == 1
    rect_sv, rect_eig = spectrum.cumulative_spectra(torch.rand(3, 4, 2))
    assert rect_sv.shape == (3, 2) and rect_eig is None   # GLMHA maps are d x r_h: no eigenvalues


def test_collector_averages_the_layers_maps():
    torch.manual_seed(0)
    net = Restormer(**TINY).eval()
    images = [torch.rand(1, 3, 24, 24), torch.rand(1, 3, 24, 24)]
    stage_of = lambda name: name.split('.')[0]  # noqa: E731
    with spectrum.SpectrumCollector(net, stage_of) as collector, torch.no_grad():
        for x in images:
            net(x)
    layers = collector.results()
    assert [layer.name for layer in layers][:2] == ['encoder_level1.0.attn', 'encoder_level2.0.attn']
    assert len(layers) == 9 and {layer.stage for layer in layers} == set(RESTORMER_STAGES)
    # by hand for one layer: maps of its input on both images, averaged over images and heads
    layer = next(one for one in layers if one.name == 'encoder_level2.0.attn')
    module = net.encoder_level2[0].attn
    inputs = []
    h = module.register_forward_pre_hook(lambda m, inp: inputs.append(inp[0]))
    with torch.no_grad():
        for x in images:
            net(x)
    h.remove()
    maps = torch.cat([module.attention_maps(i) for i in inputs]).flatten(0, 1)
    sv, eig = spectrum.cumulative_spectra(maps)
    np.testing.assert_allclose(layer.sv_energy, sv.mean(0))
    np.testing.assert_allclose(layer.eig_cumulative, eig.mean(0))
    assert layer.maps == 2 * module.num_heads
    for one in layers:
        assert np.all(np.diff(one.sv_energy) >= -1e-12) and abs(one.sv_energy[-1] - 1) < 1e-9
        assert 1 <= one.rank(0.9) <= one.rank(0.99) <= one.head_dim
    # hooks are gone after the with-block
    assert all(not m._forward_hooks for m in net.modules())


def test_stage_ranks_are_multiples_of_heads_and_build():
    torch.manual_seed(0)
    net = Restormer(**TINY).eval()
    with spectrum.SpectrumCollector(net, lambda n: n.split('.')[0]) as collector, torch.no_grad():
        net(torch.rand(1, 3, 16, 16))
    layers = collector.results()
    for energy in spectrum.ENERGIES:
        ranks = spectrum.stage_ranks(layers, energy)
        assert set(ranks) == set(RESTORMER_STAGES)
        for layer in layers:
            assert ranks[layer.stage] % layer.heads == 0 and ranks[layer.stage] <= layer.channels
        glmha = Restormer(attention='glmha', rank=ranks, **TINY)
        assert glmha.latent[0].attn.rank == ranks['latent']


def test_collector_needs_attention_layers():
    with pytest.raises(ValueError, match='no attention layer'):
        spectrum.SpectrumCollector(torch.nn.Conv2d(3, 3, 1))


def test_glmha_maps_have_singular_values_only():
    m = GLMHA(16, 2, rank=8)
    with spectrum.SpectrumCollector(m) as collector, torch.no_grad():
        m(torch.randn(2, 16, 5, 5))
    (layer,) = collector.results()
    assert layer.eig_cumulative is None and layer.sv_energy.shape == (4,)


def test_tool_on_photos_writes_plots_tables_and_options(demo_data, tmp_path, capsys):
    images = str(demo_data / 'datasets' / 'demo_rain' / 'train' / 'input')
    out = tmp_path / 'report'
    opts = tmp_path / 'ranks.yml'
    rc = tool.main(['--tiny', '--images', images, '--size', '32', '--out-dir', str(out), '--write-options', str(opts),
                    '--energy', '0.9'])
    assert rc == 0
    printed = capsys.readouterr().out
    assert '| encoder_level1.0.attn | encoder_level1 |' in printed and '95%' in printed
    for f in ('spectrum.png', 'spectrum.md', 'spectrum_ranks.csv'):
        assert (out / f).stat().st_size > 0
    net_opt = load_yaml(opts)['network_g']
    assert net_opt['attention'] == 'glmha' and set(net_opt['rank']) == set(RESTORMER_STAGES)
    arch = net_opt.pop('type')
    from basicsr.utils.registry import ARCH_REGISTRY
    model = ARCH_REGISTRY.get(arch)(**net_opt)
    assert model.refinement[0].attn.rank == net_opt['rank']['refinement']
    # never overwrites
    assert tool.main(['--tiny', '--images', images, '--size', '32', '--out-dir', str(out),
                      '--write-options', str(opts)]) == 2
    assert 'exists' in capsys.readouterr().err


def test_tool_reads_an_option_file_and_explains_bad_input(demo_data, tmp_path, capsys):
    opt = tmp_path / 'net.yml'
    opt.write_text(yaml.safe_dump({'network_g': dict(type='Restormer', **TINY)}))
    images = str(demo_data / 'datasets' / 'demo_rain' / 'test' / 'input')
    assert tool.main(['--opt', str(opt), '--images', images, '--size', '24', '--out-dir', str(tmp_path / 'r')]) == 0
    capsys.readouterr()
    assert tool.main(['--opt', str(opt), '--images', str(tmp_path / 'nowhere')]) == 2
    assert 'does not exist' in capsys.readouterr().err
    bad = tmp_path / 'bad.yml'
    bad.write_text(yaml.safe_dump({'network_g': {'type': 'UNet'}}))
    assert tool.main(['--opt', str(bad), '--images', images]) == 2
    assert ("'UNet' is not a known host network; known: GLMHAMST, GLMHAMSTPlusPlus, GLMHARestormer, "
            "GLMHARetinexFormer, MST, MST_Plus_Plus, Restormer, RetinexFormer") in capsys.readouterr().err


def test_tool_loads_weights_by_key(demo_data, tmp_path, capsys):
    from glmha_plugin.analysis.hosts import get_host
    host = get_host('restormer')
    net = host.build(**dict(host.default_options, **host.tiny))
    ckpt = tmp_path / 'net.pth'
    torch.save({'params': net.state_dict()}, ckpt)
    images = str(demo_data / 'datasets' / 'demo_rain' / 'test' / 'input')
    common = ['--tiny', '--images', images, '--size', '24', '--out-dir', str(tmp_path / 'r')]
    assert tool.main(common + ['--weights', str(ckpt)]) == 0
    assert f'weights {ckpt}' in capsys.readouterr().out
    assert tool.main(common + ['--weights', str(ckpt), '--param-key', 'params_ema']) == 2
    assert "no key 'params_ema'" in capsys.readouterr().err
    other = tmp_path / 'other.pth'   # another configuration: the differing keys are named, no traceback
    torch.save({'params': host.build(**dict(host.default_options, **dict(host.tiny, dim=16))).state_dict()}, other)
    assert tool.main(common + ['--weights', str(other)]) == 2
    assert 'does not fit Restormer' in capsys.readouterr().err


@pytest.mark.parametrize('attention,kwargs', [('csa', {}), ('glmha', dict(rank=16)),
                                              ('glmha', dict(rank=8, guidance='none'))])
def test_spectral_msa_maps_are_the_maps_its_forward_uses(monkeypatch, attention, kwargs):
    """SpectralMSA.attention_maps gives the softmax maps that forward multiplies the values with."""
    from glmha_plugin.layers import SpectralMSA, spectral_attention
    from glmha_plugin.layers import attention as attention_module
    torch.manual_seed(0)
    m = SpectralMSA(32, 2, attention, mask_step=2, level=1, **kwargs).eval()
    with torch.no_grad():
        m.rescale.copy_(torch.tensor([[[3.0]], [[0.5]]]))
    x, mask = torch.randn(2, 6, 5, 32), torch.rand(1, 32, 6, 5 + 40)
    used = []

    def recording(q, k, v, temperature):
        used.append(attention_module.attention_maps(q, k, temperature))
        return attention_module.transposed_attention(q, k, v, temperature)

    monkeypatch.setattr(spectral_attention, 'transposed_attention', recording)
    with torch.no_grad():
        m(x, mask)
        maps = m.attention_maps(x)
    assert maps.shape == (2, 2, 16, m.rank // 2)
    torch.testing.assert_close(maps, used[0], rtol=0, atol=0)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 2, 16))


def test_rgb_to_bands_interpolates_blue_to_red():
    from glmha_plugin.analysis.hosts import rgb_to_bands
    rgb = torch.tensor([1.0, 0.5, 0.0]).view(1, 3, 1, 1).expand(2, 3, 4, 5)   # R, G, B
    bands = rgb_to_bands(rgb, 28)
    assert bands.shape == (2, 28, 4, 5)
    torch.testing.assert_close(bands[0, :, 0, 0], torch.linspace(0, 1, 28))


@pytest.mark.parametrize('host_name', ['mst_l', 'mst_plus_plus', 'retinexformer'])
def test_tool_on_spectral_hosts_writes_per_level_ranks(demo_data, tmp_path, capsys, host_name):
    """MST (photos -> 28-band scenes -> simulated CASSI shot), MST++ (photos as input) and Retinexformer
    (darkened photos): stages are the U-Net levels; the written rank option is the per-layer format, each
    level's rank on the module paths of its blocks, which the GLMHA network accepts."""
    images = str(demo_data / 'datasets' / 'demo_rain' / 'test' / 'input')
    opts = tmp_path / 'ranks.yml'
    rc = tool.main(['--host', host_name, '--tiny', '--images', images, '--size', '16', '--out-dir',
                    str(tmp_path / 'r'), '--write-options', str(opts), '--energy', '0.9'])
    assert rc == 0
    printed = capsys.readouterr().out
    first = {'mst_l': 'encoder_layers.0.0.blocks.0.0', 'mst_plus_plus': 'body.0.encoder_layers.0.0.blocks.0.0',
             'retinexformer': 'body.0.denoiser.encoder_layers.0.0.blocks.0.0'}
    assert f'| {first[host_name]} | level0 |' in printed
    net_opt = load_yaml(opts)['network_g']
    measured = ast.literal_eval(re.search(r'- 90%: (\{.*\})', printed).group(1))     # {levelL: rank}
    level_ranks = [measured[f'level{level}'] for level in range(3)]
    assert net_opt['attention'] == 'glmha' and isinstance(net_opt['rank'], dict)
    unet = {'mst_l': '', 'mst_plus_plus': 'body.0.', 'retinexformer': 'body.0.denoiser.'}[host_name]
    assert {net_opt['rank'][f'{unet}{p}'] for p in ('encoder_layers.1.0', 'decoder_layers.0.2')} == {level_ranks[1]}
    from basicsr.utils.registry import ARCH_REGISTRY
    model = ARCH_REGISTRY.get(net_opt.pop('type'))(**net_opt)
    from glmha_plugin.layers import SpectralMSA
    layers = [m for m in model.modules() if isinstance(m, SpectralMSA)]
    assert layers and all(m.rank == level_ranks[m.level] for m in layers)
    assert all(m.rank % m.num_heads == 0 for m in layers)

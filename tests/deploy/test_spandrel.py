"""spandrel: GLMHA checkpoints load through ``spandrel.ModelLoader`` after ``register_spandrel()``; checkpoints
spandrel recognises go through the swap tool (``--network spandrel`` or no ``--network``).

Every host's tiny configuration, with a different rank in every attention layer (and one unguided layer among
calibrated ones), is written as the plugin writes checkpoints (``{'params': state_dict}``), loaded by spandrel's
own loader, and compared with the plugin's network.
"""
import subprocess
import sys

import pytest
import torch

spandrel = pytest.importorskip('spandrel')

import glmha_plugin  # noqa: E402
from glmha_plugin.archs import MST, MST_Plus_Plus, Restormer, RetinexFormer  # noqa: E402
from glmha_plugin.data.cassi_simulation import disperse  # noqa: E402
from glmha_plugin.deploy import spandrel as gs  # noqa: E402
from glmha_plugin.layers import GLMHA, ChannelAttention, SpectralMSA  # noqa: E402
from glmha_plugin.swap import swap_attention  # noqa: E402
from glmha_plugin.swap.tool import main as swap_tool_main  # noqa: E402

from helpers.common import REPO, TINY_MST, TINY_RESTORMER_2, TINY_RETINEX, clean_env  # noqa: E402

TINY_MSTPP = dict(n_feat=8, out_channels=8, stage=1)
# Each host once more with other options, so that every hyperparameter has to be read from the tensors
HOSTS = {
    'restormer': (Restormer, TINY_RESTORMER_2, 'GLMHARestormer', 3, 3, 8),
    'restormer-options': (Restormer, dict(TINY_RESTORMER_2, inp_channels=6, out_channels=3, dual_pixel_task=True,
                                          bias=True, LayerNorm_type='BiasFree', ffn_expansion_factor=2.66,
                                          num_refinement_blocks=2), 'GLMHARestormer', 6, 3, 8),
    'mst_plus_plus': (MST_Plus_Plus, TINY_MSTPP, 'GLMHAMSTPlusPlus', 3, 8, 8),
    'mst_plus_plus-options': (MST_Plus_Plus, dict(TINY_MSTPP, in_channels=4, stage=2), 'GLMHAMSTPlusPlus', 4, 8, 8),
    'retinexformer': (RetinexFormer, TINY_RETINEX, 'GLMHARetinexFormer', 3, 3, 4),
    'retinexformer-options': (RetinexFormer, dict(TINY_RETINEX, stage=2, num_blocks=[1, 2, 1]), 'GLMHARetinexFormer',
                              3, 3, 4),
    'mst': (MST, TINY_MST, 'GLMHAMST', 29, 28, 1),
    'mst-options': (MST, dict(TINY_MST, stage=1, num_blocks=[1, 2]), 'GLMHAMST', 29, 28, 1),
}


def attention(net):
    return {name: m for name, m in net.named_modules() if isinstance(m, (ChannelAttention, SpectralMSA))}


def per_layer_glmha(cls, options, gamma=8, seed=0):
    """The plugin's CSA host with GLMHA swapped in, a different rank in (nearly) every layer, the first layer
    unguided and the others calibrated; random weights (the calibration made non-neutral)."""
    torch.manual_seed(seed)
    net = cls(**options).eval()
    ranks = {}
    for i, (path, m) in enumerate(attention(net).items()):
        per_head = m.dim // m.num_heads
        ranks[path] = m.num_heads * (1 + (3 * i + 1) % per_head) if per_head > 1 else m.dim
    swap_attention(net, rank=ranks, gamma=gamma)
    first, layer = next(iter(attention(net).items()))
    if isinstance(layer, ChannelAttention):
        new = GLMHA(layer.dim, layer.num_heads, bias=layer.qkv.bias is not None, rank=layer.rank, guidance='none')
    else:
        new = SpectralMSA(layer.dim, layer.num_heads, attention='glmha', rank=layer.rank, guidance='none',
                          mask_step=None if layer.mm is None else layer.mm.step, level=layer.level,
                          illumination_guided=layer.illumination_guided)
    parent, _, name = first.rpartition('.')
    setattr(net.get_submodule(parent), name, new)
    with torch.no_grad():
        for p in net.parameters():      # random weights everywhere, far from the warm start's neutral calibration
            p.add_(0.05 * torch.randn_like(p))
    return net.eval()


def inputs(net, channels, h=19, w=27, seed=1):
    """(the network's inputs, the descriptor's one tensor)."""
    gen = torch.Generator().manual_seed(seed)
    if isinstance(net, MST):
        x = torch.rand(2, net.dim, h, w, generator=gen)
        aperture = (torch.rand(2, 1, h, w, generator=gen) > 0.5).float()
        return (x, disperse(aperture.expand(-1, net.dim, -1, -1), 2)), torch.cat([x, aperture], 1)
    x = torch.rand(2, channels, h, w, generator=gen)
    return (x,), x


def save(net, path):
    torch.save({'params': net.state_dict()}, path)
    return str(path)


@pytest.fixture(scope='module')
def registered():
    """The GLMHA architectures in spandrel's main registry (what an application does once)."""
    glmha_plugin.register_spandrel()
    return spandrel.MAIN_REGISTRY


@pytest.mark.parametrize('host', sorted(HOSTS))
@torch.no_grad()
def test_per_layer_glmha_checkpoint_loads_through_spandrel_and_computes_the_same(host, registered, tmp_path):
    cls, options, arch_id, cin, cout, multiple = HOSTS[host]
    net = per_layer_glmha(cls, options, gamma=4 if host.endswith('options') else 8)
    layers = attention(net)
    assert len({m.rank for m in layers.values()}) > 2 and {m.guidance for m in layers.values()} == {'none',
                                                                                                  'calibration'}
    descriptor = spandrel.ModelLoader().load_from_file(save(net, tmp_path / 'net.pth'))
    assert descriptor.architecture.id == arch_id and type(descriptor.model).__name__ == arch_id
    assert descriptor.purpose == 'Restoration' and descriptor.scale == 1
    assert (descriptor.input_channels, descriptor.output_channels) == (cin, cout)
    assert descriptor.size_requirements.multiple_of == multiple
    assert 'GLMHA' in descriptor.tags and descriptor.supports_half and descriptor.supports_bfloat16
    got = attention(descriptor.model)
    assert {p: (m.rank, m.guidance, None if m.calib is None else m.calib.fc1.out_features) for p, m in got.items()} \
        == {p: (m.rank, m.guidance, None if m.calib is None else m.calib.fc1.out_features) for p, m in layers.items()}
    # the host is built with every layer's rank (the per-layer rank option), before any layer is rebuilt
    state = net.state_dict()
    built = next(h for h in gs.HOSTS if h.arch_id == arch_id).recover(state, gs.attention_layers(state)).model
    assert {p: m.rank for p, m in attention(built).items()} == {p: m.rank for p, m in layers.items()}

    args, image = inputs(net, cin)
    want = net(*args)
    assert (descriptor.model(*args) - want).abs().max() <= 1e-5
    # spandrel's call: its padding to the size requirement (19 x 27 needs some), the call_fn, the clamp to [0, 1]
    assert (descriptor(image) - want.clamp(0, 1)).abs().max() <= 1e-5


@pytest.mark.parametrize('host', ['restormer', 'mst_plus_plus', 'retinexformer', 'mst'])
@torch.no_grad()
def test_half_precision_flags_hold_on_cpu(host, registered, tmp_path):
    """supports_half / supports_bfloat16 are set from this measurement: finite, close to float32."""
    cls, options, _, cin, _, _ = HOSTS[host]
    net = per_layer_glmha(cls, options)
    descriptor = spandrel.ModelLoader().load_from_file(save(net, tmp_path / 'net.pth'))
    _, image = inputs(net, cin, 32, 32)
    want = descriptor(image)
    for dtype, tolerance in ((torch.float16, 1e-2), (torch.bfloat16, 3e-2)):
        descriptor.to(dtype)
        got = descriptor(image.to(dtype)).float()
        descriptor.to(torch.float32)
        assert got.isfinite().all(), dtype
        assert (got - want).abs().max() / want.abs().max() <= tolerance, dtype


@pytest.mark.parametrize('host', ['restormer', 'mst_plus_plus', 'retinexformer', 'mst'])
def test_csa_checkpoints_are_never_taken_as_glmha(host, registered, tmp_path):
    cls, options, _, _, _, _ = HOSTS[host]
    torch.manual_seed(0)
    csa = cls(**options)
    glmha = per_layer_glmha(cls, options)
    swap_twin = cls(**options)
    swap_attention(swap_twin, rank_ratio=1.0, guidance='none')      # CSA's keys, CSA's function
    for net in (csa, swap_twin):
        assert not any(arch.detect(net.state_dict()) for arch in gs._architectures())
    assert any(arch.detect(glmha.state_dict()) for arch in gs._architectures())
    path = save(csa, tmp_path / 'csa.pth')
    if host == 'retinexformer':       # spandrel's own architecture takes it, as before
        assert spandrel.ModelLoader().load_from_file(path).architecture.id == 'RetinexFormer'
    elif host == 'restormer' and registered.get('Restormer') is not None:
        assert spandrel.ModelLoader().load_from_file(path).architecture.id == 'Restormer'
    else:
        with pytest.raises(spandrel.UnsupportedModelError):
            spandrel.ModelLoader().load_from_file(path)


def plain_registry():
    """spandrel's main registry without the GLMHA architectures (other tests may have registered them)."""
    registry = spandrel.ArchRegistry()
    registry.add(*(a for a in spandrel.MAIN_REGISTRY if not isinstance(a.architecture, gs._architecture_class())))
    return registry


def test_glmha_is_detected_before_spandrels_own_architecture(tmp_path):
    path = save(per_layer_glmha(RetinexFormer, TINY_RETINEX), tmp_path / 'glmha.pth')
    plain = plain_registry()
    # spandrel alone: its RetinexFormer takes the GLMHA checkpoint and fails (what users saw)
    with pytest.raises(RuntimeError, match='size mismatch|Unexpected key'):
        spandrel.ModelLoader(registry=plain).load_from_file(path)
    mine = plain.copy()
    assert gs.register_spandrel(mine) == ['GLMHARestormer', 'GLMHARetinexFormer', 'GLMHAMSTPlusPlus', 'GLMHAMST']
    order = [a.architecture.id for a in mine.architectures('detection')]
    assert order.index('GLMHARetinexFormer') < order.index('RetinexFormer')
    assert spandrel.ModelLoader(registry=mine).load_from_file(path).architecture.id == 'GLMHARetinexFormer'


def test_glmha_restormer_before_spandrel_extra_arches_restormer_in_either_order(tmp_path):
    extra = pytest.importorskip('spandrel_extra_arches')
    path = save(per_layer_glmha(Restormer, TINY_RESTORMER_2), tmp_path / 'glmha.pth')
    for first_extra in (True, False):
        registry = plain_registry()
        steps = [lambda registry=registry: registry.add(*extra.EXTRA_REGISTRY, ignore_duplicates=True),
                 lambda registry=registry: gs.register_spandrel(registry)]
        for step in (steps if first_extra else steps[::-1]):
            step()
        order = [a.architecture.id for a in registry.architectures('detection')]
        assert order.index('GLMHARestormer') < order.index('Restormer')
        assert spandrel.ModelLoader(registry=registry).load_from_file(path).architecture.id == 'GLMHARestormer'


def test_register_twice_is_harmless_and_a_foreign_id_is_refused():
    registry = spandrel.MAIN_REGISTRY.copy()
    first = gs.register_spandrel(registry)
    ordered = [a.architecture.id for a in registry.architectures('detection')]
    assert gs.register_spandrel(registry) == first
    assert [a.architecture.id for a in registry.architectures('detection')] == ordered

    class Other(spandrel.Architecture):
        def load(self, state_dict):
            raise AssertionError

    taken = plain_registry()
    taken.add(spandrel.ArchSupport.from_architecture(Other(id='GLMHAMST', detect=lambda sd: False)))
    with pytest.raises(gs.SpandrelError, match="another architecture with id 'GLMHAMST'"):
        gs.register_spandrel(taken)
    assert 'GLMHARestormer' not in taken


def test_plugin_import_does_not_touch_spandrel():
    code = ('import sys, glmha_plugin; assert "spandrel" not in sys.modules, "imported"; import spandrel; '
            'ids = {a.architecture.id for a in spandrel.MAIN_REGISTRY}; assert not any(i.startswith("GLMHA") '
            'for i in ids), ids; print("ok")')
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO, env=clean_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith('ok'), proc.stderr[-2000:]


def test_missing_spandrel_is_a_one_line_install_hint(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, 'spandrel', None)        # what `import spandrel` does when it is not installed
    with pytest.raises(ImportError, match=r'^spandrel is not installed: pip install glmha-plugin\[spandrel\]$'):
        glmha_plugin.register_spandrel()
    with pytest.raises(gs.SpandrelMissing):
        gs.load_network(save(Restormer(**TINY_RESTORMER_2), tmp_path / 'r.pth'))
    assert swap_tool_main(['--input', str(tmp_path / 'r.pth'), '--output',
                                               str(tmp_path / 'o.pth')]) == 2
    err = capsys.readouterr().err.strip()
    assert '--network NAME' in err and 'pip install glmha-plugin[spandrel]' in err and len(err.splitlines()) == 1


def test_a_broken_glmha_checkpoint_is_a_clear_error(registered, tmp_path):
    state = per_layer_glmha(Restormer, TINY_RESTORMER_2).state_dict()
    del state['latent.1.attn.calib.fc2.weight']
    with pytest.raises(gs.SpandrelError, match=r'GLMHARestormer: the checkpoint does not fit .* latent\.1\.attn\.'
                                               r'calib\.fc2\.weight'):
        spandrel.ModelLoader().load_from_file(save_state(state, tmp_path / 'broken.pth'))


def save_state(state, path):
    torch.save({'params': state}, path)
    return str(path)


def test_a_swapped_foreign_mst_layer_is_named(registered, tmp_path):
    """MST layers swapped inside another MST implementation keep a C-channel mask branch: not the plugin's GLMHAMST."""
    state = MST(**TINY_MST).state_dict()       # bottleneck: 112 channels, 4 heads
    for name in ('to_q', 'to_v'):
        key = f'bottleneck.blocks.0.0.{name}.weight'
        state[key] = state[key][:56]
    with pytest.raises(gs.SpandrelError, match=r'bottleneck\.blocks\.0\.0 has rank .* mask branch'):
        spandrel.ModelLoader().load_from_file(save_state(state, tmp_path / 'foreign.pth'))


# ------------------------------------------------------------------------------ spandrel as the swap tool's source

@pytest.fixture
def swap_tool(capsys):
    """``glmha swap ARGV`` in this process: (exit code, stdout, stderr)."""
    from glmha_plugin.swap import tool

    def run(*argv):
        capsys.readouterr()
        rc = tool.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return rc, out, err
    return run


@torch.no_grad()
def test_swap_tool_takes_a_retinexformer_checkpoint_spandrel_recognises(registered, tmp_path, swap_tool,
                                                                        monkeypatch):
    """spandrel's own RetinexFormer (spandrel core) -> the swap tool, --network omitted -> a GLMHA checkpoint that
    loads back through spandrel as GLMHARetinexFormer with the swapped network's output."""
    torch.manual_seed(0)
    source = save(RetinexFormer(**TINY_RETINEX), tmp_path / 'csa.pth')
    out = tmp_path / 'glmha.pth'
    import glmha_plugin.swap.tool
    with monkeypatch.context() as m:    # a result spandrel would load as another function is never written
        m.setattr(glmha_plugin.swap.tool, 'RELOAD_TOLERANCE', -1.0)
        rc, _, stderr = swap_tool('--input', source, '--output', out)
        assert rc == 2 and 'computes another function' in stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ['csa.pth']
    rc, stdout, stderr = swap_tool('--input', source, '--output', out, '--rank',
                                   '{"body.0.denoiser.encoder_layers.0": 4, "body.0.denoiser.bottleneck": 8}',
                                   '--full-rank-check')
    assert rc == 0, stderr[-3000:]
    assert 'spandrel: RetinexFormer (RetinexFormer) from' in stdout
    assert 'full-rank check: relative max difference' in stdout and '(OK' in stdout
    assert 'spandrel loads the result as GLMHARetinexFormer after glmha_plugin.register_spandrel(): same output' \
        in stdout
    csa, _ = gs.load_network(source)
    swapped = csa
    swap_attention(swapped, rank={'body.0.denoiser.encoder_layers.0': 4, 'body.0.denoiser.bottleneck': 8})
    descriptor = spandrel.ModelLoader().load_from_file(str(out))
    assert descriptor.architecture.id == 'GLMHARetinexFormer'
    assert sorted(m.rank for m in attention(descriptor.model).values()) == [4, 4, 8, 8, 8]
    x = torch.rand(1, 3, 24, 32)
    assert (descriptor.model(x) - swapped.eval()(x)).abs().max() <= 1e-5


def test_swap_tool_takes_a_restormer_checkpoint_with_spandrel_extra_arches(tmp_path, swap_tool):
    pytest.importorskip('spandrel_extra_arches')
    torch.manual_seed(0)
    source = save(Restormer(**TINY_RESTORMER_2), tmp_path / 'csa.pth')
    rc, stdout, stderr = swap_tool('--network', 'spandrel', '--input', source, '--output', tmp_path / 'glmha.pth',
                                   '--rank-ratio', '{"latent": 0.25}')
    assert rc == 0, stderr[-3000:]
    assert 'spandrel: Restormer (Restormer)' in stdout and 'spandrel loads the result as GLMHARestormer' in stdout


def test_swap_tool_spandrel_errors(tmp_path, swap_tool):
    glmha = save(per_layer_glmha(RetinexFormer, TINY_RETINEX), tmp_path / 'glmha.pth')
    rc, _, stderr = swap_tool('--input', glmha, '--output', tmp_path / 'o.pth')
    assert rc == 2 and 'already a GLMHA network (GLMHARetinexFormer)' in stderr
    unknown = save_state({'foo.weight': torch.zeros(3, 3)}, tmp_path / 'unknown.pth')
    rc, _, stderr = swap_tool('--network', 'spandrel', '--input', unknown, '--output', tmp_path / 'o.pth')
    assert rc == 2 and 'spandrel recognises no architecture in' in stderr
    rc, _, stderr = swap_tool('--network', 'spandrel', '--options', '{"dim": 8}', '--input', glmha, '--output',
                              tmp_path / 'o.pth')
    assert rc == 2 and '--options does not apply to --network spandrel' in stderr
    assert not (tmp_path / 'o.pth').exists()


def test_load_network_entries(tmp_path):
    torch.manual_seed(0)
    a, b = RetinexFormer(**TINY_RETINEX), RetinexFormer(**TINY_RETINEX)
    path = tmp_path / 'both.pth'
    torch.save({'params': a.state_dict(), 'params_ema': b.state_dict()}, path)
    net, info = gs.load_network(str(path))
    assert info.entry == 'params_ema' and info.arch_id == 'RetinexFormer' and not info.glmha
    key = 'body.0.estimator.conv1.weight'
    assert torch.equal(net.state_dict()[key], b.state_dict()[key])
    net, info = gs.load_network(str(path), param_key='params')
    assert info.entry == 'params'
    assert torch.equal(net.state_dict()[key], a.state_dict()[key])
    with pytest.raises(gs.SpandrelError, match="has no entry 'state_dict'"):
        gs.load_network(str(path), param_key='state_dict')


@pytest.mark.parametrize('arch', ['KBNet_l', 'OmniSR'])
def test_which_other_spandrel_architectures_the_swap_tool_takes(arch, tmp_path, swap_tool):
    """KBNet_l's attention is MDTA: swapped (spandrel has no GLMHA KBNet, the note says how to load it);
    OmniSR's channel attention works in 8 x 8 windows: refused as a look-alike, never swapped silently."""
    module = __import__(f'spandrel.architectures.{arch.split("_")[0]}', fromlist=[arch])
    torch.manual_seed(0)
    if arch == 'KBNet_l':
        net = module.KBNet_l(dim=24, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1)
    else:
        net = module.OmniSR(num_feat=16, up_scale=1)
    source = save(net, tmp_path / 'csa.pth')
    rc, stdout, stderr = swap_tool('--input', source, '--output', tmp_path / 'glmha.pth')
    if arch == 'KBNet_l':
        assert rc == 0, stderr[-3000:]
        assert 'attention layer(s) swapped to GLMHA' in stdout and 'note: the result does not load through spandrel' \
            in stdout
    else:
        assert rc == 2 and 'has the structure of MDTA (Channel_Attention) but its forward fails' in stderr
        assert not (tmp_path / 'glmha.pth').exists()

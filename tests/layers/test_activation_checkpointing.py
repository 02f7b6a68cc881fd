"""``use_checkpoint``: every registered host accepts it, recomputes its blocks, and gives the same gradients."""
import pytest
import torch
from basicsr.utils.registry import ARCH_REGISTRY

import glmha_plugin  # noqa: F401  (registers the architectures)
from glmha_plugin.data.cassi_simulation import simulate
from glmha_plugin.layers import CSA, GLMHA, SpectralMSA
from glmha_plugin.layers.checkpointing import CheckpointedSequential, run_checkpointed

from helpers.common import TINY_MST, TINY_RESTORMER, TINY_RETINEX


def _image(channels):
    return lambda: (torch.rand(2, channels, 16, 16),)


def _cassi():
    return simulate(torch.rand(2, 28, 16, 16), (torch.rand(1, 1, 16, 16) > 0.5).float())


TINY_MSTPP = dict(in_channels=3, out_channels=8, n_feat=8, stage=1)
# Every architecture the plugin registers; a host added later must be added here (the first test checks).
HOSTS = {
    'Restormer': (TINY_RESTORMER, _image(3)),
    'GLMHARestormer': (TINY_RESTORMER, _image(3)),
    'MST': (TINY_MST, _cassi),
    'GLMHAMST': (TINY_MST, _cassi),
    'MST_Plus_Plus': (TINY_MSTPP, _image(3)),
    'GLMHAMSTPlusPlus': (TINY_MSTPP, _image(3)),
    'RetinexFormer': (TINY_RETINEX, _image(3)),
    'GLMHARetinexFormer': (TINY_RETINEX, _image(3)),
    'GLMHASwap': (dict(base=dict(type='Restormer', **TINY_RESTORMER), rank_ratio=0.5), _image(3)),
}
ATTENTION = (CSA, GLMHA, SpectralMSA)


def test_every_registered_host_is_covered():
    ours = {name for name, cls in ARCH_REGISTRY._obj_map.items() if cls.__module__.startswith('glmha_plugin.')}
    assert ours == set(HOSTS), 'a new host needs the use_checkpoint option and an entry in HOSTS'


def _attention_calls(net):
    calls = []
    for m in net.modules():
        if isinstance(m, ATTENTION):
            m.register_forward_hook(lambda *_: calls.append(1))
    return calls


@pytest.mark.parametrize('name', list(HOSTS))
def test_same_outputs_and_gradients_and_blocks_are_recomputed(name):
    kwargs, make_inputs = HOSTS[name]
    cls = ARCH_REGISTRY.get(name)
    torch.manual_seed(0)
    plain = cls(**kwargs)
    ckpt = cls(**kwargs, use_checkpoint=True)
    ckpt.load_state_dict(plain.state_dict())
    assert list(ckpt.state_dict()) == list(plain.state_dict())   # the option does not change the keys
    torch.manual_seed(1)
    inputs = make_inputs()
    calls = {}
    grads = {}
    for label, net in (('plain', plain), ('ckpt', ckpt)):
        calls[label] = _attention_calls(net)
        x = [t.clone().requires_grad_(i == 0) for i, t in enumerate(inputs)]
        out = net(*x)
        (out.square().mean() + out.mean()).backward()
        grads[label] = {'input': x[0].grad, **{k: p.grad for k, p in net.named_parameters()}}
        grads[label]['output'] = out.detach()
    n_layers = sum(isinstance(m, ATTENTION) for m in plain.modules())
    assert len(calls['plain']) == n_layers
    assert len(calls['ckpt']) == 2 * n_layers, 'the blocks were not recomputed in the backward pass'
    for key, g in grads['plain'].items():
        assert g is not None, key
        torch.testing.assert_close(grads['ckpt'][key], g, rtol=1e-5, atol=1e-7, msg=key)


@pytest.mark.parametrize('name', ['GLMHARestormer', 'GLMHAMSTPlusPlus'])
def test_inactive_without_gradients(name):
    kwargs, make_inputs = HOSTS[name]
    net = ARCH_REGISTRY.get(name)(**kwargs, use_checkpoint=True)
    calls = _attention_calls(net)
    with torch.no_grad():
        net(*make_inputs())
    assert len(calls) == sum(isinstance(m, ATTENTION) for m in net.modules())


def test_helper_runs_plainly_when_disabled_or_without_grad(monkeypatch):
    used = []
    import glmha_plugin.layers.checkpointing as mod
    monkeypatch.setattr(mod, 'checkpoint', lambda fn, *a, **kw: used.append(kw) or fn(*a))
    x = torch.ones(2, requires_grad=True)
    assert torch.equal(run_checkpointed(torch.sin, x, enabled=False), torch.sin(x)) and not used
    with torch.no_grad():
        run_checkpointed(torch.sin, x, enabled=True)
    assert not used
    run_checkpointed(torch.sin, x, enabled=True)
    assert used == [{'use_reentrant': False}]
    seq = CheckpointedSequential(torch.nn.Identity(), torch.nn.Identity(), use_checkpoint=True)
    seq(x)
    assert len(used) == 3 and 'use_checkpoint=True' in repr(seq)


def test_swap_builder_needs_a_base_with_the_option():
    with pytest.raises(ValueError, match='use_checkpoint is an option of the base network, and EDSR has none'):
        ARCH_REGISTRY.get('GLMHASwap')(base={'type': 'EDSR'}, use_checkpoint=True)  # basicsr's own

"""Numerics: float64 gradcheck of the layers, bf16 autocast on CPU, finite attention normalisation."""
import pytest
import torch

from glmha_plugin.layers import CSA, GLMHA, SpectralMSA

from helpers.archs import ARCHS


def test_table_covers_every_registered_architecture():
    import glmha_plugin.archs as archs
    assert set(ARCHS) == set(archs.__all__) - {'RESTORMER_STAGES'}


@pytest.mark.parametrize('layer,shape', [
    (lambda: CSA(8, 2, bias=True), (2, 8, 3, 4)),
    (lambda: GLMHA(8, 2, bias=True, rank=4), (2, 8, 3, 4)),
    (lambda: GLMHA(8, 2, rank=4, guidance='none'), (2, 8, 3, 4)),
    (lambda: SpectralMSA(8, 2), (2, 3, 4, 8)),
    (lambda: SpectralMSA(8, 2, attention='glmha', rank=4), (2, 3, 4, 8)),
], ids=['csa', 'glmha', 'glmha_unguided', 'msa_csa', 'msa_glmha'])
def test_gradcheck_float64(layer, shape):
    torch.manual_seed(0)
    m = layer().double()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name in ('temperature', 'rescale'):
                p.uniform_(0.5, 2.0)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(m, (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize('name', sorted(ARCHS))
def test_bf16_autocast_forward_backward_finite(name):
    torch.manual_seed(0)
    build, make_input = ARCHS[name]
    net = build()
    x = make_input()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = net(x)
        loss = y.float().square().mean()
    loss.backward()
    assert torch.isfinite(y.float()).all()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize('layer', [CSA(16, 2), GLMHA(16, 2), GLMHA(16, 2, guidance='none')])
def test_zero_and_constant_inputs_stay_finite(layer):
    for x in (torch.zeros(1, 16, 5, 5), torch.full((1, 16, 5, 5), 1e4)):
        y = layer(x)
        assert torch.isfinite(y).all()
        y.sum().backward()
        assert all(torch.isfinite(p.grad).all() for p in layer.parameters() if p.grad is not None)
        layer.zero_grad()

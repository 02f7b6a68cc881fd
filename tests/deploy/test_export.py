"""Deployment: torch.jit.trace, torch.export and torch.compile reproduce eager outputs on CPU.

torch.compile runs with ``fullgraph=True`` (no graph breaks) for every architecture through the
``aot_eager`` backend, and with the default ``inductor`` backend (C++ code generation) for the two
attention layers. Inductor on a whole architecture costs 45-65 s each on the 2-core CI machine;
``GLMHA_TEST_INDUCTOR_ARCHS=1`` adds those cases (the six of the first three hosts matched eager within 4e-7 when run).
"""
import os

import pytest
import torch

from glmha_plugin.layers import GLMHA, SpectralMSA

from helpers.archs import ARCHS

INDUCTOR_ARCHS = os.environ.get('GLMHA_TEST_INDUCTOR_ARCHS') == '1'


def _eval(name):
    torch.manual_seed(0)
    build, make_input = ARCHS[name]
    return build().eval(), make_input()


@pytest.mark.parametrize('name', sorted(ARCHS))
def test_trace_and_export(name):
    net, x = _eval(name)
    with torch.no_grad():
        ref = net(x)
        traced = torch.jit.trace(net, x, check_trace=False)
        torch.testing.assert_close(traced(x), ref)
        exported = torch.export.export(net, (x,))
        torch.testing.assert_close(exported.module()(x), ref)


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(ARCHS))
def test_compile_whole_graph(name):
    net, x = _eval(name)
    torch._dynamo.reset()
    with torch.no_grad():
        ref = net(x)
        out = torch.compile(net, backend='inductor' if INDUCTOR_ARCHS else 'aot_eager', fullgraph=True)(x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize('layer,shape', [(lambda: GLMHA(16, 2), (2, 16, 9, 11)),
                                         (lambda: SpectralMSA(16, 2, attention='glmha'), (2, 9, 11, 16))],
                         ids=['glmha', 'spectral_msa_glmha'])
def test_compile_layer_inductor(layer, shape):
    torch.manual_seed(0)
    m = layer().eval()
    x = torch.randn(*shape)
    torch._dynamo.reset()
    with torch.no_grad():
        ref = m(x)
        torch.testing.assert_close(torch.compile(m, fullgraph=True)(x), ref, rtol=1e-4, atol=1e-5)

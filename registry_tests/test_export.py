"""Deployment: torch.jit.trace, torch.export and torch.compile reproduce eager outputs on CPU."""
import pytest
import torch

from test_numerics import ARCHS
from glmha_plugin.layers import GLMHA


@pytest.mark.parametrize('name', sorted(ARCHS))
def test_trace_and_export(name):
    torch.manual_seed(0)
    build, make_input = ARCHS[name]
    net, x = build().eval(), make_input()
    with torch.no_grad():
        ref = net(x)
        traced = torch.jit.trace(net, x, check_trace=False)
        torch.testing.assert_close(traced(x), ref)
        exported = torch.export.export(net, (x,))
        torch.testing.assert_close(exported.module()(x), ref)


@pytest.mark.slow
def test_compile_glmha_layer():
    torch.manual_seed(0)
    m = GLMHA(16, 2).eval()
    x = torch.randn(2, 16, 9, 11)
    with torch.no_grad():
        ref = m(x)
        torch.testing.assert_close(torch.compile(m)(x), ref, rtol=1e-4, atol=1e-5)

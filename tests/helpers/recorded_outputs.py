"""Closed-form weights and inputs of the recorded-upstream-output fixtures, and the comparison with them.

``fixtures/mst_upstream_outputs.json`` and ``fixtures/restormer_upstream_outputs.json``
hold outputs of the official MST, MST++ and Restormer classes, run once in a
throw-away directory with these weights and inputs (their ``weights``,
``inputs`` and ``sampling`` entries describe the same formulas in words).
No random generator is involved, so the numbers do not depend on torch's
generator streams.
"""
import math

import pytest
import torch

MST_SCALES = ('rescale', 'norm.weight')              # MST / MST++: per-head scales and LayerNorm weights
RESTORMER_SCALES = ('temperature', '.body.weight')  # Restormer: per-head temperatures and LayerNorm weights


def fill(shape, seed):
    t = torch.arange(math.prod(shape), dtype=torch.float64)
    return (torch.sin(0.37 * t + 1.3 * seed) * torch.cos(0.011 * t + 0.7 * seed)).reshape(shape)


def formula_weights(model, scales=MST_SCALES):
    """Entry i of ``model.state_dict()`` (in order) from ``fill(shape, i)``: keys ending in one of ``scales``
    get 1 + 0.2 base, other 1-D tensors 0.1 base, the rest base / sqrt(fan_in). Returns the model in eval mode."""
    new = {}
    for i, (k, v) in enumerate(model.state_dict().items()):
        base = fill(v.shape, i)
        if k.endswith(scales):
            val = 1 + 0.2 * base
        elif v.dim() == 1:
            val = 0.1 * base
        else:
            val = base / math.sqrt(v[0].numel())
        new[k] = val.to(v.dtype)
    model.load_state_dict(new)
    return model.eval()


def image(b, c, h, w, seed):
    bb, cc, hh, ww = torch.meshgrid(*(torch.arange(n, dtype=torch.float64) for n in (b, c, h, w)), indexing='ij')
    return (0.5 + 0.4 * torch.sin(0.31 * hh + 0.17 * ww + 0.5 * cc + 1.1 * bb + seed)).float()


def sample(y) -> dict:
    """What a fixture records of an output: shape, values at ``range(0, numel, numel // 600)``, sum, abs_sum."""
    flat = y.detach().flatten().double()
    index = list(range(0, flat.numel(), max(1, flat.numel() // 600)))
    return {'shape': list(y.shape), 'sum': flat.sum().item(), 'abs_sum': flat.abs().sum().item(), 'index': index,
            'values': flat[index].tolist()}


def assert_matches(y, ref):
    flat = y.detach().flatten().double()
    assert list(y.shape) == ref['shape']
    values = torch.tensor(ref['values'], dtype=torch.float64)
    torch.testing.assert_close(flat[ref['index']], values, rtol=1e-4, atol=1e-4)
    assert flat.sum().item() == pytest.approx(ref['sum'], rel=1e-4, abs=1e-2)
    assert flat.abs().sum().item() == pytest.approx(ref['abs_sum'], rel=1e-5)

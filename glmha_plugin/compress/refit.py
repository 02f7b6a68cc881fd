"""Least-squares refit of the swapped layers' output projections on the user's images (no targets).

After the SVD warm start every swapped attention layer computes its attention with fewer key/value channels,
and its output projection (``project_out`` of the MDTA-style layers, ``proj`` of the MS-MSA ones) still
expects the full-rank attention output.  The projection is linear in that output, so the weights that best
reproduce the teacher's layer output are a least-squares solution: on crops of the images, layer by layer in
the order the network runs them, the student's attention output ``Z`` (before the projection, on the
student's own input, so that the errors of the layers before are compensated) is regressed onto the teacher's
output of the same layer ``Y`` (minus what the layer adds besides the projection, e.g. MS-MSA's positional
branch):

    W = argmin ||W Z + b - Y||^2 + lambda ||W - W_0||^2,    lambda = ridge * mean(diag(Z^T Z))

(a ridge towards the warm-start weights ``W_0``).  One pass of the student and the teacher over the crops per
layer; no gradients, no targets.  ``glmha compress --refit`` runs it between the warm start and the
distillation (docs/compress.md).
"""
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from ..layers import ChannelAttention, SpectralMSA


def projection(layer: nn.Module) -> nn.Module:
    """The output projection of a swapped attention layer (a 1x1 ``Conv2d`` or a ``Linear``, C -> C)."""
    if isinstance(layer, ChannelAttention):
        return layer.project_out
    if isinstance(layer, SpectralMSA):
        return layer.proj
    raise TypeError(f'{type(layer).__name__} is not an attention layer of the plugin (CSA / GLMHA / MS-MSA)')


def _channels_last(t: torch.Tensor, proj: nn.Module) -> torch.Tensor:
    """N x C samples of a projection's input or output (channels at dim 1 for a Conv2d, last for a Linear)."""
    if isinstance(proj, nn.Conv2d):
        t = t.movedim(1, -1)
    return t.reshape(-1, t.shape[-1])


@torch.no_grad()
def _with_weights(layer: nn.Module, proj: nn.Module, weight: torch.Tensor, args, kwargs) -> torch.Tensor:
    """The layer's output on ``args`` with the projection's weight set to ``weight`` and its bias to zero."""
    saved_w = proj.weight.detach().clone()
    saved_b = proj.bias.detach().clone() if proj.bias is not None else None
    try:
        proj.weight.copy_(weight.reshape(proj.weight.shape))
        if proj.bias is not None:
            proj.bias.zero_()
        return layer(*args, **kwargs).float()
    finally:
        proj.weight.copy_(saved_w)
        if saved_b is not None:
            proj.bias.copy_(saved_b)


def forward_order(net: nn.Module, paths: Sequence[str], probe: torch.Tensor) -> List[str]:
    """``paths`` in the order ``net`` first calls them on ``probe``."""
    modules = dict(net.named_modules())
    order: List[str] = []
    hooks = [modules[p].register_forward_pre_hook(lambda m, a, p=p: order.append(p) if p not in order else None)
             for p in paths]
    try:
        with torch.no_grad():
            net(probe)
    finally:
        for h in hooks:
            h.remove()
    return order + [p for p in paths if p not in order]


@torch.no_grad()
def refit_projections(student: nn.Module, teacher: nn.Module, paths: Sequence[str], crops: torch.Tensor,
                      ridge: float = 1e-3, bar=None) -> List[Dict[str, float]]:
    """Refit the output projection of each layer in ``paths`` (module paths present in both networks) in
    place, in forward order (module docstring); returns per layer ``{'path', 'mse_before', 'mse_after'}`` (the
    layer-output error against the teacher's on ``crops``, before and after).  ``student`` and ``teacher`` are
    left in eval mode."""
    student.eval()
    teacher.eval()
    s_modules, t_modules = dict(student.named_modules()), dict(teacher.named_modules())
    missing = [p for p in paths if p not in s_modules or p not in t_modules]
    if missing:
        raise ValueError(f'refit: {missing[:3]} are not module paths of both the student and the teacher')
    results = []
    for path in forward_order(student, paths, crops[:1]):
        layer, proj = s_modules[path], projection(s_modules[path])
        seen: Dict[str, object] = {}

        def grab_input(m, args, kwargs, seen=seen):
            seen.setdefault('args', (args, kwargs))

        def grab_output(m, args, output, seen=seen):
            seen.setdefault('target', output)

        hooks = [layer.register_forward_pre_hook(grab_input, with_kwargs=True),
                 t_modules[path].register_forward_hook(grab_output)]
        try:
            student(crops)
            teacher(crops)
        finally:
            for h in hooks:
                h.remove()
        args, kwargs = seen['args']
        weight = proj.weight.detach().flatten(1)
        rest = _with_weights(layer, proj, torch.zeros_like(weight), args, kwargs)
        z = _with_weights(layer, proj, torch.eye(weight.shape[0], dtype=weight.dtype, device=weight.device),
                          args, kwargs) - rest
        Z = _channels_last(z, proj).double()
        Y = _channels_last(seen['target'].float() - rest, proj).double()
        W0 = weight.double()
        if proj.bias is not None:
            Z = torch.cat([Z, torch.ones_like(Z[:, :1])], dim=1)
            W0 = torch.cat([W0, proj.bias.detach().double()[:, None]], dim=1)
        gram = Z.T @ Z
        lam = ridge * gram.diagonal().mean().clamp_min(1e-12)
        eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
        W = torch.linalg.solve(gram + lam * eye, Z.T @ Y + lam * W0.T).T
        before = float(((Z @ W0.T - Y) ** 2).mean())
        after = float(((Z @ W.T - Y) ** 2).mean())
        if proj.bias is not None:
            proj.bias.copy_(W[:, -1].to(proj.bias.dtype))
            W = W[:, :-1]
        proj.weight.copy_(W.reshape(proj.weight.shape).to(proj.weight.dtype))
        results.append({'path': path, 'mse_before': before, 'mse_after': after})
        if bar is not None:
            bar.update(1)
    return results


def refit_summary(results: List[dict], seconds: Optional[float] = None) -> str:
    drop = [r['mse_after'] / r['mse_before'] for r in results if r['mse_before'] > 0]
    mean = sum(drop) / len(drop) if drop else 1.0
    took = f' in {seconds:.1f} s' if seconds is not None else ''
    return (f'refit the output projections of {len(results)} layer(s){took}: their output error against the '
            f'teacher\'s fell to {mean:.2f} of the warm start\'s (mean over the layers)')

"""Structure matching and the probe: is a foreign module MDTA or MS-MSA, by its children, parameters, signature
and, once, by what it computes on a small random input against the plugin's CSA holding its weights."""
import copy
import inspect
from typing import Callable, List, Optional, Tuple

import torch
from torch import nn

from ..layers import CSA

# The probe is square (MST's upstream mask branch crops to the row count) and its side a prime: a windowed
# channel attention (e.g. OmniSR's, 8 x 8 windows) equals global attention on a probe of one window.
PROBE_SIDE = 11
PROBE_TOLERANCE = 1e-6
MDTA_CHILDREN = frozenset({'qkv', 'qkv_dwconv', 'project_out'})
MSMSA_CHILDREN = frozenset({'to_q', 'to_k', 'to_v', 'proj', 'pos_emb'})
MASK_CHILDREN = frozenset({'conv1', 'conv2', 'depth_conv'})

Builder = Callable[..., nn.Module]   # builder(**attention options) -> layer


def _conv(m, cin, cout, k, groups, padding, where) -> List[str]:
    if not isinstance(m, nn.Conv2d):
        return [f'{where} is a {type(m).__name__} (expected Conv2d)']
    got = (m.in_channels, m.out_channels, m.kernel_size, m.groups, m.padding, m.stride, m.dilation)
    want = (cin, cout, (k, k), groups, (padding, padding), (1, 1), (1, 1))
    if got != want or m.padding_mode != 'zeros':
        return [f'{where} is Conv2d({m.in_channels}, {m.out_channels}, kernel {m.kernel_size}, groups {m.groups}, '
                f'padding {m.padding}, stride {m.stride}) (expected {cin} -> {cout}, kernel {k}, groups {groups}, '
                f'padding {padding}, stride 1)']
    return []


def _linear(m, cin, cout, bias, where) -> List[str]:
    if not isinstance(m, nn.Linear):
        return [f'{where} is a {type(m).__name__} (expected Linear)']
    if (m.in_features, m.out_features, m.bias is not None) != (cin, cout, bias):
        return [f'{where} is Linear({m.in_features}, {m.out_features}, bias={m.bias is not None}) (expected '
                f'Linear({cin}, {cout}, bias={bias}))']
    return []


def _extras(m: nn.Module, children, params) -> List[str]:
    out = []
    extra_children = sorted(set(dict(m.named_children())) - set(children))
    missing_children = sorted(set(children) - set(dict(m.named_children())))
    extra_params = sorted(set(dict(m.named_parameters(recurse=False))) - set(params))
    buffers = sorted(dict(m.named_buffers(recurse=False)))
    if extra_children:
        out.append(f'extra children {extra_children}')
    if missing_children:
        out.append(f'no {missing_children}')
    if extra_params:
        out.append(f'extra parameters {extra_params}')
    if buffers:
        out.append(f'buffers {buffers}')
    return out


def forward_params(m: nn.Module) -> List[inspect.Parameter]:
    try:
        return list(inspect.signature(m.forward).parameters.values())
    except (TypeError, ValueError):
        return []


def _heads(param, where) -> Tuple[Optional[int], List[str]]:
    if not isinstance(param, nn.Parameter) or param.dim() != 3 or tuple(param.shape[1:]) != (1, 1):
        shape = tuple(param.shape) if isinstance(param, torch.Tensor) else None
        return None, [f'{where} has shape {shape} (expected heads x 1 x 1)']
    return param.shape[0], []


def _core(m: nn.Module, children, param: str, first: str, first_type) -> Tuple[List[str], Optional[int], int]:
    """(differences, C, heads): extra or missing children and parameters, C from ``first``, heads from ``param``.

    C is None when the rest cannot be checked (the children or parameters already differ).
    """
    diffs = _extras(m, children, {param})
    if param not in dict(m.named_parameters(recurse=False)):
        diffs.append(f'no {param} parameter')
    layer = getattr(m, first, None)
    if diffs or not isinstance(layer, first_type):
        return diffs or [f'{first} is a {type(layer).__name__} (expected {first_type.__name__})'], None, 0
    heads, bad = _heads(getattr(m, param), param)
    return bad, layer.in_channels if first_type is nn.Conv2d else layer.in_features, heads


def mdta_differences(m: nn.Module) -> Tuple[Optional[Tuple[int, int, bool]], List[str]]:
    """((C, heads, bias), []) when ``m`` is MDTA by structure, else (None, what differs)."""
    diffs, c, heads = _core(m, MDTA_CHILDREN, 'temperature', 'qkv', nn.Conv2d)
    if c is None:
        return None, diffs
    diffs += _conv(m.qkv, c, 3 * c, 1, 1, 0, 'qkv')
    diffs += _conv(m.qkv_dwconv, 3 * c, 3 * c, 3, 3 * c, 1, 'qkv_dwconv')
    diffs += _conv(m.project_out, c, c, 1, 1, 0, 'project_out')
    biases = {x.bias is not None for x in (m.qkv, m.qkv_dwconv, m.project_out) if isinstance(x, nn.Conv2d)}
    if len(biases) > 1:
        diffs.append('qkv, qkv_dwconv and project_out disagree on biases')
    if heads and c % heads:
        diffs.append(f'{c} channels are not divisible by {heads} heads')
    params = forward_params(m)
    if len(params) != 1 or params[0].kind not in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        diffs.append(f'forward takes ({", ".join(p.name for p in params)}) (expected one tensor)')
    return (None, diffs) if diffs else ((c, heads, biases.pop()), [])


def msmsa_differences(m: nn.Module) -> Tuple[Optional[Tuple[int, int, str]], List[str]]:
    """((C, heads, convention), []) when ``m`` is an MS-MSA by structure, else (None, what differs).

    convention: ``'plain'`` (forward(x), or an unused optional second argument), ``'mask'`` (forward(x,
    mask=None) with the ``mm`` branch) or ``'guide'`` (forward(x, guide): Retinexformer's IG-MSA).
    """
    children = dict(m.named_children())
    has_mm = 'mm' in children
    diffs, c, heads = _core(m, MSMSA_CHILDREN | ({'mm'} if has_mm else set()), 'rescale', 'to_k', nn.Linear)
    if c is None:
        return None, diffs
    for name in ('to_q', 'to_k', 'to_v'):
        diffs += _linear(getattr(m, name), c, c, False, name)
    diffs += _linear(m.proj, c, c, True, 'proj')
    pos = m.pos_emb
    if not isinstance(pos, nn.Sequential) or len(pos) != 3 or type(pos[1]).__name__ != 'GELU':
        diffs.append('pos_emb is not Sequential(depth-wise 3x3 conv, GELU, depth-wise 3x3 conv)')
    else:
        for i in (0, 2):
            diffs += _conv(pos[i], c, c, 3, c, 1, f'pos_emb.{i}')
            if isinstance(pos[i], nn.Conv2d) and pos[i].bias is not None:
                diffs.append(f'pos_emb.{i} has a bias (expected none)')
    if has_mm:
        mm = children['mm']
        diffs += [f'mm: {d}' for d in _extras(mm, MASK_CHILDREN, set())]
        if not _extras(mm, MASK_CHILDREN, set()):
            diffs += _conv(mm.conv1, c, c, 1, 1, 0, 'mm.conv1') + _conv(mm.conv2, c, c, 1, 1, 0, 'mm.conv2')
            diffs += _conv(mm.depth_conv, c, c, 5, c, 2, 'mm.depth_conv')
            diffs += [f'mm.{n} has no bias' for n in sorted(MASK_CHILDREN)
                      if isinstance(getattr(mm, n), nn.Conv2d) and getattr(mm, n).bias is None]
    if heads and c % heads:
        diffs.append(f'{c} channels are not divisible by {heads} heads')
    params = forward_params(m)
    required = [p for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    names = ', '.join(p.name for p in params)
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.KEYWORD_ONLY) for p in params) or not 1 <= len(params) <= 2:
        diffs.append(f'forward takes ({names}) (expected (x), (x, mask=None) or (x, guide))')
        convention = None
    elif has_mm:
        convention = 'mask'
        if len(params) != 2 or len(required) != 1:
            diffs.append(f'forward takes ({names}) (expected (x, mask=None) with the mask branch)')
    else:   # (x) or (x, optional=None): called with x alone; (x, guide): the guide multiplies the values
        convention = 'guide' if len(required) == 2 else 'plain'
        if not required:
            diffs.append(f'forward takes ({names}) (expected (x) or (x, guide) without a mask branch)')
    return (None, diffs) if diffs else ((c, heads, convention), [])


def looks_like_mdta(m: nn.Module) -> bool:
    names = set(dict(m.named_children())) | set(dict(m.named_parameters(recurse=False)))
    return {'qkv', 'project_out', 'temperature'} <= names


def looks_like_msmsa(m: nn.Module) -> bool:
    names = set(dict(m.named_children())) | set(dict(m.named_parameters(recurse=False)))
    return {'to_q', 'to_k', 'to_v', 'rescale'} <= names


def probe_inputs(kind: str, convention: str, c: int):
    gen = torch.Generator().manual_seed(0)
    shape = (1, c, PROBE_SIDE, PROBE_SIDE) if kind == 'MDTA' else (1, PROBE_SIDE, PROBE_SIDE, c)
    x = torch.randn(*shape, generator=gen, dtype=torch.float64)
    if convention in ('mask', 'guide'):
        return x, torch.rand(1, PROBE_SIDE, PROBE_SIDE, c, generator=gen, dtype=torch.float64)
    return (x,)


def probe_difference(original: nn.Module, replica: nn.Module, inputs) -> Optional[str]:
    """None when ``replica`` computes ``original``'s function on ``inputs``, else what went wrong."""
    probe = copy.deepcopy(original).double().cpu().eval()
    for hooks in (probe._forward_hooks, probe._forward_pre_hooks):
        hooks.clear()
    replica = copy.deepcopy(replica).double().eval()
    try:
        with torch.no_grad():
            want, got = probe(*inputs), replica(*inputs)
    except Exception as exc:  # noqa: BLE001 (any failure of the foreign forward means: not the structure's function)
        return f'its forward fails on a {tuple(inputs[0].shape)} probe ({type(exc).__name__}: {exc})'
    if not isinstance(want, torch.Tensor) or want.shape != got.shape:
        return f'its forward returns {type(want).__name__} {getattr(want, "shape", "")} (expected {tuple(got.shape)})'
    err = float((want - got).abs().max() / got.abs().max().clamp_min(1e-12))
    if not err <= PROBE_TOLERANCE:
        return f'its forward computes another function (relative difference {err:.2e} to the structure\'s on a probe)'
    return None


def csa_replica(m: nn.Module, kind: str, c: int, heads: int, extra, builder: Optional[Builder]) -> nn.Module:
    """The plugin's CSA layer holding ``m``'s weights (CPU, float32)."""
    if kind == 'MDTA':
        replica = CSA(c, heads, bias=extra)
    else:
        replica = builder(attention='csa')
    state = {k: v.detach().float().cpu() for k, v in m.state_dict().items()}
    replica.load_state_dict(state, strict=True)
    return replica

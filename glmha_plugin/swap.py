"""``swap_attention``: put GLMHA into a network the user already has, by structure, not by class name.

Many Restormer derivatives keep Restormer's MDTA under their own class name
(usually ``Attention``), and MST-style networks keep MS-MSA.  In place,
:func:`swap_attention` replaces

* every module that *is* MDTA: children exactly ``qkv`` (1x1 conv C -> 3C),
  ``qkv_dwconv`` (depth-wise 3x3 on 3C), ``project_out`` (1x1 C -> C), all
  with or all without biases, one own parameter ``temperature`` (heads x 1 x
  1), no buffers, a forward of one tensor, by the plugin's
  :class:`~glmha_plugin.layers.GLMHA`;
* every MST-style MS-MSA: children exactly ``to_q``, ``to_k``, ``to_v``
  (Linear C -> C, no bias), ``proj`` (Linear C -> C with bias), ``pos_emb``
  (depth-wise 3x3, GELU, depth-wise 3x3, no biases) and optionally MST's mask
  branch ``mm`` (``conv1``, ``conv2`` 1x1 and ``depth_conv`` 5x5 depth-wise,
  with biases), one own parameter ``rescale``, by the spectral GLMHA
  (:class:`~glmha_plugin.layers.SpectralMSA`), keeping the calling
  convention of the host: ``forward(x)`` (MST++), ``forward(x, mask=None)``
  with a channels-last mask and the network's own mask branch (MST: the
  branch is kept as it is, C channels, and GLMHA's r value channels are
  multiplied by its channels ``floor(k C / r)``), or ``forward(x, guide)``
  with channels-last features multiplied into the values (Retinexformer's
  IG-MSA);
* the plugin's own CSA layers (``Restormer``, ``MST``, ... built with
  ``attention: csa``) likewise; the plugin's GLMHA layers are left alone.

Structure cannot see a forward that computes something else, so each
structural match is also run once on a small random probe (float64 copy,
1 x C x 8 x 8) against the plugin's CSA holding its weights; a module that
differs there, or that carries anything more than the structure (extra
parameters, children or forward arguments: e.g. top-k sparse attention with
learned mixing weights), is a look-alike: never replaced silently;
``strict=True`` raises :class:`SwapError` naming the module path and what
differs, ``strict=False`` skips it and lists it in the report.

With ``warm_start`` each new layer starts from the replaced module's weights
through the SVD conversion of :mod:`glmha_plugin.convert`, so full rank with
``guidance='none'`` computes the original network.  ``rank`` / ``rank_ratio``
are one number for every layer or a dict from module-path prefixes to numbers
(the longest matching prefix wins; layers no prefix matches get the default
ratio 0.5).  New layers get the device, dtype, ``requires_grad`` and
train/eval state of the module they replace.
"""
import copy
import inspect
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from .convert import LayerReport, init_attention_from_csa, init_spectral_from_csa
from .layers import CSA, GLMHA, ChannelAttention, SpectralMSA, resolve_rank
from .layers.attention import DEFAULT_GAMMA, check_guidance
from .layers.calibration import calibration_hidden

Spec = Union[None, int, float, Dict[str, Union[int, float]]]
PROBE_SIDE = 8
PROBE_TOLERANCE = 1e-6
MDTA_CHILDREN = frozenset({'qkv', 'qkv_dwconv', 'project_out'})
MSMSA_CHILDREN = frozenset({'to_q', 'to_k', 'to_v', 'proj', 'pos_emb'})
MASK_CHILDREN = frozenset({'conv1', 'conv2', 'depth_conv'})


class SwapError(ValueError):
    """A module that looks like an attention layer but is not one swap_attention can replace, or a bad option."""


@dataclass
class SwappedLayer(LayerReport):
    kind: str = 'MDTA'   # 'MDTA' or 'MS-MSA'


@dataclass
class SwapReport:
    """What :func:`swap_attention` did; ``str(report)`` is a table."""
    layers: List[SwappedLayer] = field(default_factory=list)
    skipped: List[Tuple[str, str]] = field(default_factory=list)   # (module path, reason)

    def __str__(self) -> str:
        def energy(v):
            return f'{v:9.4f}' if v is not None else f'{"-":>9s}'
        width = max([len('module'), *(len(r.name) for r in self.layers)])
        lines = [f'{"module":{width}s} {"kind":6s} {"C":>4s} {"heads":>5s} {"rank":>4s} {"K energy":>9s} '
                 f'{"V energy":>9s}']
        lines += [f'{r.name:{width}s} {r.kind:6s} {r.dim:4d} {r.heads:5d} {r.rank:4d} {energy(r.key_energy)} '
                  f'{energy(r.value_energy)}' for r in self.layers]
        lines.append(f'{len(self.layers)} attention layer(s) swapped to GLMHA')
        if self.skipped:
            lines.append(f'{len(self.skipped)} skipped:')
            lines += [f'  {path or "<model>"}: {reason}' for path, reason in self.skipped]
        return '\n'.join(lines)


# ----------------------------------------------------------------------------------- structure


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


def _forward_params(m: nn.Module) -> List[inspect.Parameter]:
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
    params = _forward_params(m)
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
    params = _forward_params(m)
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


def _looks_like_mdta(m: nn.Module) -> bool:
    names = set(dict(m.named_children())) | set(dict(m.named_parameters(recurse=False)))
    return {'qkv', 'project_out', 'temperature'} <= names


def _looks_like_msmsa(m: nn.Module) -> bool:
    names = set(dict(m.named_children())) | set(dict(m.named_parameters(recurse=False)))
    return {'to_q', 'to_k', 'to_v', 'rescale'} <= names


# ----------------------------------------------------------------------------------- replacements


class SwappedMaskMSA(SpectralMSA):
    """A swapped MST-style MS-MSA: ``forward(x_in, mask=None)`` as upstream MST, the mask B x H x W' x C
    channels-last, embedded by the network's own branch ``mm`` (kept: C channels), the first sample's
    embedding used for the whole batch (as upstream); the GLMHA variant multiplies value channel k of r by
    embedding channel ``floor(k C / r)``."""

    def __init__(self, dim: int, num_heads: int, mm: nn.Module, **attention):
        super().__init__(dim, num_heads, illumination_guided=True, **attention)
        self.mm = mm

    def value_guide(self, guide, b, h, w):
        if guide is None:
            raise ValueError('this MS-MSA needs the mask (B x H x W\' x C)')
        return self.select_guide(self.mm(guide.permute(0, 3, 1, 2))[:1])

    def forward(self, x_in: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        b, h, w, _ = x_in.shape
        return self.attend(x_in, self.value_guide(mask, b, h, w))


class SwappedGuidedMSA(SpectralMSA):
    """A swapped IG-MSA (Retinexformer): ``forward(x_in, guide)`` with channels-last B x H x W x C features
    multiplied into the values (the guide may be passed by the host's own keyword, ``guide_arg``)."""

    def __init__(self, dim: int, num_heads: int, guide_arg: str, **attention):
        super().__init__(dim, num_heads, illumination_guided=True, **attention)
        self.guide_arg = guide_arg

    def forward(self, x_in: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        guide = args[0] if args else kwargs.get(self.guide_arg)
        b, h, w, _ = x_in.shape
        return self.attend(x_in, self.value_guide(None if guide is None else guide.permute(0, 3, 1, 2), b, h, w))


Builder = Callable[..., nn.Module]   # builder(**attention options) -> layer


def _spectral_builder(m: nn.Module, c: int, heads: int, convention: str) -> Builder:
    if isinstance(m, SpectralMSA):   # the plugin's own layer: same guidance
        mask_step = m.mm.step if m.mm is not None else None
        return lambda **kw: SpectralMSA(c, heads, mask_step=mask_step, level=m.level,
                                        illumination_guided=m.illumination_guided, **kw)
    if convention == 'mask':   # the replica (CSA) gets a CPU copy of the mask branch, the new layer the branch itself
        return lambda mm=None, **kw: SwappedMaskMSA(c, heads, copy.deepcopy(m.mm).float().cpu() if mm is None else mm,
                                                    **kw)
    if convention == 'guide':
        guide_arg = _forward_params(m)[1].name
        return lambda **kw: SwappedGuidedMSA(c, heads, guide_arg, **kw)
    return lambda **kw: SpectralMSA(c, heads, **kw)


def _probe_inputs(kind: str, convention: str, c: int):
    gen = torch.Generator().manual_seed(0)
    shape = (1, c, PROBE_SIDE, PROBE_SIDE) if kind == 'MDTA' else (1, PROBE_SIDE, PROBE_SIDE, c)
    x = torch.randn(*shape, generator=gen, dtype=torch.float64)
    if convention in ('mask', 'guide'):
        return x, torch.rand(1, PROBE_SIDE, PROBE_SIDE, c, generator=gen, dtype=torch.float64)
    return (x,)


def _probe_difference(original: nn.Module, replica: nn.Module, inputs) -> Optional[str]:
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


def _csa_replica(m: nn.Module, kind: str, c: int, heads: int, extra, builder: Optional[Builder]) -> nn.Module:
    """The plugin's CSA layer holding ``m``'s weights (CPU, float32)."""
    if kind == 'MDTA':
        replica = CSA(c, heads, bias=extra)
    else:
        replica = builder(attention='csa')
    state = {k: v.detach().float().cpu() for k, v in m.state_dict().items()}
    replica.load_state_dict(state, strict=True)
    return replica


# ----------------------------------------------------------------------------------- options


def _lookup(spec: Spec, path: str, option: str, used: set) -> Tuple[Optional[Union[int, float]], int]:
    """(value, length of the matched prefix) of a number or ``{prefix: number}`` option for ``path``."""
    if spec is None or not isinstance(spec, dict):
        return spec, 0
    best = None
    for prefix in spec:
        if not isinstance(prefix, str):
            raise SwapError(f'{option}: keys must be module-path prefixes (strings), got {prefix!r}')
        if prefix == '' or path == prefix or path.startswith(prefix + '.'):
            if best is None or len(prefix) > len(best):
                best = prefix
    if best is None:
        return None, -1
    used.add((option, best))
    return spec[best], len(best) + 1


def _check_spec(option: str, spec: Spec) -> None:
    """SwapError unless ``spec`` is None, a number, or ``{module-path prefix: number}`` (rank: whole numbers)."""
    what = 'a whole number' if option == 'rank' else 'a number in (0, 1]'

    def ok(v):
        return not isinstance(v, bool) and (isinstance(v, int) if option == 'rank' else isinstance(v, (int, float)))
    values = list(spec.values()) if isinstance(spec, dict) else [spec]
    for v in values:
        if v is not None and not ok(v):
            raise SwapError(f'{option} must be {what} or {{module-path prefix: {what.split(" in ")[0]}}}, got {v!r}'
                            + (f' in {spec!r}' if isinstance(spec, dict) else ''))


def _layer_rank(path: str, c: int, heads: int, rank: Spec, rank_ratio: Spec, used: set) -> int:
    r, r_len = _lookup(rank, path, 'rank', used)
    q, q_len = _lookup(rank_ratio, path, 'rank_ratio', used)
    if r is not None and q is not None:
        if r_len == q_len:
            raise SwapError(f'{path}: both rank ({r}) and rank_ratio ({q}) apply; give one of them for this layer')
        r, q = (r, None) if r_len > q_len else (None, q)
    try:
        return resolve_rank(c, heads, r, q)
    except ValueError as exc:
        raise SwapError(f'{path} ({c} channels, {heads} heads): {exc}') from None


# ----------------------------------------------------------------------------------- the swap


def _candidates(model: nn.Module):
    """(path, module, kind) of every attention-like module, not descending into them."""
    def walk(module: nn.Module, prefix: str):
        for name, child in module.named_children():
            path = f'{prefix}.{name}' if prefix else name
            if isinstance(child, (ChannelAttention, SpectralMSA)) or _looks_like_mdta(child) \
                    or _looks_like_msmsa(child):
                yield path, child
            else:
                yield from walk(child, path)
    if isinstance(model, (ChannelAttention, SpectralMSA)) or _looks_like_mdta(model) or _looks_like_msmsa(model):
        raise SwapError(f'the model itself is an attention layer ({type(model).__name__}); swap_attention replaces '
                        f'attention layers inside a network: pass the network that holds it')
    yield from walk(model, '')


def _plan(path: str, m: nn.Module):
    """(kind, C, heads, extra, builder) for a replaceable module, or a str saying why it is not replaceable."""
    if isinstance(m, (ChannelAttention, SpectralMSA)):
        if isinstance(m, (SwappedMaskMSA, SwappedGuidedMSA)) or m.rank != m.dim or m.calib is not None:
            return None
        if isinstance(m, ChannelAttention):
            return 'MDTA', m.dim, m.num_heads, m.qkv.bias is not None, None
        return 'MS-MSA', m.dim, m.num_heads, 'own', _spectral_builder(m, m.dim, m.num_heads, 'own')
    if _looks_like_mdta(m):
        found, diffs = mdta_differences(m)
        if diffs:
            return f'looks like MDTA ({type(m).__name__}) but {"; ".join(diffs)}'
        c, heads, bias = found
        return 'MDTA', c, heads, bias, None
    found, diffs = msmsa_differences(m)
    if diffs:
        return f'looks like MS-MSA ({type(m).__name__}) but {"; ".join(diffs)}'
    c, heads, convention = found
    return 'MS-MSA', c, heads, convention, _spectral_builder(m, c, heads, convention)


def _new_layer(m, kind, c, heads, extra, builder, rank, guidance, gamma) -> nn.Module:
    if kind == 'MDTA':
        return GLMHA(c, heads, bias=extra, rank=rank, guidance=guidance, gamma=gamma)
    kw = dict(mm=m.mm) if extra == 'mask' else {}
    return builder(attention='glmha', rank=rank, guidance=guidance, gamma=gamma, **kw)


def _place(model: nn.Module, path: str, new: nn.Module) -> None:
    parent, _, name = path.rpartition('.')
    setattr(model.get_submodule(parent) if parent else model, name, new)


def swap_attention(model: nn.Module, *, rank: Spec = None, rank_ratio: Spec = None, guidance: str = 'calibration',
                   gamma: int = DEFAULT_GAMMA, warm_start: bool = True, strict: bool = True) -> SwapReport:
    """Replace every MDTA and MS-MSA of ``model`` by GLMHA, in place (module docstring); returns the report.

    Args:
        model: any ``nn.Module`` holding attention layers.
        rank / rank_ratio: K/V rank of the new layers: a number, or ``{module-path prefix: number}``
            (longest prefix wins); see :func:`glmha_plugin.layers.resolve_rank` (default ratio 0.5).
        guidance: ``'calibration'`` (instance guidance) or ``'none'``.
        gamma: calibration reduction.
        warm_start: initialise each new layer from the replaced one by truncated SVD (else: fresh init).
        strict: raise :class:`SwapError` for look-alikes (else skip them and report why).

    Raises:
        SwapError: a look-alike under ``strict``, an option that fits no layer, a rank a layer cannot take.
    """
    try:
        check_guidance(guidance)
        calibration_hidden(1, gamma)
    except ValueError as exc:
        raise SwapError(str(exc)) from None
    _check_spec('rank', rank)
    _check_spec('rank_ratio', rank_ratio)
    report = SwapReport()
    used: set = set()
    plans = []
    for path, m in _candidates(model):
        plan = _plan(path, m)
        if plan is None:
            report.skipped.append((path, f'already GLMHA ({type(m).__name__}, rank {m.rank} of {m.dim}, guidance '
                                         f'{m.guidance})'))
            continue
        if isinstance(plan, str):
            if strict:
                raise SwapError(f'{path}: {plan}. It is not replaced; pass strict=False to skip it')
            report.skipped.append((path, plan))
            continue
        kind, c, heads, extra, builder = plan
        replica = _csa_replica(m, kind, c, heads, extra, builder)
        if not isinstance(m, (ChannelAttention, SpectralMSA)):
            why = _probe_difference(m, replica, _probe_inputs(kind, extra if kind == 'MS-MSA' else None, c))
            if why:
                if strict:
                    raise SwapError(f'{path}: has the structure of {kind} ({type(m).__name__}) but {why}. It is not '
                                    f'replaced; pass strict=False to skip it')
                report.skipped.append((path, f'{kind} structure ({type(m).__name__}) but {why}'))
                continue
        plans.append((path, m, plan, replica, _layer_rank(path, c, heads, rank, rank_ratio, used)))
    for option, spec in (('rank', rank), ('rank_ratio', rank_ratio)):
        unused = sorted(p for p in spec if (option, p) not in used) if isinstance(spec, dict) else []
        if unused:
            raise SwapError(f'{option}: prefix(es) {unused} match no swapped attention layer; layers: '
                            f'{", ".join(p for p, *_ in plans) or "none"}')
    for path, m, (kind, c, heads, extra, builder), replica, r in plans:
        new = _new_layer(m, kind, c, heads, extra, builder, r, guidance, gamma)
        energies = (None, None)
        if warm_start:
            init = init_attention_from_csa if kind == 'MDTA' else init_spectral_from_csa
            info = init(replica, new, path)
            energies = (info.key_energy, info.value_energy)
        ref = next(iter(m.parameters()))
        new.to(device=ref.device, dtype=ref.dtype)
        new.requires_grad_(any(p.requires_grad for p in m.parameters()))
        new.train(m.training)
        _place(model, path, new)
        report.layers.append(SwappedLayer(path, c, heads, r, *energies, kind=kind))
    return report

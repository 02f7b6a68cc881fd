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
1 x C x 11 x 11) against the plugin's CSA holding its weights; a module that
differs there, or that carries anything more than the structure (extra
parameters, children or forward arguments: e.g. top-k sparse attention with
learned mixing weights), is a look-alike: never replaced silently;
``strict=True`` raises :class:`SwapError` naming the module path and what
differs, ``strict=False`` skips it and lists it in the report.

With ``warm_start`` each new layer starts from the replaced module's weights
through the SVD conversion of :mod:`glmha_plugin.swap.warm_start`, so full rank with
``guidance='none'`` computes the original network.  ``rank`` / ``rank_ratio``
are per-layer options (:mod:`glmha_plugin.layers.ranks`, the format of every
host): one number for every layer or a dict from module-path prefixes to
numbers (the longest matching prefix wins; layers no prefix matches get the
default ratio 0.5).  New layers get the device, dtype, ``requires_grad`` and
train/eval state of the module they replace.
"""
import copy

from torch import nn

from ..layers import GLMHA, ChannelAttention, SpectralMSA, resolve_rank
from ..layers.attention import DEFAULT_GAMMA, check_guidance
from ..layers.calibration import calibration_hidden
from ..layers.ranks import PerLayer, layer_options, parse
from ..layers.swapped_msa import SwappedGuidedMSA, SwappedMaskMSA
from .matching import (
    Builder,
    csa_replica,
    forward_params,
    looks_like_mdta,
    looks_like_msmsa,
    mdta_differences,
    msmsa_differences,
    probe_difference,
    probe_inputs,
)
from .report import SwapError, SwappedLayer, SwapReport
from .warm_start import init_attention_from_csa, init_spectral_from_csa


def _spectral_builder(m: nn.Module, c: int, heads: int, convention: str) -> Builder:
    if isinstance(m, SpectralMSA):   # the plugin's own layer: same guidance
        mask_step = m.mm.step if m.mm is not None else None
        return lambda **kw: SpectralMSA(c, heads, mask_step=mask_step, level=m.level,
                                        illumination_guided=m.illumination_guided, **kw)
    if convention == 'mask':   # the replica (CSA) gets a CPU copy of the mask branch, the new layer the branch itself
        return lambda mm=None, **kw: SwappedMaskMSA(c, heads, copy.deepcopy(m.mm).float().cpu() if mm is None else mm,
                                                    **kw)
    if convention == 'guide':
        guide_arg = forward_params(m)[1].name
        return lambda **kw: SwappedGuidedMSA(c, heads, guide_arg, **kw)
    return lambda **kw: SpectralMSA(c, heads, **kw)


# ----------------------------------------------------------------------------------- the swap


def _candidates(model: nn.Module):
    """(path, module, kind) of every attention-like module, not descending into them."""
    def walk(module: nn.Module, prefix: str):
        for name, child in module.named_children():
            path = f'{prefix}.{name}' if prefix else name
            if isinstance(child, (ChannelAttention, SpectralMSA)) or looks_like_mdta(child) \
                    or looks_like_msmsa(child):
                yield path, child
            else:
                yield from walk(child, path)
    if isinstance(model, (ChannelAttention, SpectralMSA)) or looks_like_mdta(model) or looks_like_msmsa(model):
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
    if looks_like_mdta(m):
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


def swap_attention(model: nn.Module, *, rank: PerLayer = None, rank_ratio: PerLayer = None,
                   guidance: str = 'calibration',
                   gamma: int = DEFAULT_GAMMA, warm_start: bool = True, strict: bool = True) -> SwapReport:
    """Replace every MDTA and MS-MSA of ``model`` by GLMHA, in place (module docstring); returns the report.

    Args:
        model: any ``nn.Module`` holding attention layers.
        rank / rank_ratio: K/V rank of the new layers: a number, or ``{module-path prefix: number}``
            (longest prefix wins, :mod:`glmha_plugin.layers.ranks`); see :func:`glmha_plugin.layers.resolve_rank`
            (default ratio 0.5).
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
        parse(rank, 'rank')
        parse(rank_ratio, 'rank_ratio')
    except ValueError as exc:
        raise SwapError(str(exc)) from None
    report = SwapReport()
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
        replica = csa_replica(m, kind, c, heads, extra, builder)
        if not isinstance(m, (ChannelAttention, SpectralMSA)):
            why = probe_difference(m, replica, probe_inputs(kind, extra if kind == 'MS-MSA' else None, c))
            if why:
                if strict:
                    raise SwapError(f'{path}: has the structure of {kind} ({type(m).__name__}) but {why}. It is not '
                                    f'replaced; pass strict=False to skip it')
                report.skipped.append((path, f'{kind} structure ({type(m).__name__}) but {why}'))
                continue
        plans.append((path, m, plan, replica))
    try:
        options = layer_options(rank, rank_ratio, [(path, plan[1], plan[2]) for path, _, plan, _ in plans],
                                noun='swapped attention layer')
    except ValueError as exc:
        raise SwapError(str(exc)) from None
    for path, m, (kind, c, heads, extra, builder), replica in plans:
        r = resolve_rank(c, heads, **options[path])
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

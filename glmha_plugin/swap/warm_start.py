"""Warm start: a GLMHA network initialised from a trained CSA checkpoint of its host.

Restormer's MDTA layers below; :func:`init_spectral_from_csa` does the same
for the MS-MSA layers of MST, MST++ and Retinexformer, so
:func:`glmha_plugin.swap.convert.convert_checkpoint` converts a checkpoint of any of the four hosts
(and :func:`glmha_plugin.swap_attention` the attention layers of any network).

Every tensor that the two networks share (same name, same shape) is copied.
Each GLMHA layer (rank r, h heads, r_h = r / h key/value channels per head)
is initialised from the CSA layer at the same place, head by head, where the
CSA head has d = C / h key and value channels with 1x1 weights
``W_k, W_v`` (d x C), rows of the CSA ``qkv`` ordered [q | k | v]:

1. truncated SVD of the head's key and value weights:
   ``W_k ~ U_k S_k V_k^T`` and ``W_v ~ U_v S_v V_v^T`` at rank r_h (the best
   rank-r_h approximations ``W_k^(r)``, ``W_v^(r)``);
2. the r_h channels I that best span the key subspace: column-pivoted QR of
   ``U_k[:, :r_h]^T`` (so ``U_k[I]`` is well conditioned and the kept rows span
   the same space as the rank-r_h approximation);
3. GLMHA's key/value rows are ``W_k^(r)[I]`` and ``W_v^(r)[I]``, with the
   depth-wise 3x3 kernels (and biases) of channels I; queries, their
   depth-wise kernels, the temperatures and the output projection are copied.

At full rank (r = C) step 1 is exact and I keeps every channel in order, so a
converted unguided model computes the CSA model's function.  Measured on a
trained tiny Restormer (README), this start is closer to the parent than
copying the shared tensors with random K/V (or a random GLMHA init).

Guidance is made neutral: the calibration's last layer ``fc2`` gets zero
weights (and bias), so g = sigmoid(0) = 1/2 for every channel and image, and
the K/V rows are doubled to cancel it: the converted guided model equals the
unguided one at the start, and the calibration then learns from there
(``fc1`` keeps its fresh initialisation, so ``fc2`` gets gradients).
"""
from dataclasses import dataclass
from typing import List

import torch
from torch import nn

from ..layers import ChannelAttention, MaskGuidance, SpectralMSA


@dataclass
class LayerReport:
    name: str
    dim: int
    heads: int
    rank: int
    key_energy: float    # fraction of the K weights' squared singular values kept
    value_energy: float  # same for V


def _pivot_channels(u_r: torch.Tensor, k: int) -> List[int]:
    """k row indices of ``u_r`` (d x k) by column-pivoted QR of ``u_r^T``, in increasing order."""
    import scipy.linalg
    _, _, perm = scipy.linalg.qr(u_r.T.cpu().numpy(), mode='economic', pivoting=True)
    return sorted(int(i) for i in perm[:k])


def _truncate(w: torch.Tensor, k: int):
    """Best rank-k approximation of ``w`` (float64), its left singular vectors and the kept energy."""
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    energy = float((s[:k]**2).sum() / (s**2).sum()) if s.numel() and float((s**2).sum()) > 0 else 1.0
    return (u[:, :k] * s[:k]) @ vh[:k], u[:, :k], energy


def _low_rank_heads(wk: torch.Tensor, wv: torch.Tensor, heads: int, rank: int):
    """Steps 1-3 of the module docstring for key and value weights ``wk``, ``wv`` (C x C, rows head by head).

    Returns the r x C key rows, the r x C value rows (float64), the kept channel indices I (r, head by head,
    increasing within each head) and the mean kept energies (key, value) over the heads.
    """
    d, rh = wk.shape[0] // heads, rank // heads
    rows_k, rows_v, idx, energies = [], [], [], []
    for j in range(heads):
        head = slice(j * d, (j + 1) * d)
        wk_r, uk, ek = _truncate(wk[head], rh)
        wv_r, _, ev = _truncate(wv[head], rh)
        keep = _pivot_channels(uk, rh)
        rows_k.append(wk_r[keep])
        rows_v.append(wv_r[keep])
        idx.extend(j * d + i for i in keep)
        energies.append((ek, ev))
    ek, ev = zip(*energies, strict=True)
    return torch.cat(rows_k), torch.cat(rows_v), idx, (sum(ek) / heads, sum(ev) / heads)


def _neutral_calibration(calib) -> float:
    """Make the calibration output g = 1/2 everywhere (``fc2`` zero); returns the factor (2) that cancels it."""
    if calib is None:
        return 1.0
    nn.init.zeros_(calib.fc2.weight)
    if calib.fc2.bias is not None:
        nn.init.zeros_(calib.fc2.bias)
    return 2.0


def _check_pair(csa, glmha, name: str) -> None:
    if csa.rank != csa.dim or csa.calib is not None:
        raise ValueError(f'{name}: the parent attention must be CSA (full rank, no guidance), got rank {csa.rank} '
                         f'and guidance {csa.guidance}')
    if (glmha.dim, glmha.num_heads) != (csa.dim, csa.num_heads):
        raise ValueError(f'{name}: parent has {csa.dim} channels / {csa.num_heads} heads, the GLMHA layer '
                         f'{glmha.dim} / {glmha.num_heads}; build the GLMHA network with the parent\'s dim and heads')


@torch.no_grad()
def init_attention_from_csa(csa: ChannelAttention, glmha: ChannelAttention, name: str = '') -> LayerReport:
    """Initialise ``glmha`` (any rank, any guidance) from a full-rank unguided ``csa`` of the same size (above)."""
    _check_pair(csa, glmha, name)
    c, h = csa.dim, csa.num_heads
    wq, wk, wv = csa.qkv.weight.flatten(1).double().split([c, c, c])
    dq, dk, dv = csa.qkv_dwconv.weight.split([c, c, c])
    has_bias = csa.qkv.bias is not None
    if has_bias != (glmha.qkv.bias is not None):
        raise ValueError(f'{name}: parent and GLMHA layer disagree on bias')
    rows_k, rows_v, idx_k, (ek, ev) = _low_rank_heads(wk, wv, h, glmha.rank)
    kv = torch.cat([rows_k, rows_v]) * _neutral_calibration(glmha.calib)
    glmha.qkv.weight.copy_(torch.cat([wq, kv]).to(glmha.qkv.weight.dtype).view_as(glmha.qkv.weight))
    glmha.qkv_dwconv.weight.copy_(torch.cat([dq, dk[idx_k], dv[idx_k]]))
    if has_bias:
        bias, dw_bias = csa.qkv.bias.split([c, c, c]), csa.qkv_dwconv.bias.split([c, c, c])
        glmha.qkv.bias.copy_(torch.cat([bias[0], bias[1][idx_k], bias[2][idx_k]]))
        glmha.qkv_dwconv.bias.copy_(torch.cat([dw_bias[0], dw_bias[1][idx_k], dw_bias[2][idx_k]]))
    glmha.temperature.copy_(csa.temperature)
    glmha.project_out.load_state_dict(csa.project_out.state_dict())
    return LayerReport(name, c, h, glmha.rank, ek, ev)


@torch.no_grad()
def init_spectral_from_csa(csa: SpectralMSA, glmha: SpectralMSA, name: str = '') -> LayerReport:
    """The same for MS-MSA (MST, MST++, Retinexformer): ``to_q`` (the key side, see
    :mod:`glmha_plugin.layers.spectral_attention`) and ``to_v`` get the rank-r_h rows I per head;
    ``to_k``, ``rescale``, ``proj`` and ``pos_emb`` are copied; MST's mask branch keeps channels I
    (``conv1`` rows, ``conv2`` rows and columns, ``depth_conv`` channels).  Exact at full rank.
    """
    _check_pair(csa, glmha, name)
    if (csa.mm is None) != (glmha.mm is None) or csa.illumination_guided != glmha.illumination_guided:
        raise ValueError(f'{name}: parent and GLMHA layer differ in their value guidance (mask / illumination)')
    rows_k, rows_v, idx, (ek, ev) = _low_rank_heads(csa.to_q.weight.double(), csa.to_v.weight.double(),
                                                    csa.num_heads, glmha.rank)
    scale = _neutral_calibration(glmha.calib)
    glmha.to_q.weight.copy_(rows_k * scale)
    glmha.to_v.weight.copy_(rows_v * scale)
    for part in ('to_k', 'proj', 'pos_emb'):
        getattr(glmha, part).load_state_dict(getattr(csa, part).state_dict())
    glmha.rescale.copy_(csa.rescale)
    if isinstance(glmha.mm, MaskGuidance):   # the plugin's rank-r mask branch (GLMHAMST)
        glmha.mm.conv1.weight.copy_(csa.mm.conv1.weight[idx])
        glmha.mm.conv2.weight.copy_(csa.mm.conv2.weight[idx][:, idx])
        glmha.mm.depth_conv.weight.copy_(csa.mm.depth_conv.weight[idx])
        for part in ('conv1', 'conv2', 'depth_conv'):
            getattr(glmha.mm, part).bias.copy_(getattr(csa.mm, part).bias[idx])
    elif glmha.mm is not None:               # a network's own C-channel mask branch, kept (swap_attention)
        glmha.mm.load_state_dict(csa.mm.state_dict())
    return LayerReport(name, csa.dim, csa.num_heads, glmha.rank, ek, ev)


@torch.no_grad()
def convert_network(parent: nn.Module, child: nn.Module, progress: bool = False) -> List[LayerReport]:
    """Copy every shared tensor of ``parent`` into ``child`` and SVD-initialise each of its GLMHA layers.

    ``parent`` and ``child`` must have the same structure apart from the
    attention layers (e.g. ``Restormer`` and ``GLMHARestormer``, or ``MST`` and
    ``GLMHAMST``, built with the same options): each ``ChannelAttention``
    (MDTA) of ``child`` is initialised from the parent's layer of the same
    name by :func:`init_attention_from_csa`, each ``SpectralMSA`` (MS-MSA) by
    :func:`init_spectral_from_csa`.
    """
    attn = {n: m for n, m in child.named_modules() if isinstance(m, (ChannelAttention, SpectralMSA))}
    parent_modules = dict(parent.named_modules())
    p_state, c_state = parent.state_dict(), child.state_dict()
    in_attn = tuple(f'{n}.' for n in attn)
    problems = []
    for key, value in c_state.items():
        if key.startswith(in_attn):
            continue
        if key not in p_state:
            problems.append(f'{key} missing in the parent')
        elif p_state[key].shape != value.shape:
            problems.append(f'{key}: parent {tuple(p_state[key].shape)} vs GLMHA {tuple(value.shape)}')
        else:
            value.copy_(p_state[key])
    if problems:
        raise ValueError(f'the parent checkpoint does not match the GLMHA network outside the attention layers '
                         f'({len(problems)} tensors, e.g. {"; ".join(problems[:3])}); build the GLMHA network with '
                         f'the parent\'s options (dim, num_blocks, heads, ...)')
    items = attn.items()
    if progress:
        from tqdm import tqdm
        items = tqdm(items, desc='attention layers', unit='layer')
    reports = []
    for name, layer in items:
        csa = parent_modules.get(name)
        family = ChannelAttention if isinstance(layer, ChannelAttention) else SpectralMSA
        if not isinstance(csa, family):
            raise ValueError(f'the parent has no {family.__name__} attention layer {name!r}')
        init = init_attention_from_csa if family is ChannelAttention else init_spectral_from_csa
        reports.append(init(csa, layer, name))
    return reports

"""Reference attention layers written out from the papers' equations with plain ``torch.nn.functional`` calls.

They read a layer's parameters by name (``dict(m.named_parameters())``) and share no code with
``glmha_plugin.layers``, so a test comparing a layer with them compares two implementations (the package
runs 1x1 convolutions as matrix products on channels-last tensors and folds the normalisation into the
scores; these compute each equation the way upstream writes it).
"""
from typing import Dict, Optional

import torch
import torch.nn.functional as F

Params = Dict[str, torch.Tensor]


def mdta(x: torch.Tensor, p: Params, heads: int, rank: Optional[int] = None,
         g: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Restormer's MDTA, and GLMHA as docs/method.md writes it: B x C x H x W -> same.

    q = DW3x3(PW_q(X)); k, v = DW3x3(PW_kv(g * X)) with ``rank`` r channels each (MDTA: r = C, no g);
    per head softmax(t * l2norm(q) l2norm(k)^T) v; then PW_out. ``p``: ``temperature``, ``qkv.weight``,
    ``qkv_dwconv.weight``, ``project_out.weight`` (and their ``.bias`` when the layer has biases);
    ``g``: B x C guidance (GLMHA's calibration output).
    """
    b, c, h, w = x.shape
    r = c if rank is None else rank
    qkv_bias = p.get('qkv.bias')
    q = F.conv2d(x, p['qkv.weight'][:c], None if qkv_bias is None else qkv_bias[:c])
    kv = F.conv2d(x if g is None else x * g[:, :, None, None], p['qkv.weight'][c:],
                  None if qkv_bias is None else qkv_bias[c:])
    qkv = F.conv2d(torch.cat([q, kv], 1), p['qkv_dwconv.weight'], p.get('qkv_dwconv.bias'), padding=1,
                   groups=c + 2 * r)
    q, k, v = (t.reshape(b, heads, -1, h * w) for t in qkv.split([c, r, r], dim=1))
    attn = (F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)) * p['temperature']
    return F.conv2d((attn.softmax(-1) @ v).reshape(b, c, h, w), p['project_out.weight'], p.get('project_out.bias'))


def ms_msa(x: torch.Tensor, p: Params, heads: int, mask_emb: Optional[torch.Tensor] = None) -> torch.Tensor:
    """MST's / MST++'s MS-MSA (upstream's CSA form): B x H x W x C tokens -> same.

    A = softmax(rescale * l2norm(K)^T l2norm(Q)) over Q's channels (upstream's ``k @ q^T``, its own comment
    "A = K^T*Q"), output proj(A V) + pos_emb(V) with pos_emb = DW3x3 - GELU - DW3x3 on the values before
    the mask. ``p``: ``to_q.weight``, ``to_k.weight``, ``to_v.weight``, ``rescale``, ``proj.weight``,
    ``proj.bias``, ``pos_emb.0.weight``, ``pos_emb.2.weight``; ``mask_emb``: B x N x C mask embedding the
    values are multiplied with (MST).
    """
    b, h, w, c = x.shape
    tokens = x.reshape(b, h * w, c)
    q, k, v_inp = (F.linear(tokens, p[f'{name}.weight']) for name in ('to_q', 'to_k', 'to_v'))
    v = v_inp if mask_emb is None else v_inp * mask_emb
    q, k, v = (t.reshape(b, h * w, heads, c // heads).permute(0, 2, 3, 1) for t in (q, k, v))  # b heads d n
    attn = ((F.normalize(k, dim=-1) @ F.normalize(q, dim=-1).transpose(-2, -1)) * p['rescale']).softmax(dim=-1)
    out = F.linear((attn @ v).permute(0, 3, 1, 2).reshape(b, h * w, c), p['proj.weight'], p['proj.bias'])
    pos = v_inp.reshape(b, h, w, c).permute(0, 3, 1, 2)
    pos = F.conv2d(F.gelu(F.conv2d(pos, p['pos_emb.0.weight'], padding=1, groups=c)), p['pos_emb.2.weight'],
                   padding=1, groups=c)
    return out.view(b, h, w, c) + pos.permute(0, 2, 3, 1)


def upstream_equations(m: torch.nn.Module, x: torch.Tensor, mask_emb=None) -> torch.Tensor:
    """Upstream's MS-MSA written out (:func:`ms_msa`) with the parameters of ``m``."""
    return ms_msa(x, dict(m.named_parameters()), m.num_heads, mask_emb)


def randomise(m: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.uniform_(-0.3, 0.3)
        if hasattr(m, 'rescale'):
            m.rescale.uniform_(0.5, 2)
    return m

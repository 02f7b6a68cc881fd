"""Stand-in networks for the swap_attention tests, written for them (no third-party code).

* :class:`Attention`: channel attention with the structure of Restormer's MDTA under another class name, written
  from the published equations (q, k, v from a 1x1 conv and a depth-wise 3x3 conv; L2-normalised over pixels;
  softmax(temperature q k^T) v; 1x1 output projection), as Restormer derivatives keep it;
* :class:`TopKAttention`: the same plus learned mixing weights (a look-alike that must not be swapped);
* :class:`UnnormalisedAttention`: MDTA's structure with another function (no L2 normalisation);
* :class:`StandInUNet`: a small U-Net (two levels, skip connection) built of such blocks, registered in basicsr's
  ARCH_REGISTRY by :func:`register` as another plugin would;
* :class:`SpectralAttention`, :class:`MaskBranch`: MS-MSA in MST's style (channels-last tokens, Linear
  projections, ``A = K^T Q``, positional branch on the values) with the three calling conventions
  (``forward(x)``, ``forward(x, mask=None)`` with a mask branch, :class:`IlluminationAttention`'s
  ``forward(x, illu_fea_trans)``, called by keyword as Retinexformer does), and
  :class:`SpectralNet`, a one-level network of them.
"""
import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim, num_heads, bias=False):
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, kernel_size=3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def scores(self, q, k):
        return F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = (t.reshape(b, self.num_heads, c // self.num_heads, h * w)
                   for t in self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1))
        attn = (self.scores(q, k) * self.temperature).softmax(dim=-1)
        return self.project_out((attn @ v).reshape(b, c, h, w))


class TopKAttention(Attention):
    def __init__(self, dim, num_heads, bias=False):
        super().__init__(dim, num_heads, bias)
        self.attn1 = nn.Parameter(torch.tensor([0.5]))


class UnnormalisedAttention(Attention):
    def scores(self, q, k):
        return q @ k.transpose(-2, -1) / q.shape[-1]


class Block(nn.Module):
    def __init__(self, dim, heads, attention=Attention, bias=False):
        super().__init__()
        self.norm = nn.GroupNorm(1, dim)
        self.attn = attention(dim, heads, bias)
        self.ffn = nn.Sequential(nn.Conv2d(dim, 2 * dim, 1), nn.GELU(), nn.Conv2d(2 * dim, dim, 1))

    def forward(self, x):
        x = x + self.attn(self.norm(x))
        return x + self.ffn(x)


class StandInUNet(nn.Module):
    """3 -> dim -> (down) 2 dim -> (up) dim -> 3, plus the input (odd sides are padded by one, then cropped)."""

    def __init__(self, in_ch=3, dim=8, heads=(1, 2), bias=False, lookalike=False):
        super().__init__()
        self.embed = nn.Conv2d(in_ch, dim, 3, padding=1)
        self.enc = Block(dim, heads[0], bias=bias)
        self.down = nn.Conv2d(dim, 2 * dim, 2, stride=2)
        self.mid = nn.Sequential(Block(2 * dim, heads[1], bias=bias),
                                 Block(2 * dim, heads[1], TopKAttention if lookalike else Attention, bias=bias))
        self.up = nn.ConvTranspose2d(2 * dim, dim, 2, stride=2)
        self.dec = Block(dim, heads[0], bias=bias)
        self.out = nn.Conv2d(dim, in_ch, 3, padding=1)

    def forward(self, x):
        h, w = x.shape[-2:]
        x = F.pad(x, (0, w % 2, 0, h % 2), mode='replicate')
        e = self.enc(self.embed(x))
        return (x + self.out(self.dec(self.up(self.mid(self.down(e))) + e)))[..., :h, :w]


class MaskBranch(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 1, bias=True)
        self.depth_conv = nn.Conv2d(dim, dim, 5, padding=2, groups=dim, bias=True)
        self.conv2 = nn.Conv2d(dim, dim, 1, bias=True)

    def forward(self, mask):
        m = self.conv1(mask)
        return m + m * torch.sigmoid(self.depth_conv(self.conv2(m)))


class SpectralAttention(nn.Module):
    """kind: 'plain' (forward(x)), 'mask' (forward(x, mask=None), mask B x H x W x C) or 'guide' (forward(x, illu))."""

    def __init__(self, dim, heads, kind='plain'):
        super().__init__()
        self.heads, self.kind = heads, kind
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.rescale = nn.Parameter(torch.ones(heads, 1, 1))
        self.proj = nn.Linear(dim, dim, bias=True)
        self.pos_emb = nn.Sequential(nn.Conv2d(dim, dim, 3, 1, 1, bias=False, groups=dim), nn.GELU(),
                                     nn.Conv2d(dim, dim, 3, 1, 1, bias=False, groups=dim))
        if kind == 'mask':
            self.mm = MaskBranch(dim)

    def attend(self, x, factor=None):
        b, h, w, c = x.shape
        tokens = x.reshape(b, h * w, c)
        v_in = self.to_v(tokens)
        v = v_in if factor is None else v_in * factor

        def heads(t):
            return t.reshape(b, h * w, self.heads, c // self.heads).permute(0, 2, 3, 1)

        q, k = F.normalize(heads(self.to_q(tokens)), dim=-1), F.normalize(heads(self.to_k(tokens)), dim=-1)
        attn = (k @ q.transpose(-2, -1) * self.rescale).softmax(dim=-1)
        out = self.proj((attn @ heads(v)).permute(0, 3, 1, 2).reshape(b, h * w, c)).view(b, h, w, c)
        return out + self.pos_emb(v_in.reshape(b, h, w, c).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)

    def forward(self, x_in, mask=None):
        if self.kind == 'mask':
            emb = self.mm(mask.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
            return self.attend(x_in, emb[:1].reshape(1, -1, x_in.shape[-1]))
        return self.attend(x_in)



class IlluminationAttention(SpectralAttention):
    """Retinexformer's IG-MSA convention: ``forward(x_in, illu_fea_trans)``, the features channels-last."""

    def __init__(self, dim, heads, kind='guide'):
        super().__init__(dim, heads, 'plain')

    def forward(self, x_in, illu_fea_trans):
        return self.attend(x_in, illu_fea_trans.reshape(illu_fea_trans.shape[0], -1, illu_fea_trans.shape[-1]))


class SpectralNet(nn.Module):
    """Embedding, two MS-MSA blocks (channels-last), mapping; ``forward(x[, guide])`` with guide B x dim x H x W."""

    def __init__(self, dim=8, heads=2, kind='plain'):
        super().__init__()
        self.kind = kind
        self.embedding = nn.Conv2d(3, dim, 3, padding=1)
        cls = IlluminationAttention if kind == 'guide' else SpectralAttention
        self.blocks = nn.ModuleList([cls(dim, heads, kind) for _ in range(2)])
        self.mapping = nn.Conv2d(dim, 3, 3, padding=1)

    def forward(self, x, guide=None):
        fea = self.embedding(x).permute(0, 2, 3, 1)
        g = None if guide is None else guide.permute(0, 2, 3, 1)
        for blk in self.blocks:
            if g is None:
                fea = fea + blk(fea)
            elif self.kind == 'guide':
                fea = fea + blk(fea, illu_fea_trans=g)
            else:
                fea = fea + blk(fea, mask=g)
        return x + self.mapping(fea.permute(0, 3, 1, 2))


def register():
    """Register StandInUNet in basicsr's ARCH_REGISTRY (as a plugin other than glmha_plugin would)."""
    from basicsr.utils.registry import ARCH_REGISTRY
    if 'StandInUNet' not in ARCH_REGISTRY:
        ARCH_REGISTRY.register()(StandInUNet)

"""Analytic parameter and multiply-accumulate (MAC) counts of CSA and GLMHA.

The formulas are docs/method.md's cost table: per attention layer, one image, N = H*W
pixels, h heads, d = C/h, rank r, calibration hidden width
``max(1, C // gamma)`` (= C/gamma when gamma divides C).  MACs ignore biases,
the L2 normalisation, the temperature scaling and the softmax (the same
convention as mmengine's FlopAnalyzer without extra op handles).
"""
from typing import Dict

from .calibration import calibration_hidden


def csa_params(dim: int, num_heads: int, bias: bool = False) -> int:
    """4C^2 + 27C + h (+ 7C biases)."""
    c = dim
    return 4 * c * c + 27 * c + num_heads + (7 * c if bias else 0)


def glmha_params(dim: int, num_heads: int, rank: int, guidance: str = 'calibration', gamma: int = 8,
                 bias: bool = False) -> int:
    """2C^2 + 9C + 2rC + 18r + h, plus 2C(C // gamma) for the calibration net (biases when ``bias``)."""
    c, r = dim, rank
    n = 2 * c * c + 9 * c + 2 * r * c + 18 * r + num_heads
    if bias:
        n += 2 * (c + 2 * r) + c
    if guidance == 'calibration':
        hid = calibration_hidden(c, gamma)
        n += 2 * c * hid + ((hid + c) if bias else 0)
    return n


def csa_macs(dim: int, num_heads: int, n_pixels: int) -> Dict[str, int]:
    """MACs of CSA by term (docs/method.md's cost table, CSA column)."""
    c, n, d = dim, n_pixels, dim // num_heads
    return {
        'qkv_proj': 3 * c * c * n,
        'dwconv': 27 * c * n,
        'attention': 2 * d * c * n,
        'out_proj': c * c * n,
    }


def glmha_macs(dim: int, num_heads: int, rank: int, n_pixels: int, guidance: str = 'calibration',
               gamma: int = 8, fold_guidance: bool = True) -> Dict[str, int]:
    """MACs of GLMHA by term.

    ``fold_guidance=False`` is docs/method.md's table verbatim: the guidance costs
    C*N for the pooling, 2C^2/gamma for the MLP and C*N for scaling X.  This
    package's implementation folds g into the K/V weight instead
    (``fold_guidance=True``, default), so the scaling costs 2rC.
    """
    c, r, n, d = dim, rank, n_pixels, dim // num_heads
    terms = {
        'qkv_proj': c * c * n + 2 * r * c * n,
        'dwconv': 9 * c * n + 18 * r * n,
        'attention': 2 * d * r * n,
        'out_proj': c * c * n,
    }
    if guidance == 'calibration':
        hid = calibration_hidden(c, gamma)
        terms['calibration'] = c * n + 2 * c * hid + (2 * r * c if fold_guidance else c * n)
    return terms


# --------------------------------------------------------------------------
# MS-MSA of MST / MST++ (glmha_plugin.layers.spectral_attention.SpectralMSA)


def _mask_guidance_params(dim: int, out_dim: int) -> int:
    """conv1 C -> n, conv2 n -> n (1x1, bias) and a 5x5 depth-wise conv on n (bias)."""
    c, n = dim, out_dim
    return c * n + n + n * n + n + 25 * n + n


def spectral_csa_params(dim: int, num_heads: int, mask_guided: bool = False) -> int:
    """Upstream MS-MSA: 4C^2 + 19C + h (to_q/k/v, proj + bias, two 3x3 depth-wise pos-emb convs),
    plus 2C^2 + 28C for MST's mask-guided branch."""
    c = dim
    return 4 * c * c + 19 * c + num_heads + (_mask_guidance_params(c, c) if mask_guided else 0)


def spectral_glmha_params(dim: int, num_heads: int, rank: int, guidance: str = 'calibration', gamma: int = 8,
                          mask_guided: bool = False) -> int:
    """GLMHA MS-MSA: 2C^2 + 2rC + 19C + h, plus 2C(C // gamma) for the calibration net and
    Cr + r^2 + 28r for the rank-r mask-guided branch (MST)."""
    c, r = dim, rank
    n = 2 * c * c + 2 * r * c + 19 * c + num_heads
    if guidance == 'calibration':
        n += 2 * c * calibration_hidden(c, gamma)
    if mask_guided:
        n += _mask_guidance_params(c, r)
    return n


def spectral_csa_macs(dim: int, num_heads: int, n_pixels: int, n_mask_pixels: int = 0) -> Dict[str, int]:
    """MACs of upstream's MS-MSA by term, one image of N = ``n_pixels`` tokens.

    ``n_mask_pixels``: H x W' of the dispersed mask at this level (MST only;
    0 = no mask branch).  Element-wise products (value x mask, the mask
    embedding's sigmoid gate) are not counted, as biases and softmax.
    """
    c, n, d = dim, n_pixels, dim // num_heads
    terms = {'qkv_proj': 3 * c * c * n, 'attention': 2 * d * c * n, 'out_proj': c * c * n, 'pos_emb': 18 * c * n}
    if n_mask_pixels:
        terms['mask_guidance'] = (2 * c * c + 25 * c) * n_mask_pixels
    return terms


def spectral_glmha_macs(dim: int, num_heads: int, rank: int, n_pixels: int, guidance: str = 'calibration',
                        gamma: int = 8, n_mask_pixels: int = 0) -> Dict[str, int]:
    """MACs of the GLMHA MS-MSA by term (same conventions as :func:`spectral_csa_macs`).

    The guidance term is docs/method.md's: pooling (C*N), the calibration MLP and
    scaling the tokens by g (C*N), which ``to_q`` and ``to_v`` are called on.
    """
    c, r, n, d = dim, rank, n_pixels, dim // num_heads
    terms = {'qkv_proj': c * c * n + 2 * r * c * n, 'attention': 2 * d * r * n, 'out_proj': c * c * n,
             'pos_emb': 18 * c * n}
    if guidance == 'calibration':
        terms['calibration'] = c * n + 2 * c * calibration_hidden(c, gamma) + c * n
    if n_mask_pixels:
        terms['mask_guidance'] = (c * r + r * r + 25 * r) * n_mask_pixels
    return terms

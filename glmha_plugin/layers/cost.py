"""Analytic parameter and multiply-accumulate (MAC) counts of CSA and GLMHA.

The formulas are GLMHA.md's table: per attention layer, one image, N = H*W
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
    """MACs of CSA by term (GLMHA.md table, CSA column)."""
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

    ``fold_guidance=False`` is GLMHA.md's table verbatim: the guidance costs
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

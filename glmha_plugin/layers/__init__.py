"""Plain ``nn.Module`` building blocks; nothing here touches a registry."""
from .attention import CSA, GLMHA, GUIDANCE, ChannelAttention, check_attention, resolve_rank, transposed_attention
from .calibration import Calibration
from .cost import (
    csa_macs,
    csa_params,
    glmha_macs,
    glmha_params,
    spectral_csa_macs,
    spectral_csa_params,
    spectral_glmha_macs,
    spectral_glmha_params,
)
from .ffn import GatedDconvFFN
from .mask_guidance import MaskGuidance
from .norm import Float32LayerNorm, LayerNorm2d
from .padding import crop, pad_to_multiple
from .spectral_attention import SpectralMSA

__all__ = [
    'CSA', 'GLMHA', 'GUIDANCE', 'ChannelAttention', 'resolve_rank', 'transposed_attention', 'Calibration',
    'csa_macs', 'csa_params', 'glmha_macs', 'glmha_params', 'GatedDconvFFN', 'LayerNorm2d', 'Float32LayerNorm',
    'build_attention', 'SpectralMSA', 'MaskGuidance', 'spectral_csa_params', 'spectral_glmha_params',
    'spectral_csa_macs', 'spectral_glmha_macs', 'pad_to_multiple', 'crop'
]


def build_attention(attention: str, dim: int, num_heads: int, bias: bool = False, **glmha_kwargs):
    """The attention named by a host's ``attention`` option: ``'csa'`` or ``'glmha'`` (+ GLMHA kwargs)."""
    check_attention(attention, glmha_kwargs)
    if attention == 'csa':
        return CSA(dim, num_heads, bias)
    return GLMHA(dim, num_heads, bias, **glmha_kwargs)

"""spandrel integration: GLMHA checkpoints in spandrel-based applications, spandrel checkpoints as sources.

spandrel (PyPI ``spandrel``, MIT; the model loader of chaiNNer and
ComfyUI-style applications) detects an architecture from a checkpoint's keys
and builds it.  :func:`register_spandrel` adds four architectures to its
registry (``spandrel.MAIN_REGISTRY`` unless another registry is given), each
tried before spandrel's own architecture of the same host:

=====================  ==================================================  =======================================
spandrel ArchId        checkpoint                                          detected before
=====================  ==================================================  =======================================
``GLMHARestormer``     Restormer keys with GLMHA attention                 ``Restormer`` (spandrel_extra_arches)
``GLMHARetinexFormer`` Retinexformer keys with GLMHA in an IG-MSA          ``RetinexFormer`` (spandrel)
``GLMHAMSTPlusPlus``   MST++ keys with GLMHA in an MS-MSA                  (spandrel has no MST++)
``GLMHAMST``           MST keys (mask branch) with GLMHA in an MS-MSA      (spandrel has no MST)
=====================  ==================================================  =======================================

A checkpoint counts as GLMHA when one of its attention layers has a
key/value rank below its channels or a calibration network
(``*.calib.fc1.weight``); a CSA checkpoint (every layer full rank, no
calibration) is never taken, so it keeps loading as spandrel's own
architecture (a full-rank unguided GLMHA checkpoint has CSA's keys and
computes CSA's function, so it loads as CSA too).

Every hyperparameter comes from the tensors: the host's options (channels,
blocks, heads, FFN width, biases, norm type, stages) and, per attention
layer, its rank (``qkv`` / ``to_q`` rows), its heads, and its guidance (a
calibration network or none; the calibration reduction from the hidden
width).  A compressed network has a different rank in every layer: the host
is built with every layer's own rank (the per-layer ``rank`` option
``{module path: rank}`` of :mod:`glmha_plugin.layers.ranks`) and the most
common guidance, and a layer whose guidance or calibration width differs is
rebuilt with its own, so any per-layer mix loads.  Before spandrel loads the weights, the network's
keys and shapes are compared with the checkpoint (a clear error names what
differs instead of PyTorch's ``RuntimeError``).

The descriptors (``spandrel.ImageModelDescriptor``, purpose ``Restoration``,
scale 1) hold the plugin's own classes (:class:`~glmha_plugin.archs.GLMHARestormer`, ...),
so ``descriptor.model`` computes exactly the plugin's network.  What each
reports (tags, channels, size requirements, half precision) is in
``docs/spandrel.md``.  MST's input is not an image: its descriptor takes
``bands + 1`` channels, the shifted-back measurement (``bands`` = 28) and the
coded aperture (one channel), and disperses the aperture into MST's mask Phi
(``glmha_plugin.data.cassi_simulation.disperse``) before calling the network.

:func:`load_network` is the other direction: any checkpoint spandrel
recognises (its own architectures, ``spandrel_extra_arches`` when installed,
and the GLMHA ones above) as an ``nn.Module``, for the swap tool (``--network
spandrel``) and the compress command.

spandrel is optional (``pip install glmha-plugin[spandrel]``): it is imported
inside the functions, never when the plugin is imported, and nothing is
registered until :func:`register_spandrel` is called.
"""
import functools
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from ..errors import UsageError
from ..layers import GLMHA, ChannelAttention, SpectralMSA
from ..layers.attention import DEFAULT_GAMMA
from ..layers.calibration import calibration_hidden

INSTALL_HINT = 'pip install glmha-plugin[spandrel]'
# spandrel's own unwrapping order of checkpoint containers (spandrel.canonicalize_state_dict), to report the entry used
SPANDREL_ENTRIES = ('model_state_dict', 'state_dict', 'params_ema', 'params-ema', 'params', 'model', 'net')
# Half-precision support reported in the descriptors, measured on CPU (docs/spandrel.md, "Half precision"): each
# host's tiny GLMHA network with per-layer ranks, weights and a 1 x C x 64 x 64 input in float16 / bfloat16 against
# float32, finite everywhere, relative max difference at most 1e-2; tests/deploy/test_spandrel.py re-checks it.
SUPPORTS_HALF = True
SUPPORTS_BFLOAT16 = True


class SpandrelError(UsageError, ValueError):
    """A checkpoint spandrel cannot load as asked, or a registry that cannot take the GLMHA architectures."""


class SpandrelMissing(SpandrelError, ImportError):
    """spandrel is not installed."""


def import_spandrel():
    """The ``spandrel`` module, or :class:`SpandrelMissing` with the one-line install hint."""
    try:
        import spandrel
    except ImportError:
        raise SpandrelMissing(f'spandrel is not installed: {INSTALL_HINT}') from None
    return spandrel


# ------------------------------------------------------------------------------------- the tensors

@dataclass(frozen=True)
class AttentionLayer:
    """One attention layer as its checkpoint tensors describe it."""
    path: str
    kind: str                      # 'MDTA' (Restormer) or 'MS-MSA' (MST, MST++, Retinexformer)
    dim: int                       # channels C
    heads: int
    rank: int                      # key/value channels r (C: full rank)
    hidden: Optional[int] = None   # calibration hidden width; None: no guidance
    mask_rank: Optional[int] = None   # output channels of MST's mask branch (None: no mask branch)

    @property
    def guidance(self) -> str:
        return 'none' if self.hidden is None else 'calibration'

    @property
    def glmha(self) -> bool:
        """Reduced rank or guided: not a CSA layer."""
        return self.rank != self.dim or self.hidden is not None


def attention_layers(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, AttentionLayer]:
    """Every MDTA-style (``temperature``, ``qkv``) and MS-MSA-style (``rescale``, ``to_q``) layer, by module path."""
    layers = {}
    for key in state_dict:
        path, _, name = key.rpartition('.')
        if name == 'temperature' and f'{path}.qkv.weight' in state_dict and f'{path}.project_out.weight' in state_dict:
            dim = state_dict[f'{path}.project_out.weight'].shape[0]
            rank2 = state_dict[f'{path}.qkv.weight'].shape[0] - dim
            kind, rank, mask_rank = 'MDTA', rank2 // 2, None
        elif name == 'rescale' and f'{path}.to_q.weight' in state_dict and f'{path}.to_k.weight' in state_dict:
            kind, dim = 'MS-MSA', state_dict[f'{path}.to_k.weight'].shape[0]
            rank = state_dict[f'{path}.to_q.weight'].shape[0]
            mask = state_dict.get(f'{path}.mm.conv1.weight')
            mask_rank = None if mask is None else mask.shape[0]
        else:
            continue
        calib = state_dict.get(f'{path}.calib.fc1.weight')
        layers[path] = AttentionLayer(path, kind, int(dim), int(state_dict[key].shape[0]), int(rank),
                                      None if calib is None else int(calib.shape[0]),
                                      None if mask_rank is None else int(mask_rank))
    return layers


def is_glmha(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether any attention layer of the checkpoint has a rank below its channels or a calibration network."""
    if not any(k.endswith(('.calib.fc1.weight', '.temperature', '.rescale')) for k in state_dict):
        return False
    return any(layer.glmha for layer in attention_layers(state_dict).values())


def seq_len(state_dict: Mapping[str, torch.Tensor], prefix: str) -> int:
    """1 + the largest index i of keys ``prefix.i.*`` (0 when there are none)."""
    start = prefix + '.'
    found = [int(k[len(start):].split('.', 1)[0]) for k in state_dict
             if k.startswith(start) and k[len(start):].split('.', 1)[0].isdigit()]
    return max(found) + 1 if found else 0


def gamma_for(layers: Sequence[AttentionLayer]) -> Optional[int]:
    """A calibration reduction gamma with ``max(1, C // gamma)`` = the hidden width of every guided layer.

    The checkpoint holds the hidden width, not gamma; every gamma giving the same width builds the same
    network, so the plugin's default (8) is preferred.  None when there is no guided layer; SpandrelError
    when no single gamma fits (then :func:`_fit_layers` gives each layer its own).
    """
    guided = [layer for layer in layers if layer.hidden is not None]
    if not guided:
        return None
    for gamma in (DEFAULT_GAMMA, *range(1, max(layer.dim for layer in guided) + 1)):
        if all(calibration_hidden(layer.dim, gamma) == layer.hidden for layer in guided):
            return gamma
    what = ', '.join(f'{layer.path} ({layer.dim} -> {layer.hidden})' for layer in guided[:3])
    raise SpandrelError(f'no calibration reduction gamma gives the hidden widths of {what}: the calibration '
                        f'hidden width must be max(1, channels // gamma)')


def _layer_ranks(layers: Sequence[AttentionLayer]) -> Dict[str, int]:
    """The host's ``rank`` option: every layer's own rank, ``{module path: rank}``."""
    return {layer.path: layer.rank for layer in layers}


def _common(values):
    """The most common value (ties: the first seen)."""
    return Counter(values).most_common(1)[0][0]


def _glmha_options(layers: Sequence[AttentionLayer]) -> dict:
    """guidance and gamma options of a host: the layers' common guidance; gamma when one fits every guided layer."""
    guidance = _common(layer.guidance for layer in layers)
    options = dict(guidance=guidance)
    if guidance == 'calibration':
        try:
            options['gamma'] = gamma_for(layers)
        except SpandrelError:
            options['gamma'] = gamma_for([next(layer for layer in layers if layer.hidden is not None)])
    return options


def _fit_layers(model: nn.Module, layers: Mapping[str, AttentionLayer]) -> nn.Module:
    """Rebuild every attention layer of ``model`` whose rank or guidance differs from the checkpoint's (the
    hosts are built with every layer's rank: what differs is the guidance of layers without the common one)."""
    found = {name: m for name, m in model.named_modules() if isinstance(m, (ChannelAttention, SpectralMSA))}
    if set(found) != set(layers):
        missing, extra = sorted(set(layers) - set(found)), sorted(set(found) - set(layers))
        raise SpandrelError(f'the attention layers of the checkpoint ({missing[:3]}...) and of the network recovered '
                            f'from it ({extra[:3]}...) differ')
    for path, layer in layers.items():
        m = found[path]
        hidden = m.calib.fc1.out_features if m.calib is not None else None
        if (m.rank, hidden) == (layer.rank, layer.hidden):
            continue
        gamma = gamma_for([layer]) if layer.hidden is not None else None
        glmha = dict(rank=layer.rank, guidance=layer.guidance)
        if gamma is not None:
            glmha['gamma'] = gamma
        try:
            if isinstance(m, ChannelAttention):
                new = GLMHA(m.dim, m.num_heads, bias=m.qkv.bias is not None, **glmha)
            else:
                new = SpectralMSA(m.dim, m.num_heads, attention='glmha', mask_step=None if m.mm is None else m.mm.step,
                                  level=m.level, illumination_guided=m.illumination_guided, **glmha)
        except ValueError as exc:
            raise SpandrelError(f'{path}: {exc}') from None
        parent, _, name = path.rpartition('.')
        setattr(model.get_submodule(parent) if parent else model, name, new)
    return model


def _check_fits(model: nn.Module, state_dict: Mapping[str, torch.Tensor], arch: str) -> None:
    from ..glue.checkpoints import key_mismatch
    report = key_mismatch(model.state_dict(), state_dict)
    if report:
        raise SpandrelError(f'{arch}: the checkpoint does not fit the network recovered from its tensors: {report}')


def _rank_tags(layers: Sequence[AttentionLayer]) -> List[str]:
    ranks = sorted({layer.rank for layer in layers})
    guidance = {layer.guidance for layer in layers}
    return ['GLMHA', f'rank {ranks[0]}' if len(ranks) == 1 else f'rank {ranks[0]}-{ranks[-1]}',
            guidance.pop() if len(guidance) == 1 else 'calibration+none',
            f'{sum(layer.glmha for layer in layers)}/{len(layers)} layers GLMHA']


# ------------------------------------------------------------------------------------- the hosts

@dataclass(frozen=True)
class Recovered:
    """A host's network recovered from a checkpoint, and what its descriptor reports."""
    model: nn.Module
    options: dict
    tags: List[str]
    input_channels: int
    output_channels: int
    multiple_of: int                # 1: no size requirement
    call_fn: Optional[Callable] = None


@dataclass(frozen=True)
class Host:
    """One GLMHA architecture for spandrel: the keys that identify it and how to rebuild it from the tensors."""
    arch_id: str                    # spandrel's ArchId (the plugin's registered name)
    name: str                       # spandrel's display name
    before: Tuple[str, ...]         # spandrel ArchIds this one is detected before
    keys: Tuple[str, ...]           # keys every checkpoint of the host has
    recover: Callable[[Mapping[str, torch.Tensor], Dict[str, AttentionLayer]], Recovered] = field(repr=False)

    def detect(self, state_dict: Mapping[str, torch.Tensor]) -> bool:
        return all(k in state_dict for k in self.keys) and is_glmha(state_dict)

    def build(self, state_dict: Mapping[str, torch.Tensor]) -> Recovered:
        layers = attention_layers(state_dict)
        try:
            recovered = self.recover(state_dict, layers)
        except (ValueError, KeyError, IndexError) as exc:
            if isinstance(exc, SpandrelError):
                raise
            raise SpandrelError(f'{self.arch_id}: cannot recover the network from the checkpoint '
                                f'({type(exc).__name__}: {exc})') from None
        _fit_layers(recovered.model, layers)
        _check_fits(recovered.model, state_dict, self.arch_id)
        return recovered


def _ffn_factor(state_dict, dim: int) -> float:
    """Restormer's ffn_expansion_factor f: hidden width int(C f) at every level (each level's first block)."""
    widths = {}
    for stage, mult in (('encoder_level1', 1), ('encoder_level2', 2), ('encoder_level3', 4), ('latent', 8),
                        ('decoder_level1', 2), ('refinement', 2)):
        key = f'{stage}.0.ffn.project_out.weight'
        if key in state_dict:
            widths[dim * mult] = state_dict[key].shape[1]
    lo = max(h / d for d, h in widths.items())
    hi = min((h + 1) / d for d, h in widths.items())
    for f in (2.66, *(round(lo, n) for n in range(1, 8)), (lo + hi) / 2):
        if all(int(d * f) == h for d, h in widths.items()):
            return f
    raise SpandrelError(f'GLMHARestormer: no ffn_expansion_factor gives the feed-forward widths {widths} '
                        f'(channels: width)')


def _recover_restormer(sd, layers) -> Recovered:
    from ..archs import GLMHARestormer
    from ..archs.restormer_arch import SIZE_MULTIPLE
    dim, inp = sd['patch_embed.proj.weight'].shape[:2]
    num_blocks = [seq_len(sd, s) for s in ('encoder_level1', 'encoder_level2', 'encoder_level3', 'latent')]
    for decoder, level in (('decoder_level3', 2), ('decoder_level2', 1), ('decoder_level1', 0)):
        if seq_len(sd, decoder) != num_blocks[level]:
            raise SpandrelError(f'GLMHARestormer: {decoder} has {seq_len(sd, decoder)} blocks and its encoder '
                                f'{num_blocks[level]} (Restormer mirrors them)')
    heads = [int(sd[f'{s}.0.attn.temperature'].shape[0])
             for s in ('encoder_level1', 'encoder_level2', 'encoder_level3', 'latent')]
    attn = list(layers.values())
    options = dict(inp_channels=int(inp), out_channels=int(sd['output.weight'].shape[0]), dim=int(dim),
                   num_blocks=num_blocks, num_refinement_blocks=seq_len(sd, 'refinement'), heads=heads,
                   ffn_expansion_factor=_ffn_factor(sd, int(dim)),
                   bias='encoder_level1.0.ffn.project_in.bias' in sd,
                   LayerNorm_type='WithBias' if 'encoder_level1.0.norm1.body.bias' in sd else 'BiasFree',
                   dual_pixel_task='skip_conv.weight' in sd,
                   rank=_layer_ranks(attn), **_glmha_options(attn))
    return Recovered(GLMHARestormer(**options), options, [f'{dim}dim', *_rank_tags(attn)], options['inp_channels'],
                     options['out_channels'], SIZE_MULTIPLE)


def _unet_blocks(sd, prefix: str, stage: int) -> List[int]:
    return [seq_len(sd, f'{prefix}encoder_layers.{level}.0.blocks') for level in range(stage)] + \
        [seq_len(sd, f'{prefix}bottleneck.blocks')]


def _spectral_tags(n_feat: int, stage: int, blocks: Sequence[int], attn) -> List[str]:
    return [f'{n_feat}nf', f'{stage}s', 'x'.join(str(b) for b in blocks) + 'b', *_rank_tags(attn)]


def _recover_mst_plus_plus(sd, layers) -> Recovered:
    from ..archs import GLMHAMSTPlusPlus
    from ..archs.mst_plus_plus_arch import SIZE_MULTIPLE
    n_feat, inp = sd['conv_in.weight'].shape[:2]
    stage = seq_len(sd, 'body')
    for s in range(stage):
        if _unet_blocks(sd, f'body.{s}.', 2) != [1, 1, 1]:
            raise SpandrelError(f'GLMHAMSTPlusPlus: body.{s} has {_unet_blocks(sd, f"body.{s}.", 2)} blocks per level '
                                f'(MST++ has one per level and two downsamplings)')
    attn = list(layers.values())
    options = dict(in_channels=int(inp), out_channels=int(sd['conv_out.weight'].shape[0]), n_feat=int(n_feat),
                   stage=stage, rank=_layer_ranks(attn), **_glmha_options(attn))
    return Recovered(GLMHAMSTPlusPlus(**options), options, _spectral_tags(n_feat, stage, [1, 1, 1], attn),
                     options['in_channels'], options['out_channels'], SIZE_MULTIPLE)


def _recover_retinexformer(sd, layers) -> Recovered:
    from ..archs import GLMHARetinexFormer
    from ..archs.retinexformer_arch import LEVELS, SIZE_MULTIPLE
    n_feat = sd['body.0.denoiser.embedding.weight'].shape[0]
    channels = sd['body.0.estimator.conv2.weight'].shape[0]
    stage = seq_len(sd, 'body')
    blocks = _unet_blocks(sd, 'body.0.denoiser.', LEVELS)
    attn = list(layers.values())
    options = dict(in_channels=int(channels), out_channels=int(sd['body.0.denoiser.mapping.weight'].shape[0]),
                   n_feat=int(n_feat), stage=stage, num_blocks=blocks, rank=_layer_ranks(attn),
                   **_glmha_options(attn))
    return Recovered(GLMHARetinexFormer(**options), options, _spectral_tags(n_feat, stage, blocks, attn),
                     options['in_channels'], options['out_channels'], SIZE_MULTIPLE)


def mst_call(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """MST's descriptor call: B x (bands + 1) x H x W, the shifted-back measurement and the coded aperture.

    The aperture (last channel, 1 = open) is tiled over the bands and dispersed into Phi (band i shifted right by
    ``dispersion_step * i`` columns), as the plugin's CASSI simulation makes it; returns B x bands x H x W.
    """
    from ..data.cassi_simulation import disperse
    bands = model.dim
    if image.dim() != 4 or image.shape[1] != bands + 1:
        raise ValueError(f'{type(model).__name__} through spandrel takes B x {bands + 1} x H x W: the {bands}-band '
                         f'shifted-back measurement and the coded aperture (one channel), got {tuple(image.shape)}')
    aperture = image[:, bands:].expand(-1, bands, -1, -1)
    return model(image[:, :bands], disperse(aperture, model.dispersion_step))


def _recover_mst(sd, layers) -> Recovered:
    from ..archs import GLMHAMST
    attn = list(layers.values())
    for layer in attn:
        if layer.mask_rank is not None and layer.mask_rank != layer.rank:
            raise SpandrelError(f'GLMHAMST: {layer.path} has rank {layer.rank} and a {layer.mask_rank}-channel mask '
                                f'branch: a layer swapped into another MST implementation (the plugin\'s GLMHAMST '
                                f'embeds the mask with the rank\'s channels); load it with the network it was swapped '
                                f'in')
    dim = sd['embedding.weight'].shape[0]
    stage = seq_len(sd, 'encoder_layers')
    blocks = _unet_blocks(sd, '', stage)
    # dispersion_step is not in the tensors: the mask branch's shifts are computed, not stored; CASSI's step is 2
    options = dict(dim=int(dim), stage=stage, num_blocks=blocks, rank=_layer_ranks(attn),
                   **_glmha_options(attn))
    return Recovered(GLMHAMST(**options), options, [f'{dim}bands', *_spectral_tags(dim, stage, blocks, attn)[1:],
                                                    'CASSI'], int(dim) + 1, int(dim), 1, mst_call)


def _unet_keys(prefix: str) -> Tuple[str, ...]:
    return (f'{prefix}embedding.weight', f'{prefix}mapping.weight', f'{prefix}bottleneck.blocks.0.0.rescale',
            f'{prefix}encoder_layers.0.0.blocks.0.0.to_q.weight', f'{prefix}encoder_layers.0.1.weight',
            f'{prefix}decoder_layers.0.0.weight', f'{prefix}decoder_layers.0.2.blocks.0.0.rescale')


HOSTS: Tuple[Host, ...] = (
    Host('GLMHARestormer', 'GLMHA Restormer', ('Restormer',),
         ('patch_embed.proj.weight', 'encoder_level1.0.attn.temperature', 'encoder_level1.0.attn.qkv.weight',
          'encoder_level1.0.attn.project_out.weight', 'encoder_level1.0.ffn.project_out.weight',
          'down1_2.body.0.weight', 'latent.0.attn.temperature', 'up4_3.body.0.weight', 'reduce_chan_level3.weight',
          'decoder_level1.0.attn.temperature', 'refinement.0.attn.temperature', 'output.weight'),
         _recover_restormer),
    Host('GLMHARetinexFormer', 'GLMHA Retinexformer', ('RetinexFormer',),
         ('body.0.estimator.conv1.weight', 'body.0.estimator.depth_conv.weight', 'body.0.estimator.conv2.weight',
          'body.0.denoiser.encoder_layers.0.2.weight', *_unet_keys('body.0.denoiser.')),
         _recover_retinexformer),
    Host('GLMHAMSTPlusPlus', 'GLMHA MST++', (),
         ('conv_in.weight', 'conv_out.weight', *_unet_keys('body.0.')), _recover_mst_plus_plus),
    Host('GLMHAMST', 'GLMHA MST (CASSI)', (),
         ('encoder_layers.0.0.blocks.0.0.mm.conv1.weight', 'encoder_layers.0.2.weight', *_unet_keys('')), _recover_mst),
)


# ------------------------------------------------------------------------------------- spandrel's side

@functools.lru_cache(maxsize=None)
def _architecture_class():
    """The ``spandrel.Architecture`` subclass of the GLMHA hosts (made on first use: spandrel is optional)."""
    spandrel = import_spandrel()

    class GLMHAArchitecture(spandrel.Architecture):
        """A GLMHA host in spandrel (:data:`HOSTS`)."""

        def __init__(self, host: Host):
            super().__init__(id=host.arch_id, name=host.name, detect=host.detect)
            self.host = host

        def load(self, state_dict):
            recovered = self.host.build(state_dict)
            return spandrel.ImageModelDescriptor(
                recovered.model, state_dict, architecture=self, purpose='Restoration', tags=recovered.tags,
                supports_half=SUPPORTS_HALF, supports_bfloat16=SUPPORTS_BFLOAT16, scale=1,
                input_channels=recovered.input_channels, output_channels=recovered.output_channels,
                size_requirements=spandrel.SizeRequirements(multiple_of=recovered.multiple_of),
                # the calibration pools the whole image and the attention spans all its pixels: tiles see other
                # statistics than the image
                tiling=spandrel.ModelTiling.DISCOURAGED, call_fn=recovered.call_fn)

    return GLMHAArchitecture


@functools.lru_cache(maxsize=None)
def _architectures() -> tuple:
    cls = _architecture_class()
    return tuple(cls(host) for host in HOSTS)


def register_spandrel(registry=None) -> List[str]:
    """Add the GLMHA architectures to spandrel's registry (``spandrel.MAIN_REGISTRY`` by default); their ArchIds.

    Each is detected before spandrel's own architecture of its host (module docstring), so a GLMHA checkpoint
    loads as GLMHA and a CSA one as before.  Calling it again (or with architectures of the same ids already
    added by this function) changes nothing.  ``registry``: a ``spandrel.ArchRegistry`` of an application that
    keeps its own.
    """
    spandrel = import_spandrel()
    registry = spandrel.MAIN_REGISTRY if registry is None else registry
    cls = _architecture_class()
    for arch in _architectures():
        there = registry.get(arch.id)
        if there is not None and not isinstance(there.architecture, cls):
            raise SpandrelError(f'the spandrel registry already has another architecture with id {arch.id!r} '
                                f'({type(there.architecture).__module__}); the GLMHA architectures were not added')
    registry.add(*(spandrel.ArchSupport.from_architecture(arch, before=arch.host.before) for arch in _architectures()),
                 ignore_duplicates=True)
    return [arch.id for arch in _architectures()]


# ------------------------------------------------------------------------------------- spandrel as a source

@dataclass(frozen=True)
class SpandrelNetwork:
    """What :func:`load_network` loaded: spandrel's descriptor and where the weights came from."""
    path: str
    entry: Optional[str]            # the checkpoint entry (params, params_ema, state_dict, ...); None: top level
    descriptor: object              # the spandrel ModelDescriptor

    @property
    def arch_id(self) -> str:
        return str(self.descriptor.architecture.id)

    @property
    def input_channels(self) -> int:
        return self.descriptor.input_channels

    @property
    def output_channels(self) -> int:
        return self.descriptor.output_channels

    @property
    def glmha(self) -> bool:
        """Loaded by one of this plugin's GLMHA architectures."""
        return isinstance(self.descriptor.architecture, _architecture_class())

    def __str__(self) -> str:
        d = self.descriptor
        entry = f"['{self.entry}']" if self.entry else ''
        size = d.size_requirements
        return (f'{d.architecture.name} ({self.arch_id}) from {self.path}{entry}: {d.input_channels} -> '
                f'{d.output_channels} channels, scale {d.scale}, tags {", ".join(d.tags) or "-"}'
                + (f', sides multiple of {size.multiple_of}' if size.multiple_of > 1 else ''))


def _extra_arches(registry) -> Optional[str]:
    """Add spandrel_extra_arches' architectures (Restormer, ...) when it is installed; its version, or None."""
    try:
        import spandrel_extra_arches
    except ImportError:
        return None
    registry.add(*spandrel_extra_arches.EXTRA_REGISTRY, ignore_duplicates=True)
    return getattr(spandrel_extra_arches, '__version__', '?')


def read_state_dict(path: str, param_key: Optional[str] = None) -> Tuple[Dict[str, torch.Tensor], Optional[str]]:
    """(state_dict or checkpoint container, entry) of a ``.pth`` / ``.ckpt`` / ``.pt`` / ``.safetensors`` file.

    With ``param_key`` that entry is taken (an error lists the top-level keys when it is missing); without it
    the container is returned whole, and the entry is the one spandrel will unwrap (its own order, which
    prefers ``params_ema`` to ``params``).  Plain weights only (``weights_only=True``).
    """
    from ..glue.checkpoints import load_checkpoint
    if not os.path.isfile(path):
        raise SpandrelError(f'checkpoint {path!r} does not exist')
    if path.lower().endswith('.safetensors'):
        from safetensors.torch import load_file
        ckpt = load_file(path)
    else:
        ckpt = load_checkpoint(path)
    if not isinstance(ckpt, Mapping):
        raise SpandrelError(f'{path} holds a {type(ckpt).__name__}, not a state_dict')
    if param_key:
        if not isinstance(ckpt.get(param_key), Mapping):
            raise SpandrelError(f'{path} has no entry {param_key!r} with weights (top-level keys: '
                                f'{sorted(ckpt)[:10]}); choose another --param-key or leave it out')
        return dict(ckpt[param_key]), param_key
    entry = next((k for k in SPANDREL_ENTRIES if isinstance(ckpt.get(k), Mapping)), None)
    return dict(ckpt), entry


def spandrel_versions() -> str:
    spandrel = import_spandrel()
    try:
        import spandrel_extra_arches
        extra = f'spandrel_extra_arches {getattr(spandrel_extra_arches, "__version__", "?")}'
    except ImportError:
        extra = 'without spandrel_extra_arches (Restormer is there: pip install spandrel_extra_arches; its ' \
                'architectures carry non-commercial licences)'
    return f'spandrel {spandrel.__version__}, {extra}'


CSA_TYPES = {'GLMHARestormer': 'Restormer', 'GLMHARetinexFormer': 'RetinexFormer',
             'GLMHAMSTPlusPlus': 'MST_Plus_Plus', 'GLMHAMST': 'MST'}
GLMHA_OPTIONS = ('rank', 'rank_ratio', 'guidance', 'gamma')


def source_block(path: str, param_key: Optional[str] = None) -> Tuple[dict, Optional[str]]:
    """``({'type': <the plugin's CSA host>, **options}, entry)`` of a CSA checkpoint of one of the four hosts, every
    option recovered from its tensors (what spandrel's loaders do), for tools that rebuild the network from an
    option block (``glmha compress``). A checkpoint of another architecture, or an already GLMHA one, is refused."""
    container, entry = read_state_dict(path, param_key)
    state = container[entry] if entry and isinstance(container.get(entry), Mapping) else container
    if not any(all(k in state for k in host.keys) for host in HOSTS):
        raise SpandrelError(f'{path} is not a checkpoint of Restormer, Retinexformer, MST++ or MST (the hosts whose '
                            f'options can be recovered from the tensors); give the network explicitly (--network '
                            f'NAME or module.path:ClassName with --options, or -opt FILE)')
    if is_glmha(state):
        raise SpandrelError(f'{path} already has GLMHA attention (low-rank or guided layers); give the network it was '
                            f'made from and its CSA checkpoint')
    host = next(h for h in HOSTS if all(k in state for k in h.keys))
    try:
        options = host.recover(state, attention_layers(state)).options
    except (ValueError, KeyError, IndexError) as exc:
        raise SpandrelError(f'{path}: cannot recover the {CSA_TYPES[host.arch_id]} options from the tensors '
                            f'({type(exc).__name__}: {exc}); give the network explicitly') from None
    block = {k: v for k, v in options.items() if k not in GLMHA_OPTIONS}
    return dict(block, type=CSA_TYPES[host.arch_id]), entry


def load_network(path: str, param_key: Optional[str] = None, registry=None) -> Tuple[nn.Module, SpandrelNetwork]:
    """The network of any checkpoint spandrel recognises, and what it is: ``(descriptor.model, SpandrelNetwork)``.

    Recognised: spandrel's own architectures, ``spandrel_extra_arches``' when it is installed (Restormer lives
    there), and the GLMHA architectures of :func:`register_spandrel`, from a copy of spandrel's main registry
    (the global one is not changed); or from ``registry`` as it is.  ``param_key`` picks the checkpoint entry
    (else spandrel's order: ``params_ema`` before ``params``).  The module is on the CPU, in float32, in eval mode.
    """
    spandrel = import_spandrel()
    if registry is None:
        registry = spandrel.MAIN_REGISTRY.copy()
        _extra_arches(registry)
        register_spandrel(registry)
    state, entry = read_state_dict(path, param_key)
    try:
        descriptor = registry.load(state)
    except spandrel.UnsupportedModelError:
        raise SpandrelError(f'spandrel recognises no architecture in {path} ({spandrel_versions()}); give the '
                            f'network explicitly') from None
    except (RuntimeError, ValueError, KeyError, AssertionError) as exc:
        if isinstance(exc, SpandrelError):
            raise
        canonical = spandrel.canonicalize_state_dict(state)
        arch = next((a.architecture.id for a in registry.architectures('detection') if a.detect(canonical)), '?')
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        detail = ' '.join(lines[:2])[:160] or type(exc).__name__
        raise SpandrelError(f'spandrel detects {path} as {arch} but cannot load it ({type(exc).__name__}: {detail}); '
                            f'give the network explicitly') from None
    return descriptor.model.eval(), SpandrelNetwork(path, entry, descriptor)

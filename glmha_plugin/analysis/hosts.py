"""The host models the analysis tools know, one :class:`HostSpec` entry each.

A host is everything the complexity report, the benchmark and the spectrum
tool need to know about a network that carries CSA or GLMHA: how to build it
with a given attention, what its inputs look like (extra inputs such as a
mask included), the input sizes its paper reports, the names of its stages
(the groups of attention layers the spectrum tool gives one rank) and the
figures upstream reports.
Adding a host is adding one entry to :data:`HOSTS`.
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import nn

Size = Tuple[int, int, int]  # C x H x W of one input image


@dataclass(frozen=True)
class UpstreamFigure:
    """A complexity figure reported upstream, shown beside ours."""
    size: Size
    params: Optional[float]  # millions
    gmacs: Optional[float]   # G multiply-accumulates (what papers call GFLOPs), as printed upstream
    source: str
    giga: float = 1e9        # what upstream's "G" means (MST's and MST++'s scripts divide by 2**30)
    counts_norms: bool = False  # upstream's total also counts normalisation ops (fvcore: 5 per element)

    def macs(self) -> Optional[float]:
        """The reported figure in plain MACs."""
        return None if self.gmacs is None else self.gmacs * self.giga


# Figures reported upstream, per host name.
UPSTREAM: Dict[str, Tuple[UpstreamFigure, ...]] = {
    'restormer': (UpstreamFigure(
        size=(3, 256, 256), params=26.13, gmacs=140.99,
        source="figure quoted for Restormer by follow-up papers (e.g. WeatherDiff, TPAMI 2023); Restormer's authors "
               'compute FLOPs at 256x256 (swz30/Restormer issue #19). It equals our count minus the q k^T and A v '
               'products, i.e. it leaves them out'),),
    'mst_l': (UpstreamFigure(
        size=(28, 256, 256), params=2.03, gmacs=28.15, giga=2 ** 30, counts_norms=True,
        source='caiyuanhao1998/MST README (MST-L); its my_summary(MST(), 256, 256, 28, 1) prints fvcore '
               'FlopCountAnalysis total / 2**30 (fvcore also counts layer norms, 5 ops per element). fvcore 0.1.5 '
               'on the official class (CPU, zero mask as upstream) prints 25.60 and 2,018,156 parameters, i.e. '
               'ours; the README figures could not be reproduced'),),
    'mst_plus_plus': (UpstreamFigure(
        size=(3, 256, 256), params=1.62, gmacs=23.05, giga=2 ** 30, counts_norms=True,
        source='caiyuanhao1998/MST-plus-plus README; its my_summary(MST_Plus_Plus(), 256, 256, 3, 1) prints fvcore '
               'FlopCountAnalysis total / 2**30 (fvcore also counts layer norms, 5 ops per element). fvcore 0.1.5 '
               'on the official class (CPU) prints 20.76, i.e. ours; the README figure could not be reproduced'),),
    'retinexformer': (UpstreamFigure(
        size=(3, 256, 256), params=1.61, gmacs=15.57, giga=2 ** 30, counts_norms=True,
        source='Retinexformer paper (ICCV 2023, Table 1) and caiyuanhao1998/Retinexformer README; its arch file '
               'prints fvcore FlopCountAnalysis total / 2**30 for RetinexFormer(stage=1, n_feat=40, num_blocks=[1, 2, '
               '2]) on 1 x 3 x 256 x 256 (fvcore also counts layer norms, 5 ops per element). fvcore 0.1.5 on the '
               'official class (CPU) prints 15.568 and 1,605,701 parameters, i.e. ours'),),
}


@dataclass(frozen=True)
class HostSpec:
    """One host network.

    Attributes:
        name: short name used on command lines (``--host``).
        arch: registered name of the CSA model in basicsr's ``ARCH_REGISTRY``.
        build: ``build(**options) -> nn.Module``; options are the attention
            options (``attention``, ``rank_ratio``, ``rank``, ``guidance``,
            ``gamma``) plus constructor overrides (e.g. :attr:`tiny`).
        make_inputs: ``make_inputs(size, batch, device) -> tuple`` of the
            tensors the forward takes, for a ``size`` = C x H x W image.
        paper_sizes: input sizes the host's papers report complexity at.
        stages: names of the transformer stages (Restormer's: module-path
            prefixes of its attention layers; U-Net levels for the spectral hosts).
        upstream: figures reported upstream, for the report.
        tiny: constructor overrides for a seconds-long model (tests, demos).
        default_options: constructor options of the paper's model (written
            into generated option files).
        other_archs: further registered names of the same network (e.g. its
            GLMHA-by-default twin), to recognise option files.
        from_images: ``from_images(B x 3 x H x W RGB in [0, 1]) -> tuple`` of
            forward inputs, for tools that feed real photos; None when the
            photo itself is the input.
        stages_are_levels: the stages are the U-Net levels, named ``level0``,
            ``level1``, ... after the attention layers' ``level`` (a level's
            rank is written onto the module paths of its blocks).
        in_channels: ``in_channels(model) -> C`` of a built model's input
            image (for :attr:`make_inputs`); None: the first paper size's C.
    """
    name: str
    arch: str
    build: Callable[..., nn.Module]
    make_inputs: Callable[[Size, int, torch.device], tuple]
    paper_sizes: Tuple[Size, ...]
    stages: Tuple[str, ...]
    upstream: Tuple[UpstreamFigure, ...] = ()
    tiny: Dict = field(default_factory=dict)
    default_options: Dict = field(default_factory=dict)
    other_archs: Tuple[str, ...] = ()
    from_images: Optional[Callable[[torch.Tensor], tuple]] = None
    stages_are_levels: bool = False
    in_channels: Optional[Callable[[nn.Module], int]] = None

    def input_channels(self, model: nn.Module) -> int:
        """C of the images ``model`` (built from this host) takes."""
        return self.paper_sizes[0][0] if self.in_channels is None else self.in_channels(model)

    def stage_of(self, module_name: str) -> Optional[str]:
        """The stage a submodule belongs to (first dotted component), or None."""
        head = module_name.split('.', 1)[0]
        return head if head in self.stages else None

    def stage_namer(self, model: nn.Module) -> Callable[[str], Optional[str]]:
        """``name -> stage`` for the submodules of a built ``model`` (``levelL`` for per-level hosts)."""
        if not self.stages_are_levels:
            return self.stage_of
        levels = {name: m.level for name, m in model.named_modules() if isinstance(getattr(m, 'level', None), int)}
        return lambda name: f'level{levels[name]}' if name in levels else None

    def rank_option(self, ranks: Dict[str, int], model: nn.Module) -> Dict[str, int]:
        """The ``rank`` option of ``model`` (this host's) in the per-layer format ``{module-path prefix: rank}``
        (:mod:`glmha_plugin.layers.ranks`), for per-stage ranks ``{stage: rank}`` (:meth:`stage_namer`'s names).

        Restormer's stages are module-path prefixes already; a spectral host's per-level ranks go onto every
        U-Net's blocks of that level (:func:`glmha_plugin.archs.spectral_unet.per_level`).
        """
        if not self.stages_are_levels:
            return dict(ranks)
        from ..archs.spectral_unet import SpectralUNet, per_level
        levels = sorted(int(name[len('level'):]) for name in ranks)
        if levels != list(range(len(levels))):
            raise ValueError(f'ranks for levels {levels}: every level from 0 up needs one')
        unets = {name: m.stage for name, m in model.named_modules() if isinstance(m, SpectralUNet)}
        return per_level([ranks[f'level{level}'] for level in levels], 'rank', unets)


def _image_inputs(size: Size, batch: int, device) -> tuple:
    return (torch.rand(batch, *size, device=device),)


def _build_restormer(**options) -> nn.Module:
    from ..archs import Restormer
    return Restormer(**options)


def _restormer() -> HostSpec:
    from ..archs import RESTORMER_STAGES
    return HostSpec(
        name='restormer',
        arch='Restormer',
        build=_build_restormer,
        make_inputs=_image_inputs,
        paper_sizes=((3, 256, 256),),
        stages=tuple(RESTORMER_STAGES),
        upstream=UPSTREAM['restormer'],
        tiny=dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 2, 4, 8],
                  ffn_expansion_factor=2.0),
        other_archs=('GLMHARestormer',),
        in_channels=lambda model: model.inp_channels,
        default_options=dict(inp_channels=3, out_channels=3, dim=48, num_blocks=[4, 6, 6, 8],
                             num_refinement_blocks=4, heads=[1, 2, 4, 8], ffn_expansion_factor=2.66, bias=False,
                             LayerNorm_type='WithBias', dual_pixel_task=False),
    )


def _toolbox_host(method: str, **fields) -> HostSpec:
    """A host built like the MST / MST++ toolboxes' ``method`` (``glmha_plugin.glue.mst_toolbox.METHODS``),
    its stages the U-Net levels."""
    from ..glue.mst_toolbox import GLMHA_PREFIX, METHODS
    from ..registry import SPECTRAL_MODELS
    type_name, options = METHODS[method]

    def build(**overrides) -> nn.Module:
        return SPECTRAL_MODELS.build(dict(options, type=type_name, **overrides))

    return HostSpec(name=method, arch=type_name, build=build, upstream=UPSTREAM[method], default_options=dict(options),
                    other_archs=(METHODS[GLMHA_PREFIX + method][0],), stages=('level0', 'level1', 'level2'),
                    stages_are_levels=True, **fields)


def _cassi_inputs(size: Size, batch: int, device) -> tuple:
    """(H, Phi) of random scenes seen through one random binary coded aperture, simulated as MST trains."""
    from ..data.cassi_simulation import simulate
    c, h, w = size
    mask = (torch.rand(1, 1, h, w, device=device) > 0.5).float()
    return simulate(torch.rand(batch, c, h, w, device=device), mask)


CASSI_BANDS = 28


def rgb_to_bands(rgb: torch.Tensor, bands: int) -> torch.Tensor:
    """A smooth ``bands``-band stand-in scene from RGB: B x 3 x H x W -> B x bands x H x W.

    Band j interpolates linearly between the blue, green and red channels,
    placed at the first, middle and last band (CASSI's 28 bands span about
    450 to 650 nm); for feeding photos to MST, not a spectral reconstruction.
    """
    pos = torch.linspace(0, 2, bands, dtype=rgb.dtype, device=rgb.device)   # 0 = blue, 1 = green, 2 = red
    lo = pos.floor().clamp(max=1).long()
    frac = (pos - lo).view(1, bands, 1, 1)
    bgr = rgb.flip(1)
    return bgr[:, lo] * (1 - frac) + bgr[:, lo + 1] * frac


def _cassi_from_images(rgb: torch.Tensor) -> tuple:
    """(H, Phi) of :func:`rgb_to_bands` scenes through a fixed random binary mask (seed 0)."""
    from ..data.cassi_simulation import simulate
    gen = torch.Generator().manual_seed(0)
    mask = (torch.rand(1, 1, *rgb.shape[-2:], generator=gen) > 0.5).to(rgb)
    return simulate(rgb_to_bands(rgb, CASSI_BANDS), mask)


def _mst_l() -> HostSpec:
    return _toolbox_host('mst_l', make_inputs=_cassi_inputs, paper_sizes=((CASSI_BANDS, 256, 256),),
                         tiny=dict(num_blocks=[1, 1, 1]), from_images=_cassi_from_images,
                         in_channels=lambda model: model.dim)


def _mst_plus_plus() -> HostSpec:
    return _toolbox_host('mst_plus_plus', make_inputs=_image_inputs, paper_sizes=((3, 256, 256), (3, 482, 512)),
                         tiny=dict(n_feat=8, out_channels=8, stage=1), in_channels=lambda model: model.in_channels)


def _build_retinexformer(**options) -> nn.Module:
    from ..archs import RetinexFormer
    return RetinexFormer(**options)


def _low_light_from_images(rgb: torch.Tensor) -> tuple:
    """Photos darkened like under-exposed shots (:func:`glmha_plugin.demo.lowlight.darken`), Retinexformer's input."""
    from ..demo.lowlight import darken
    return (darken(rgb),)


def _retinexformer() -> HostSpec:
    from ..archs.retinexformer_arch import PUBLISHED
    return HostSpec(
        name='retinexformer',
        arch='RetinexFormer',
        build=lambda **options: _build_retinexformer(**dict(PUBLISHED, **options)),
        make_inputs=_image_inputs,
        paper_sizes=((3, 256, 256),),
        stages=('level0', 'level1', 'level2'),
        upstream=UPSTREAM['retinexformer'],
        tiny=dict(n_feat=8, num_blocks=[1, 1, 1]),
        default_options=dict(PUBLISHED),
        other_archs=('GLMHARetinexFormer',),
        from_images=_low_light_from_images,
        stages_are_levels=True,
        in_channels=lambda model: model.in_channels,
    )


HOSTS: Dict[str, Callable[[], HostSpec]] = {
    'restormer': _restormer,
    'mst_l': _mst_l,                  # MST-L, 28 x 256 x 256 plus its dispersed mask Phi
    'mst_plus_plus': _mst_plus_plus,  # MST++, 3 x 256 x 256 and 3 x 482 x 512 (ARAD-1K's full size)
    'retinexformer': _retinexformer,  # Retinexformer (LOL configuration), 3 x 256 x 256
}


def get_host(name: str) -> HostSpec:
    """The :class:`HostSpec` called ``name``; a clear error lists the known hosts."""
    try:
        return HOSTS[name]()
    except KeyError:
        raise ValueError(f'unknown host {name!r}; known hosts: {", ".join(sorted(HOSTS))}') from None


def host_archs() -> Dict[str, HostSpec]:
    """Every registered architecture of every host (its CSA network, then its twins) -> that host."""
    return {arch: host for host in (make() for make in HOSTS.values()) for arch in (host.arch, *host.other_archs)}


def host_for_arch(arch: str) -> HostSpec:
    """The host whose registered name (or twin) is ``arch``; a clear error otherwise."""
    archs = host_archs()
    if arch not in archs:
        raise ValueError(f'network type {arch!r} is not a known host network; known: {", ".join(sorted(archs))}')
    return archs[arch]


def attention_variants(ratios=(0.25, 0.5, 0.75), guidances=('calibration', 'none')) -> Dict[str, Dict]:
    """Attention options of the report's variants: CSA, then GLMHA per rank ratio and guidance.

    Returns ``{label: options}``, e.g. ``{'CSA': {'attention': 'csa'},
    'GLMHA r=0.5 calibration': {'attention': 'glmha', 'rank_ratio': 0.5, 'guidance': 'calibration'}}``.
    """
    variants = {'CSA': {'attention': 'csa'}}
    for ratio in ratios:
        for guidance in guidances:
            variants[f'GLMHA r={ratio:g} {guidance}'] = {'attention': 'glmha', 'rank_ratio': ratio,
                                                          'guidance': guidance}
    return variants

"""ONNX export of every registered architecture, checked against the eager model with onnxruntime.

    glmha export --opt options/test_Deraining_GLMHA.yml --weights net_g_latest.pth --out glmha_restormer.onnx
    glmha export --type GLMHAMST --options '{stage: 2, num_blocks: [1, 1, 1]}' --out mst.onnx
    glmha export --type GLMHAMSTPlusPlus --tiny --out mstpp.onnx --fp16
    glmha export --list                                     # the architectures it knows

(``glmha export`` is the same command.)  The graph has a dynamic
batch, height and width (from :data:`MIN_SIDE` pixels up, any size: the
networks' internal padding to a multiple of 8 or 2^stage is part of the
graph).  The network's inputs come from its host's entry in
:data:`glmha_plugin.analysis.hosts.HOSTS` (``make_inputs``) and are named
after its ``forward`` arguments: ``inp_img`` (Restormer), ``x`` (MST++),
``x`` and ``mask`` (MST: the shifted-back measurement B x 28 x H x W and the
dispersed mask Phi B x 28 x H x (W + 54)); the output is ``output``.  A host
added to that table (one entry) is exported and tested like the others.

After writing the file the command runs it with onnxruntime on
:data:`CHECK_SIZES` (one needs padding, one does not; batches 1 and 2) and
compares with the eager PyTorch model: the largest absolute difference is
printed, and the command fails (exit 1) above :data:`TOLERANCE` (1e-4 for
float32).  ``--fp16`` exports the network in half precision (weights and
inputs float16; the float32 islands of :mod:`glmha_plugin.layers.float32_islands`
stay float32 in the graph) and compares with the float32 eager model
relative to the output's range.  Needs the ``export`` extra
(``pip install glmha-plugin[export]``: onnx, onnxruntime, onnxscript).
"""
import argparse
import copy
import inspect
import logging
import os
import os.path as osp
import sys
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
import yaml
from torch import nn

from ..analysis.hosts import HostSpec
from ..analysis.hosts import host_archs as registered_archs  # every exportable registered name -> its host
from ..errors import UsageError
from ..glue.checkpoints import load_into
from ..glue.option_files import load_options

EXPORT_SIZE = (2, 24, 20)            # batch, H, W traced (no size 1: torch.export would fix such a dimension)
CHECK_SIZES = ((1, 19, 27), (2, 32, 40))  # batch, H, W run with onnxruntime: the first needs padding
MIN_SIDE = 16                        # smallest H and W the graph accepts (>= every host's padding multiple)
TOLERANCE = {torch.float32: 1e-4,    # largest absolute difference to the eager model
             torch.float16: 1e-2}    # float16: relative to the largest absolute output value
OUTPUT_NAME = 'output'
SWAP_BUILDER = 'GLMHASwap'         # any host's network with its attention swapped (glmha_plugin.swap.attention_swap)


def host_of(arch: str, options: Optional[dict] = None) -> HostSpec:
    """The host whose inputs ``arch`` takes; ``GLMHASwap`` takes those of its ``base`` network."""
    if arch == SWAP_BUILDER:
        base = (options or {}).get('base')
        if not isinstance(base, dict) or 'type' not in base:
            raise UsageError(f'{SWAP_BUILDER} wraps another network: give its options with base: {{type: ..., ...}}')
        return host_of(base['type'], base)
    archs = registered_archs()
    if arch not in archs:
        raise UsageError(f'network type {arch!r} cannot be exported: known types are '
                         f'{", ".join(sorted(archs) + [SWAP_BUILDER])}')
    return archs[arch]


def build_network(arch: str, options: dict, weights: Optional[str] = None,
                  param_key: Optional[str] = None) -> nn.Module:
    """The registered network ``arch(**options)`` in eval mode, with ``weights`` loaded strictly if given."""
    from basicsr.utils.registry import ARCH_REGISTRY
    host_of(arch, options)
    try:
        model = ARCH_REGISTRY.get(arch)(**options)
    except (TypeError, ValueError) as exc:
        raise UsageError(f'{arch}({options}): {exc}') from None
    if weights:
        load_into(model, weights, param_key)
    return model.eval()


def example_inputs(host: HostSpec, model: nn.Module, batch: int, height: int, width: int,
                   dtype: torch.dtype = torch.float32, seed: int = 0) -> Tuple[torch.Tensor, ...]:
    """The forward inputs of ``model`` for ``batch`` images of ``height`` x ``width`` (the host's make_inputs)."""
    torch.manual_seed(seed)
    size = (host.input_channels(model), height, width)
    return tuple(t.to(dtype) for t in host.make_inputs(size, batch, torch.device('cpu')))


def input_names(model: nn.Module, count: int) -> List[str]:
    """The names of the first ``count`` arguments of ``model.forward``."""
    return list(inspect.signature(model.forward).parameters)[:count]


def dynamic_shapes(inputs: Sequence[torch.Tensor]) -> tuple:
    """Batch, height and width of every (B x C x H x W) input dynamic; H and W from :data:`MIN_SIDE` up."""
    from torch.export import Dim
    side = Dim.DYNAMIC(min=MIN_SIDE)
    return tuple({0: Dim.DYNAMIC, 2: side, 3: side} for _ in inputs)


def export_onnx(model: nn.Module, inputs: Tuple[torch.Tensor, ...], path: str) -> List[str]:
    """Write ``model`` traced on ``inputs`` to ``path`` (dynamic batch, H, W); returns the input names."""
    names = input_names(model, len(inputs))
    logging.getLogger('onnxscript').setLevel(logging.ERROR)   # constant-folding notes, one per Split node
    with torch.no_grad():
        torch.onnx.export(model, inputs, path, dynamo=True, input_names=names, output_names=[OUTPUT_NAME],
                          dynamic_shapes=dynamic_shapes(inputs), verbose=False)
    return names


@dataclass
class Check:
    """One onnxruntime run against the eager model."""
    shapes: List[Tuple[int, ...]]
    max_abs_diff: float
    max_abs_ref: float
    error: float      # max_abs_diff (float32) or max_abs_diff / max_abs_ref (float16)
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.error <= self.tolerance


def check_onnx(path: str, model: nn.Module, host: HostSpec, dtype: torch.dtype = torch.float32,
               sizes: Sequence[Tuple[int, int, int]] = CHECK_SIZES) -> List[Check]:
    """Run the ONNX file with onnxruntime (CPU) on ``sizes`` (batch, H, W) and compare with float32 ``model``."""
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    names = [i.name for i in session.get_inputs()]
    checks = []
    for batch, height, width in sizes:
        inputs = example_inputs(host, model, batch, height, width, seed=batch * 1000 + height)
        with torch.no_grad():
            ref = model(*inputs).numpy()
        out = session.run([OUTPUT_NAME], {n: t.to(dtype).numpy() for n, t in zip(names, inputs, strict=True)})[0]
        if out.shape != ref.shape:
            raise AssertionError(f'{path}: onnxruntime gave shape {out.shape} for inputs '
                                 f'{[tuple(t.shape) for t in inputs]}, the model {ref.shape}')
        diff = float(abs(out.astype('float64') - ref).max())
        scale = float(abs(ref).max())
        error = diff if dtype == torch.float32 else diff / max(scale, 1e-12)
        checks.append(Check([tuple(t.shape) for t in inputs], diff, scale, error, TOLERANCE[dtype]))
    return checks


def export_and_check(model: nn.Module, host: HostSpec, path: str, fp16: bool = False) -> List[Check]:
    """Export ``model`` (float32, eval) to ``path`` (float16 with ``fp16``) and check it (:func:`check_onnx`)."""
    dtype = torch.float16 if fp16 else torch.float32
    batch, height, width = EXPORT_SIZE
    export_model = copy.deepcopy(model).half() if fp16 else model
    export_onnx(export_model, example_inputs(host, model, batch, height, width, dtype), path)
    return check_onnx(path, model, host, dtype)


def _parse_options(text: Optional[str]) -> dict:
    if not text:
        return {}
    try:
        options = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f'--options is not valid YAML/JSON: {exc}') from None
    if not isinstance(options, dict):
        raise UsageError(f"--options must be a mapping, e.g. '{{dim: 8}}', got {text!r}")
    return options


def network_spec(args) -> Tuple[str, dict]:
    """(registered type, constructor options) from --opt (network_g) or --type/--options/--tiny."""
    if args.opt:
        if args.type or args.options or args.tiny:
            raise UsageError('give either --opt or --type (with --options / --tiny), not both')
        net = dict(load_options(args.opt).get('network_g') or {})
        if 'type' not in net:
            raise UsageError(f'{args.opt}: network_g.type is missing')
        return net.pop('type'), net
    if not args.type:
        raise UsageError('give --opt OPTION.yml (its network_g) or --type NAME (see --list)')
    given = _parse_options(args.options)
    host = host_of(args.type, given)
    if args.tiny and args.type == SWAP_BUILDER:
        raise UsageError(f'--tiny: {SWAP_BUILDER} has no tiny configuration of its own; give its base network '
                         f"with --options '{{base: {{type: ..., ...}}}}'")
    options = dict(host.tiny) if args.tiny else {}
    options.update(given)
    return args.type, options


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    src = parser.add_argument_group('network')
    src.add_argument('--opt', help='option YAML whose network_g is exported')
    src.add_argument('--type', help='registered network type (instead of --opt), e.g. GLMHARestormer')
    src.add_argument('--options', help="constructor options for --type, YAML or JSON, e.g. '{dim: 8}'")
    src.add_argument('--tiny', action='store_true', help="with --type: the host's tiny configuration (tests)")
    src.add_argument('--weights', help='checkpoint to load, strict (default: random initialisation)')
    src.add_argument('--param-key', default=None, help="key of the weights in the checkpoint (default: 'params', "
                                                       "'params_ema', 'state_dict' ... whichever is there)")
    parser.add_argument('--out', help='ONNX file to write (default: <type>.onnx)')
    parser.add_argument('--fp16', action='store_true', help='export in float16 (weights and inputs)')
    parser.add_argument('--list', action='store_true', help='list the architectures that can be exported')
    args = parser.parse_args(argv)
    if args.list:
        for arch, host in sorted(registered_archs().items()):
            print(f'{arch:20s} host {host.name}')
        print(f'{SWAP_BUILDER:20s} host of its base network')
        return 0
    try:
        arch, options = network_spec(args)
        host = host_of(arch, options)
        model = build_network(arch, options, args.weights, args.param_key)
        out = args.out or f'{arch}.onnx'
        if osp.dirname(out):
            os.makedirs(osp.dirname(out), exist_ok=True)
    except UsageError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(f'exporting {arch} ({"float16" if args.fp16 else "float32"}, '
          f'{"weights " + args.weights if args.weights else "random initialisation"}) to {out}')
    checks = export_and_check(model, host, out, args.fp16)
    for c in checks:
        what = 'max |diff|' if not args.fp16 else f'max |diff| / max |output| ({c.max_abs_ref:.3g})'
        print(f'  onnxruntime vs eager, inputs {" + ".join("x".join(map(str, s)) for s in c.shapes)}: '
              f'{what} = {c.error:.3g} ({"ok" if c.ok else "FAILED"}, tolerance {c.tolerance:g})')
    if not all(c.ok for c in checks):
        print(f'error: {out} differs from the eager model by more than the tolerance', file=sys.stderr)
        return 1
    print(f'wrote {out} ({osp.getsize(out) / 2**20:.1f} MiB); inputs '
          f'{", ".join(input_names(model, len(checks[0].shapes)))}, output {OUTPUT_NAME}, dynamic batch, height '
          f'and width (>= {MIN_SIDE})')
    return 0

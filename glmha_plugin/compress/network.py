"""The network to compress, from the command line: the one place that turns the network arguments into a module.

A network is described by a ``network_g``-style block (``{'type': ..., **options}``) whose ``type`` is a
name registered in basicsr's ``ARCH_REGISTRY`` or an importable ``module.path:ClassName``;
:func:`build_from_block` builds it (the distillation model builds its teacher the same way).  The command's
``--network`` / ``--options`` / ``-opt`` arguments and the trained weights (``--weights``, ``--param-key``)
become a :class:`NetworkSource` in :func:`network_from_args`: other ways of naming a network (e.g. a model
file recognised by its weights) plug in there.
"""
import json
import os.path as osp
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ..archs import blocks
from ..errors import CheckpointError, UsageError

INPUT_KEYS = ('inp_channels', 'in_channels', 'in_nc', 'num_in_ch', 'in_ch', 'in_dim')


class CompressError(UsageError, ValueError):
    """A problem with the compress command's input; printed as one line, before anything is written."""


@dataclass
class NetworkSource:
    """The trained network and how to rebuild it: ``block`` (``network_g`` style), the weights file and key."""
    module: nn.Module
    block: dict
    weights: str
    param_key: str

    @property
    def in_channels(self) -> int:
        return int(next((self.block[k] for k in INPUT_KEYS if k in self.block), 3))


def network_class(name: str):
    """The class of a network type (a registered name or ``module.path:ClassName``); :class:`CompressError`."""
    try:
        return blocks.network_class(name)
    except ValueError as exc:
        raise CompressError(str(exc)) from None


def build_from_block(block: dict) -> nn.Module:
    """The network of a ``network_g``-style block: a registered ``type`` or ``module.path:ClassName``."""
    try:
        return blocks.build_from_block(block)
    except ValueError as exc:
        raise CompressError(str(exc)) from None


def network_block(network: Optional[str], options: Optional[str], opt_file: Optional[str]) -> dict:
    """``{'type': ..., **options}`` from ``-opt FILE`` (its ``network_g``) or ``--network`` / ``--options``."""
    if opt_file:
        import yaml
        if network:
            raise CompressError('give the network once: --network or -opt, not both')
        if not osp.isfile(opt_file):
            raise CompressError(f'option file {opt_file!r} does not exist')
        with open(opt_file, encoding='utf-8') as f:
            block = (yaml.safe_load(f) or {}).get('network_g')
        if not isinstance(block, dict) or 'type' not in block:
            raise CompressError(f'{opt_file!r} has no network_g block with a type')
        return dict(block)
    if not network:
        raise CompressError('give the network: --network NAME (registered) or module.path:ClassName, or -opt FILE')
    try:
        kwargs = json.loads(options) if options else {}
    except json.JSONDecodeError as exc:
        raise CompressError(f'--options: not valid JSON ({exc}): {options!r}') from None
    if not isinstance(kwargs, dict):
        raise CompressError(f'--options must be a JSON object of keyword arguments, got {options!r}')
    return dict(kwargs, type=network)


def load_weights(net: nn.Module, weights: str, param_key: str) -> None:
    """Load ``weights`` strict into ``net``; a mismatch names the keys."""
    from ..glue.checkpoints import load_into
    if not osp.isfile(weights):
        raise CompressError(f'--weights {weights!r} does not exist')
    try:
        load_into(net, weights, param_key, strict=True)
    except CheckpointError as exc:
        raise CompressError(f'the teacher checkpoint does not fit the network: {exc} Check --network / --options '
                            f'(or -opt) and --param-key') from None


SPANDREL = 'spandrel'


def recognised_block(args) -> dict:
    """``--network spandrel`` (or neither ``--network`` nor ``-opt``): the block of the plugin's CSA host that the
    checkpoint is, every option recovered from its tensors (:func:`glmha_plugin.deploy.spandrel.source_block`)."""
    from ..deploy.spandrel import SpandrelError, source_block
    if args.opt or args.options:
        raise CompressError('--network spandrel recovers the network from the checkpoint: leave out --options and '
                            '-opt')
    try:
        block, _ = source_block(args.weights, args.param_key)
    except SpandrelError as exc:
        raise CompressError(str(exc)) from None
    print(f'compress: {args.weights} is a {block["type"]} checkpoint: '
          + ', '.join(f'{k}={v}' for k, v in block.items() if k != 'type'), flush=True)
    return block


def network_from_args(args) -> NetworkSource:
    """The trained (teacher) network of the command line, weights loaded, in eval mode."""
    if not osp.isfile(args.weights):
        raise CompressError(f'--weights {args.weights!r} does not exist')
    if args.network == SPANDREL or not (args.network or args.opt):
        block = recognised_block(args)
    else:
        block = network_block(args.network, args.options, args.opt)
    net = build_from_block(block)
    load_weights(net, args.weights, args.param_key)
    return NetworkSource(net.eval(), block, osp.abspath(args.weights), args.param_key)


def frozen(net: nn.Module) -> nn.Module:
    """``net`` in eval mode without gradients (a teacher)."""
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def run_network(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = net(x)
    if not isinstance(out, torch.Tensor):
        raise CompressError(f'{type(net).__name__} returns {type(out).__name__}, not one image tensor; compress '
                            f'needs a network that maps one image batch to one image batch')
    return out

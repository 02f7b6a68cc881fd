"""Bytes moved by a model's operators: the memory-traffic model of the benchmark.

On a CPU much of a network's time is spent streaming activations through
memory, not multiplying; element-wise ops, norms, depth-wise convolutions and
the projections with few input channels run at memory speed.  The MAC ratio
of two networks is then not the ratio their times can reach: the ratio of the
bytes their operators move is the floor of a memory-bound machine.

The model (:func:`bytes_moved`): one forward pass (no grad) is run under a
``TorchDispatchMode`` that sees every ATen operator after autograd and
autocast (so exactly the operators the layers' current path runs, with their
real shapes, strides and dtypes).  Each operator

* reads every tensor operand once: the elements it addresses (a broadcast,
  stride-0 dimension counts once) times the element size;
* writes every tensor result once, counted the same way;
* views, reshapes without copies and allocations (``is_view`` operators,
  ``_unsafe_view``, ``empty*``, ``detach``, ``alias``) move nothing.

Caches are ignored in both directions: a tensor an operator re-reads (a GEMM
reading its tiles again) counts once, and a tensor written by one operator
and read by the next counts twice even when it is still in cache.  The model
is the same for both networks compared, and the ratio of the totals is what
the benchmark prints next to the MAC ratio.
"""
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, Sequence, Union

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

FREE_OPS = frozenset({'_unsafe_view', 'empty', 'empty_like', 'empty_strided', 'new_empty', 'new_empty_strided',
                      'detach', 'alias', 'lift_fresh', 'resize_', 'set_'})


def addressed_bytes(t: torch.Tensor) -> int:
    """Bytes of the distinct elements a tensor addresses (stride-0, broadcast dimensions count once)."""
    n = 1
    for size, stride in zip(t.shape, t.stride(), strict=True):
        if stride != 0:
            n *= size
    return n * t.element_size()


@dataclass
class Traffic:
    """Result of :func:`bytes_moved`: total bytes and bytes per ATen operator name."""
    total: int
    by_op: Dict[str, int] = field(repr=False)
    calls: int = 0


class _Counter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.by_op, self.calls = Counter(), 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if func.is_view or name in FREE_OPS:
            return out
        operands, _ = tree_flatten((args, kwargs))
        results, _ = tree_flatten(out)
        moved = sum(addressed_bytes(t) for t in operands + results if isinstance(t, torch.Tensor))
        self.by_op[name] += moved
        self.calls += 1
        return out


def bytes_moved(model: nn.Module, inputs: Union[torch.Tensor, Sequence[torch.Tensor]]) -> Traffic:
    """Bytes read and written by the operators of one forward pass of ``model`` (no grad), module docstring."""
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    counter = _Counter()
    with torch.no_grad(), counter:
        model(*inputs)
    return Traffic(sum(counter.by_op.values()), dict(counter.by_op), counter.calls)

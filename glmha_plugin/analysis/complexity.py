"""Parameters and multiply-accumulates (MACs) of a model, with every traced op accounted for.

Counting is done by mmengine's :class:`~mmengine.analysis.FlopAnalyzer` (a
jit trace of one forward pass) with an explicit rule for every operator
kind this package knows (:data:`OP_RULES`), in one of three categories:

* ``mac``: multiply-accumulates of convolutions, linear layers and matrix
  products, one fused multiply-add = 1 MAC, biases ignored (mmengine's own
  handles; the figure papers in this field call "FLOPs").
* ``other``: element-wise arithmetic, reductions, normalisation, softmax,
  pooling, counted separately as plain operations with the per-element rule
  stated next to each op in :data:`OP_RULES`.  They are *not* part of the MAC
  total.
* ``free``: data movement without arithmetic (views, reshapes,
  concatenation, padding, pixel (un)shuffle); counted as zero.

An op kind with no rule is reported as *unclassified* (never silently
dropped): :class:`Complexity` lists it with its number of calls and the
report tools print it as a warning.
"""
import warnings
from collections import Counter
from dataclasses import dataclass, field
from math import prod
from typing import Callable, Dict, Iterable, List, Sequence, Tuple, Union

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import (
    addmm_flop_jit,
    bmm_flop_jit,
    conv_flop_jit,
    einsum_flop_jit,
    get_shape,
    linear_flop_jit,
    matmul_flop_jit,
    norm_flop_counter,
)
from torch import nn

MAC, OTHER, FREE = 'mac', 'other', 'free'
CONVENTION = ('MACs: multiply-accumulates of convolutions, linear layers and matrix products (1 fused multiply-add '
              '= 1 MAC, biases ignored), counted by mmengine FlopAnalyzer; papers in this field report this figure as '
              '"FLOPs". Other ops (element-wise, reductions, normalisation, softmax) are counted separately under the '
              'stated per-element rules and are not included in the MACs.')


@dataclass(frozen=True)
class OpRule:
    """How one traced operator kind is counted."""
    category: str  # MAC | OTHER | FREE
    rule: str      # human-readable counting rule
    handle: Callable = None  # mmengine-style handle(inputs, outputs) -> number; None for FREE


def _numel(value) -> int:
    shape = get_shape(value)
    return prod(shape) if shape is not None else 0


def _per_output(k: float) -> Callable:
    return lambda inputs, outputs: k * _numel(outputs[0])


def _per_input(k: float) -> Callable:
    return lambda inputs, outputs: k * _numel(inputs[0])


def _baddbmm(inputs, outputs):
    return bmm_flop_jit(inputs[1:3], outputs)


def _var_mean(inputs, outputs):
    return 3 * _numel(inputs[0])


_ELEMENTWISE_1 = ('add', 'add_', 'sub', 'sub_', 'rsub', 'mul', 'mul_', 'div', 'div_', 'neg', 'abs', 'relu', 'relu_',
                  'gelu', 'sigmoid', 'silu', 'tanh', 'exp', 'log', 'sqrt', 'rsqrt', 'reciprocal', 'pow', 'square',
                  'clamp', 'clamp_', 'clamp_min', 'clamp_max', 'leaky_relu', 'leaky_relu_', 'hardtanh', 'maximum',
                  'minimum',
                  'where', 'sign', 'floor', 'round', 'masked_fill', 'elu', 'eq', 'ne', 'ge', 'gt', 'le', 'lt',
                  '__and__', '__or__', 'bitwise_not', 'logical_not', 'remainder', 'floor_divide')
_FREE = ('view', 'reshape', 'flatten', 'unflatten', 'permute', 'transpose', 't', 'contiguous', 'expand',
         'expand_as', 'squeeze', 'unsqueeze', 'unsqueeze_', 'select', 'slice', 'narrow', 'split', 'split_with_sizes',
         'chunk', 'unbind', 'cat', 'stack', 'constant_pad_nd', 'pad', 'reflection_pad2d', 'replication_pad2d',
         'pixel_shuffle', 'pixel_unshuffle', 'roll', 'flip', 'clone', 'copy_', 'to', 'type_as', 'detach', 'size',
         'Int', 'ScalarImplicit', 'zeros', 'zeros_like', 'ones', 'ones_like', 'full', 'full_like', 'empty',
         'new_zeros', 'new_empty', 'new_full', 'arange', 'index', 'gather', 'repeat', 'dropout', 'feature_dropout',
         'alias', 'lift_fresh', 'as_strided', 'numpy_T', 'movedim', 'broadcast_to', 'index_select', 'index_put_',
         'nonzero', 'masked_select')

# Normalisation op kinds (in ``other``): fvcore's FlopCountAnalysis, which MST's and MST++'s scripts use, adds
# them to its total under the same rule (5 per element with affine), so the report can convert.
NORM_KINDS = ('aten::layer_norm', 'aten::group_norm', 'aten::instance_norm')

OP_RULES: Dict[str, OpRule] = {
    'aten::_convolution': OpRule(MAC, 'B * prod(weight shape) * prod(output spatial) (grouped/depth-wise included)',
                                 conv_flop_jit),
    'aten::matmul': OpRule(MAC, 'prod(batch) * M * K * N', matmul_flop_jit),
    'aten::mm': OpRule(MAC, 'M * K * N', matmul_flop_jit),
    'aten::bmm': OpRule(MAC, 'B * M * K * N', bmm_flop_jit),
    'aten::baddbmm': OpRule(MAC, 'B * M * K * N (the added bias is ignored)', _baddbmm),
    'aten::addmm': OpRule(MAC, 'M * K * N (the added bias is ignored)', addmm_flop_jit),
    'aten::linear': OpRule(MAC, 'prod(input) * out_features', linear_flop_jit),
    'aten::einsum': OpRule(MAC, "mmengine's einsum rule", einsum_flop_jit),
    'aten::softmax': OpRule(OTHER, '3 per element (exp, sum, divide)', _per_input(3)),
    'aten::_softmax': OpRule(OTHER, '3 per element (exp, sum, divide)', _per_input(3)),
    'aten::log_softmax': OpRule(OTHER, '3 per element', _per_input(3)),
    'aten::mean': OpRule(OTHER, '1 per input element', _per_input(1)),
    'aten::sum': OpRule(OTHER, '1 per input element', _per_input(1)),
    'aten::adaptive_avg_pool2d': OpRule(OTHER, '1 per input element', _per_input(1)),
    'aten::avg_pool2d': OpRule(OTHER, '1 per input element', _per_input(1)),
    'aten::max': OpRule(OTHER, '1 per input element', _per_input(1)),
    'aten::amax': OpRule(OTHER, '1 per input element', _per_input(1)),
    'aten::linalg_vector_norm': OpRule(OTHER, '2 per input element (square, add)', _per_input(2)),
    'aten::norm': OpRule(OTHER, '2 per input element (square, add)', _per_input(2)),
    'aten::frobenius_norm': OpRule(OTHER, '2 per input element (square, add)', _per_input(2)),
    'aten::var_mean': OpRule(OTHER, '3 per input element (mean, centre, square-add)', _var_mean),
    'aten::var': OpRule(OTHER, '3 per input element (mean, centre, square-add)', _var_mean),
    'aten::std': OpRule(OTHER, '3 per input element (mean, centre, square-add)', _var_mean),
    'aten::layer_norm': OpRule(OTHER, "5 per element with affine, 4 without (mmengine's rule)", norm_flop_counter(2)),
    'aten::group_norm': OpRule(OTHER, "5 per element with affine, 4 without (mmengine's rule)", norm_flop_counter(2)),
    'aten::instance_norm': OpRule(OTHER, "5 per element with affine, 4 without (mmengine's rule)",
                                  norm_flop_counter(1)),
    'aten::batch_norm': OpRule(OTHER, "5 per element with affine, 4 without (mmengine's rule)", norm_flop_counter(1)),
    'aten::addcmul': OpRule(OTHER, '2 per output element', _per_output(2)),
    'aten::addcdiv': OpRule(OTHER, '2 per output element', _per_output(2)),
    'aten::upsample_nearest2d': OpRule(OTHER, '1 per output element', _per_output(1)),
    'aten::upsample_bilinear2d': OpRule(OTHER, '4 per output element', _per_output(4)),
}
OP_RULES.update({f'aten::{name}': OpRule(OTHER, '1 per output element', _per_output(1)) for name in _ELEMENTWISE_1})
OP_RULES.update({f'aten::{name}': OpRule(FREE, 'no arithmetic (data movement)') for name in _FREE})


@dataclass
class Complexity:
    """Result of :func:`count`.

    Attributes:
        params: trainable + frozen parameters of the model.
        macs: total MACs of one forward pass (for the given inputs, whole batch).
        other_ops: total of the ``other`` category.
        by_op: per op kind ``{'aten::x': (category, calls, count)}``.
        by_module: MACs per submodule name (``''`` = whole model).
        unclassified: op kinds with no rule, ``{'aten::x': calls}``; not counted.
    """
    params: int
    macs: int
    other_ops: int
    by_op: Dict[str, Tuple[str, int, float]]
    by_module: Dict[str, int] = field(repr=False)
    unclassified: Dict[str, int]

    def ops(self, category: str) -> List[str]:
        """Op kinds of one category seen in the trace, sorted by name."""
        return sorted(k for k, (cat, _, _) in self.by_op.items() if cat == category)

    def notes(self) -> List[str]:
        """Human-readable lines saying how every op kind was counted (for reports)."""
        return describe_ops(self.by_op, self.unclassified)


def describe_ops(kinds: Iterable[str], unclassified: Dict[str, int]) -> List[str]:
    """One line per category listing the op kinds seen and their counting rules, then the unclassified ones."""
    kinds = sorted(set(kinds))
    lines = []
    for cat, title in ((MAC, 'counted as MACs'), (OTHER, 'counted as other ops, not in MACs'),
                       (FREE, 'ignored knowingly (no arithmetic)')):
        names = [n for n in kinds if OP_RULES[n].category == cat]
        if names:
            short = [n.split('::', 1)[-1] for n in names]
            desc = ', '.join(short) if cat == FREE else '; '.join(
                f'{s} [{OP_RULES[n].rule}]' for s, n in zip(short, names, strict=True))
            lines.append(f'{title}: {desc}')
    if unclassified:
        calls = ', '.join(f'{k} ({v} calls)' for k, v in sorted(unclassified.items()))
        lines.append(f'UNCLASSIFIED, NOT COUNTED: {calls}')
    return lines


class _Recorder:
    """Wraps rule handles to tag each count with its category and tally the calls per op kind."""

    def __init__(self):
        self.calls = Counter()

    def handle(self, kind: str, rule: OpRule) -> Callable:
        def _counted(inputs, outputs):
            self.calls[kind] += 1
            n = rule.handle(inputs, outputs) if rule.handle is not None else 0
            if isinstance(n, Counter):
                n = sum(n.values())
            return Counter({f'{rule.category}|{kind}': int(n)})
        return _counted


def count(model: nn.Module, inputs: Union[torch.Tensor, Sequence[torch.Tensor]]) -> Complexity:
    """Trace ``model(*inputs)`` once and count parameters, MACs and other ops.

    Args:
        model: any ``nn.Module`` (put it in eval mode first if it has
            train/eval differences).
        inputs: one tensor or a tuple of tensors passed positionally.

    Returns:
        :class:`Complexity` for the whole batch in ``inputs``.
    """
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    recorder = _Recorder()
    analyzer = FlopAnalyzer(model, tuple(inputs))
    analyzer.clear_op_handles()  # only our rules, each one tagged with its category
    analyzer.set_op_handle(**{kind: recorder.handle(kind, rule) for kind, rule in OP_RULES.items()})
    analyzer.unsupported_ops_warnings(False)
    # Modules a network holds but does not call (e.g. an unused branch) are reported by name in by_module
    # with zero MACs; a warning per module would only repeat that.
    analyzer.uncalled_modules_warnings(False)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter('ignore')
        per_module = analyzer.by_module_and_operator()
        unsupported = dict(analyzer.unsupported_ops())
    totals = per_module['']
    by_op = {}
    for key, n in totals.items():
        cat, kind = key.split('|', 1)
        by_op[kind] = (cat, recorder.calls[kind], n)
    for kind, calls in recorder.calls.items():  # ops that counted zero (FREE, empty tensors)
        if kind not in by_op:
            by_op[kind] = (OP_RULES[kind].category, calls, 0)
    by_module = {name: sum(v for k, v in c.items() if k.startswith(MAC + '|')) for name, c in per_module.items()}
    return Complexity(params=sum(p.numel() for p in model.parameters()),
                      macs=sum(n for k, (cat, _, n) in by_op.items() if cat == MAC),
                      other_ops=sum(n for k, (cat, _, n) in by_op.items() if cat == OTHER),
                      by_op=by_op, by_module=by_module, unclassified=unsupported)

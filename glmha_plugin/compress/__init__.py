"""Compress a trained channel-attention network into a cheaper GLMHA network (``glmha compress``).

:mod:`.planning` chooses per-layer ranks to a MAC budget or an energy target, :mod:`.pipeline` runs the
command (plan, warm start, distillation through basicsr's ``train_pipeline`` with ``DistillModel``,
evaluation), :mod:`.report` writes its report, :mod:`.network` turns the command's network arguments into
a module, :mod:`.command` is ``main(argv)``.
"""
from .network import CompressError
from .planning import AttentionLayer, Plan, candidate_ranks, solve

__all__ = ['CompressError', 'AttentionLayer', 'Plan', 'candidate_ranks', 'solve']

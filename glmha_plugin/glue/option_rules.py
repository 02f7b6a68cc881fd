"""The type and range of the option values basicsr and the plugin compute with: one table, key -> rule.

basicsr uses these values in arithmetic long after it has created
``experiments/``: ``total_iter: abc`` dies in ``int()``, ``print_freq: 0`` in
``current_iter % 0``, ``dataset_enlarge_ratio: 0`` in a division, ``lr: '2e-3'``
(text) inside ``torch.optim``.  :func:`check_option_values` checks each key of
:data:`RULES` that the option dict has (absent keys are basicsr's business:
required ones are checked elsewhere) and raises :class:`OptionError` naming
the key, what it must be and what it is.

Keys are dotted paths; ``*`` matches any one key (``datasets.*.batch_size_per_gpu``
covers every dataset entry).  A rule is a :class:`Rule`: what the value must
be, in words, and a test.  Numbers may be written as floats when they are
whole (Restormer's files write ``val_freq: !!float 5e3``).
"""
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Tuple

from ..errors import OptionError


@dataclass(frozen=True)
class Rule:
    expect: str                       # what the value must be, completing "KEY must be ..."
    test: Callable[[Any], bool]
    allow_none: bool = False          # ``key: ~`` means "not set" to basicsr for this key


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v   # not NaN


def _whole(v) -> bool:
    return _number(v) and float(v).is_integer()


def whole(minimum: int) -> Rule:
    return Rule(f'a whole number >= {minimum}', lambda v: _whole(v) and v >= minimum)


def number(minimum: float = None, maximum: float = None, above: float = None, below: float = None) -> Rule:
    bounds = (('>=', minimum), ('>', above), ('<=', maximum), ('<', below))
    words = [f'{sign} {bound}' for sign, bound in bounds if bound is not None]
    return Rule('a number' + (' ' + ' and '.join(words) if words else ''),
                lambda v: _number(v) and (minimum is None or v >= minimum) and (above is None or v > above)
                and (maximum is None or v <= maximum) and (below is None or v < below))


def list_of(rule: Rule, length: int = None) -> Rule:
    size = f'{length} ' if length else ''
    return Rule(f'a list of {size}values, each {rule.expect}',
                lambda v: isinstance(v, (list, tuple)) and (length is None or len(v) == length)
                and all(rule.test(x) for x in v))


BOOL = Rule('true or false', lambda v: isinstance(v, bool))
TEXT = Rule('text', lambda v: isinstance(v, str) and v != '')

# key -> rule.  (train.accum_iter / max_nonfinite_steps, num_gpu and the GPU-training switches have their own
# checks in glmha_plugin.glue.preflight, with hints about other projects' names.)
RULES: Tuple[Tuple[str, Rule], ...] = (
    ('name', TEXT),
    ('scale', whole(1)),
    ('manual_seed', Rule('a whole number >= 0', lambda v: _whole(v) and v >= 0, allow_none=True)),
    ('datasets.*.batch_size_per_gpu', whole(1)),
    ('datasets.*.num_worker_per_gpu', whole(0)),
    ('datasets.*.dataset_enlarge_ratio', whole(1)),
    ('datasets.*.gt_size', whole(1)),
    ('datasets.*.data_range', number(above=0)),
    ('datasets.*.use_hflip', BOOL),
    ('datasets.*.use_rot', BOOL),
    ('datasets.*.use_flip', BOOL),
    ('datasets.*.use_shuffle', BOOL),
    ('datasets.*.geometric_augs', BOOL),
    ('train.total_iter', whole(1)),
    ('train.warmup_iter', whole(-1)),
    ('train.ema_decay', number(minimum=0, below=1)),
    ('train.optim_g.lr', number(above=0)),
    ('train.optim_g.weight_decay', number(minimum=0)),
    ('train.optim_g.betas', list_of(number(minimum=0, below=1), 2)),
    ('train.scheduler.periods', list_of(whole(1))),
    ('train.scheduler.restart_weights', list_of(number(minimum=0))),
    ('train.scheduler.eta_min', number(minimum=0)),
    ('train.scheduler.eta_mins', list_of(number(minimum=0))),
    ('train.scheduler.milestones', list_of(whole(1))),
    ('train.scheduler.gamma', number(above=0)),
    ('train.*.loss_weight', number()),
    ('val.val_freq', whole(1)),
    ('val.save_img', BOOL),
    ('logger.print_freq', whole(1)),
    ('logger.save_checkpoint_freq', whole(1)),
    ('logger.use_tb_logger', BOOL),
)


def matches(opt: dict, pattern: str) -> Iterator[Tuple[str, Any]]:
    """``(dotted key, value)`` of every key of ``opt`` that ``pattern`` names (``*``: any one key)."""
    def walk(node, parts, done):
        if not parts:
            yield '.'.join(done), node
            return
        if not isinstance(node, dict):
            return
        head, rest = parts[0], parts[1:]
        for key in (node if head == '*' else [head] if head in node else []):
            yield from walk(node[key], rest, done + [str(key)])
    yield from walk(opt, pattern.split('.'), [])


def check_option_values(opt: dict, rules=RULES) -> None:
    """OptionError for the first value in ``opt`` that breaks its rule (module docstring)."""
    for pattern, rule in rules:
        for key, value in matches(opt, pattern):
            if value is None and rule.allow_none:
                continue
            if not rule.test(value):
                got = 'nothing (~)' if value is None else repr(value)
                raise OptionError(f'{key} must be {rule.expect}, got {got}')

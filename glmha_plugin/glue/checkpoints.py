"""Safe checkpoint loading shared by every tool and check of the plugin.

All loads go through ``torch.load(..., weights_only=True)``: a checkpoint is
tensors and containers, and unpickling anything else can run arbitrary code.
Legacy whole-model pickles (e.g. MST's real-data checkpoints) need an explicit
opt-out: ``allow_pickle=True`` in code, or ``GLMHA_ALLOW_PICKLE=1`` in the
environment, and only for files you trust.
"""
import os
from typing import Dict, Mapping, Optional, Sequence

import torch

from ..errors import CheckpointError

PICKLE_ENV = 'GLMHA_ALLOW_PICKLE'
# Where the tensors live in the checkpoint formats we meet: basicsr / Restormer
# ({'params': ..., 'params_ema': ...}), MST++ ({'state_dict': ...}), plain state_dicts.
PARAM_KEYS = ('params', 'params_ema', 'state_dict', 'model', 'net')


def pickle_allowed(allow_pickle: Optional[bool] = None) -> bool:
    if allow_pickle is not None:
        return allow_pickle
    return os.environ.get(PICKLE_ENV, '0').strip().lower() in ('1', 'true', 'yes')


def load_checkpoint(path: str, map_location='cpu', allow_pickle: Optional[bool] = None):
    """``torch.load`` with ``weights_only=True`` unless the caller opted out; clear errors."""
    if not os.path.isfile(path):
        raise CheckpointError(f'checkpoint {path!r} does not exist')
    unsafe = pickle_allowed(allow_pickle)
    try:
        return torch.load(path, map_location=map_location, weights_only=not unsafe)
    except Exception as exc:  # noqa: BLE001  torch.load's errors have many types; each is named below
        text = str(exc)
        if not unsafe and ('Weights only load failed' in text or 'Unsupported global' in text):
            raise CheckpointError(
                f'{path!r} is not a plain weights checkpoint: it holds pickled Python objects, which can run '
                f'code when loaded, so it was refused. If you trust the file (e.g. a legacy whole-model '
                f'checkpoint), load it with allow_pickle=True or set {PICKLE_ENV}=1.') from None
        raise CheckpointError(f'{path!r} is not a readable PyTorch checkpoint ({type(exc).__name__}: '
                              f'{text.splitlines()[0] if text else ""})') from None


def extract_state_dict(ckpt, param_key: Optional[str] = None, path: str = 'checkpoint') -> Dict[str, torch.Tensor]:
    """The state_dict inside ``ckpt``: ``ckpt[param_key]`` (falling back like basicsr: ``params``), one
    of :data:`PARAM_KEYS`, or ``ckpt`` itself; a whole pickled module gives its ``state_dict()``.
    ``module.`` prefixes (DataParallel/DDP) are stripped."""
    if isinstance(ckpt, torch.nn.Module):
        ckpt = ckpt.state_dict()
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f'{path} holds a {type(ckpt).__name__}, not a state_dict')
    keys = [param_key] if param_key else []
    keys += [k for k in PARAM_KEYS if k not in keys]
    state = ckpt
    for key in keys:
        if key in ckpt and isinstance(ckpt[key], Mapping):
            state = ckpt[key]
            break
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f'{path} has no state_dict under {keys} (top-level keys: {sorted(ckpt)[:10]})')
    return {k[7:] if k.startswith('module.') else k: v for k, v in state.items()}


def _listing(keys: Sequence[str], limit: int = 8) -> str:
    keys = sorted(keys)
    more = f' ... and {len(keys) - limit} more' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def key_mismatch(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]) -> Optional[str]:
    """None when ``found`` loads strict into a module whose state_dict is ``expected``, else a report."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [f'{k}: checkpoint {tuple(found[k].shape)} vs network {tuple(expected[k].shape)}'
              for k in expected if k in found and tuple(found[k].shape) != tuple(expected[k].shape)]
    if not (missing or unexpected or shapes):
        return None
    parts = []
    if missing:
        parts.append(f'{len(missing)} missing from the checkpoint: {_listing(missing)}')
    if unexpected:
        parts.append(f'{len(unexpected)} unexpected in the checkpoint: {_listing(unexpected)}')
    if shapes:
        parts.append(f'{len(shapes)} with different shapes: {"; ".join(shapes[:5])}'
                     + (' ...' if len(shapes) > 5 else ''))
    return '; '.join(parts)


def load_into(net: torch.nn.Module, path: str, param_key: Optional[str] = None, strict: bool = True,
              allow_pickle: Optional[bool] = None) -> torch.nn.Module:
    """Load a checkpoint file into ``net`` with a readable report of any key mismatch."""
    state = extract_state_dict(load_checkpoint(path, allow_pickle=allow_pickle), param_key, path)
    if strict:
        report = key_mismatch(net.state_dict(), state)
        if report:
            raise CheckpointError(f'{path} does not fit {type(net).__name__}: {report}. Is it a checkpoint of '
                                  f'another architecture or configuration?')
    net.load_state_dict(state, strict=strict)
    return net

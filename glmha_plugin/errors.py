"""Exceptions for mistakes a user can fix; entry points print them without a traceback (exit 2).

:func:`did_you_mean` is the hint that every message about an unknown name ends a sentence with.
"""
import difflib
from typing import Iterable


class UsageError(Exception):
    """A mistake in the user's command, option file, data or checkpoint; the message says what to do."""


class OptionError(UsageError, ValueError):
    """An option file that cannot work (unknown name, bad value, missing data, mismatched checkpoint)."""


class CheckpointError(UsageError, RuntimeError):
    """A checkpoint that cannot be loaded safely or does not fit the network."""


def did_you_mean(name, candidates: Iterable, cutoff: float = 0.6, prefix: str = '') -> str:
    """``" Did you mean 'a' or 'b'?"`` for the (up to 3) candidates closest to a misspelt ``name`` (difflib
    ratio >= ``cutoff``), each shown as ``prefix + candidate``; ``''`` when none is close."""
    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=3, cutoff=cutoff)
    return f' Did you mean {" or ".join(repr(prefix + c) for c in close)}?' if close else ''


def unknown_name_message(registry_name: str, name, valid: Iterable) -> str:
    """What a lookup of ``name`` in one of basicsr's registries says when the name is not there."""
    valid = list(valid)
    return (f"No object named {name!r} in basicsr's {registry_name!r} registry.{did_you_mean(name, valid, 0.5)} "
            f'Valid names: {", ".join(sorted(valid))}. If the name comes from a plugin, make sure it is '
            f'installed and imported (glmha_plugin registers its names on import).')

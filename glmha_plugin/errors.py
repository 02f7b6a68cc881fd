"""Exceptions for mistakes a user can fix; entry points print them without a traceback (exit 2)."""


class UsageError(Exception):
    """A mistake in the user's command, option file, data or checkpoint; the message says what to do."""


class OptionError(UsageError, ValueError):
    """An option file that cannot work (unknown name, bad value, missing data, mismatched checkpoint)."""


class CheckpointError(UsageError, RuntimeError):
    """A checkpoint that cannot be loaded safely or does not fit the network."""

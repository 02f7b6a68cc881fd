"""Helpers of the fault-class tests (docs/reliability.md): the one-line message, whether a checkpoint loads."""
import torch


def one_line(text: str) -> str:
    """``text``, asserted to be one line without a traceback (what every refusal must be)."""
    assert '\n' not in text.strip() and 'Traceback' not in text, text
    return text


def loads(path) -> bool:
    """Whether ``path`` reads back as a checkpoint (``weights_only``)."""
    try:
        torch.load(path, weights_only=True)
    except Exception:  # noqa: BLE001 (any failure to read it back: cut short)
        return False
    return True

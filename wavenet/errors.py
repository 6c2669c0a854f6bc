"""The library's one error family.

Every error the library raises on purpose derives from `WavenetError`, so a caller (the
CLI first of all) can turn all of them into one line with a single `except`. Each
subclass also keeps the built-in parent it had before this base existed
(`ConfigError` is still a `ValueError`, `TrainError` a `RuntimeError`, ...), so code that
catches those keeps working. Messages are one line that says what is wrong and, where
there is one, what to do.

All of them are defined here, so the family reads in one place; the modules that raise
them re-import them, so `from wavenet.io.checkpoint import CheckpointError` keeps working.
Kernel code compiled by numba (wavenet.generation.kernel) can raise only built-in
exceptions: its Python caller turns them into InvalidArgumentError.
"""

from __future__ import annotations

import os
from pathlib import Path


class WavenetError(Exception):
    """Base class of the errors raised by the wavenet library."""


class InvalidArgumentError(WavenetError, ValueError):
    """A value passed to a library function is out of its domain (a NaN sample, a code
    beyond the quantization channels, a non-positive size)."""


class InvalidTypeError(WavenetError, TypeError):
    """An argument of the wrong type (a numpy array where a tensor is expected, a float
    where an int is)."""


class TrainError(WavenetError, RuntimeError):
    """A training run cannot start or continue; the message says why in one line."""


class ConditioningError(WavenetError, ValueError):
    """A speaker or mel given to a model does not suit it (wavenet.data.conditioning,
    wavenet.data.melfiles); the message says what was expected and what was found."""


class ConfigError(WavenetError, ValueError):
    """A config file, preset name or override is wrong; the message says how."""


class DataError(WavenetError):
    """Audio data cannot be used as asked; the message is one line that says why."""


class AudioDecodeError(DataError):
    """One file cannot be decoded. `reason` is short, e.g. "empty file (0 bytes)"."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


class CheckpointError(WavenetError, ValueError):
    """A checkpoint or run folder is missing, unreadable or of an unknown format."""


class ExportError(WavenetError, ValueError):
    """An exported model folder cannot be written or read; the message is one line."""


class PlotError(WavenetError, RuntimeError):
    """A plot cannot be made (matplotlib missing, no metrics yet)."""


class DependencyError(WavenetError, ImportError):
    """A dependency is missing or does not load with the installed torch."""


class RunLockedError(WavenetError, RuntimeError):
    """Another process is training in the same run folder."""

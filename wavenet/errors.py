"""The library's one error family.

Every error the library raises on purpose derives from `WavenetError`, so a caller (the
CLI first of all) can turn all of them into one line with a single `except`. Each
subclass also keeps the built-in parent it had before this base existed
(`ConfigError` is still a `ValueError`, `TrainError` a `RuntimeError`, ...), so code that
catches those keeps working. Messages are one line that says what is wrong and, where
there is one, what to do.
"""

from __future__ import annotations


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

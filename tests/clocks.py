"""A fake clock for tests of time budgets, so that they do not depend on machine load.

`train(..., clock=clock)` (and `sample_writer(..., clock=clock)`) read every time from
it; `timed_training` makes a step, a validation pass and a sample take fixed seconds on
it, while the real work still runs.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

import wavenet.train.loop
from wavenet.train.samples import SampleWriter
from wavenet.train.validation import Validation


class FakeClock:
    """Seconds that move only by `advance`, or by `tick` at every reading."""

    def __init__(self, tick: float = 0.0, start: float = 1000.0) -> None:
        self.now = start
        self.tick = tick

    def __call__(self) -> float:
        now = self.now
        self.now += self.tick
        return now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def timed_training(
    monkeypatch: pytest.MonkeyPatch,
    clock: FakeClock,
    *,
    step: float,
    validation: float = 0.0,
    sample: float = 0.0,
) -> None:
    """Make each training step take `step` seconds on `clock`, each validation pass
    `validation` and each generated sample (its warm-up too) `sample`; `train` (the one
    the CLI calls too) reads `clock`."""
    real_step = wavenet.train.loop.train_step
    real_bits = Validation.bits
    real_audio = SampleWriter._audio
    real_train = wavenet.train.loop.train

    def timed_step(*args: Any) -> float:
        bits = real_step(*args)
        clock.advance(step)
        return bits

    def timed_bits(self: Validation, *args: Any) -> float:
        bits = real_bits(self, *args)
        clock.advance(validation)
        return bits

    def timed_audio(self: SampleWriter, *args: Any) -> Any:
        audio = real_audio(self, *args)
        clock.advance(sample)
        return audio

    monkeypatch.setattr(wavenet.train.loop, "train_step", timed_step)
    monkeypatch.setattr(Validation, "bits", timed_bits)
    monkeypatch.setattr(SampleWriter, "_audio", timed_audio)
    monkeypatch.setattr(wavenet.train.loop, "train", functools.partial(real_train, clock=clock))

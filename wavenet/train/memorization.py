"""Noticing a run that memorized its training audio.

A small folder (30 seconds of speech) is learned by heart: training bits keep falling
while validation, after a best early on, climbs far past it (4.9 -> 10.7 bits/sample in
one 15-minute run) and nothing said so. At the end of a run its validation history is
read from the metrics log; when the last validation is MEMORIZATION_RISE bits or more
above the best, one line says what happened: the step of the best (kept in best.pt), how
far validation rose, the training audio's duration, and what to do.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# How far (bits/sample) the last validation must be above the best to be called memorizing,
# well beyond the step-to-step noise of validation on fixed crops (hundredths of a bit).
MEMORIZATION_RISE = 0.25


@dataclass(frozen=True)
class Memorization:
    """The best validation and the last, of a run whose validation rose after its best."""

    best_step: int
    best_bits: float
    last_step: int
    last_bits: float
    train_seconds: float | None

    def line(self) -> str:
        duration = (
            ""
            if self.train_seconds is None
            else f" of {_duration(self.train_seconds)} of training audio"
        )
        return (
            f"validation rose from {self.best_bits:.3f} bits/sample at step "
            f"{self.best_step} to {self.last_bits:.3f} at step {self.last_step} "
            f"(+{self.last_bits - self.best_bits:.2f}): the model memorized its "
            f"data{duration} after step {self.best_step}; checkpoints/best.pt (step "
            f"{self.best_step}, what generate and eval read) is kept; give it more audio, "
            f"or train fewer steps"
        )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} minutes"
    return f"{seconds / 3600:.1f} hours"


def detect_memorization(
    validations: Sequence[tuple[int, float]],
    train_seconds: float | None,
    rise: float = MEMORIZATION_RISE,
) -> Memorization | None:
    """(step, validation bits) in step order -> Memorization when the last is `rise` or more
    above the best (the earliest best), else None."""
    finite = [(step, bits) for step, bits in validations if math.isfinite(bits)]
    if len(finite) < 2:
        return None
    best_step, best_bits = min(finite, key=lambda item: (item[1], item[0]))
    last_step, last_bits = finite[-1]
    if last_step <= best_step or last_bits - best_bits < rise:
        return None
    return Memorization(best_step, best_bits, last_step, last_bits, train_seconds)


def validations_in_log(path: Path) -> list[tuple[int, float]]:
    """(step, val_bits) of every metrics line with a validation, in the log's order; lines
    that are not JSON objects (a torn last line) are passed over."""
    found: list[tuple[int, float]] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return found
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if (
            isinstance(record, dict)
            and isinstance(record.get("val_bits"), (int, float))
            and isinstance(record.get("step"), int)
        ):
            found.append((record["step"], float(record["val_bits"])))
    return found

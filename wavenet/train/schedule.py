"""The learning-rate schedule, and how a time budget becomes a fixed number of steps.

    learning_rate(step, total_steps, train)     linear warm-up, then cosine to
                                                lr * min_lr_ratio at total_steps
    Calibration                                 times a budgeted run's first steps
    RunCosts                                    validation and checkpoint seconds, the
                                                budget's share of them per step
    budget_schedule(...) -> Schedule            total steps that fit the budget (capped
                                                by --steps), the warm-up fitted to them
    validation_interval(train, total_steps)     steps between validations: train.val_every,
                                                or scaled to the run's total

A budgeted run (`wavenet train --minutes M`) cannot know its total in advance, and a
schedule that moved with the measured speed would not resume bit for bit. So the total is
estimated once, after a short calibration (the steps' time, plus one validation and one
checkpoint write timed then, so that the periodic ones are paid for), and then fixed: the
`Schedule` is stored in the run's checkpoints (`TrainState.length`), and every later
step, in this session or a resumed one, reads its learning rate from that stored total.
Audio samples (`train.sample_every`) are counted too, once the calibration has paid the
generation kernel's one-time compile (`SampleWriter.estimate_seconds`). Nothing here
reads a clock or imports torch: the session's clock, its total and its time limit are
`budget.Budget`'s, which calls these.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from ..config import MIN_VAL_EVERY, VALIDATIONS_PER_RUN, TrainConfig

logger = logging.getLogger(__name__)

# Calibration: the first step is not timed (allocation, compilation, first-touch of the
# data), then at least this many steps and this fraction of the budget are (2% was too
# short on a shared machine: the demo's first seconds ran at half its later speed).
CALIBRATION_STEPS = 3
CALIBRATION_FRACTION = 0.05
# Validations scaled to the run are kept back at most this share of a budget.
SCALED_VALIDATION_SHARE = 0.1
# The warm-up takes at most this fraction of a budgeted run's steps.
WARMUP_FRACTION = 0.1


def learning_rate(
    step: int, total_steps: int | None, train: TrainConfig, warmup_steps: int | None = None
) -> float:
    """Linear warm-up over warmup_steps (train.warmup_steps unless given), then cosine
    decay to lr * min_lr_ratio at total_steps.

    total_steps None: not known yet (a budgeted run's calibration steps): the warm-up,
    then lr itself.
    """
    warmup = train.warmup_steps if warmup_steps is None else warmup_steps
    if step < warmup:
        return train.lr * (step + 1) / warmup
    if total_steps is None:
        return train.lr
    span = max(1, total_steps - warmup)
    progress = min(1.0, (step - warmup) / span)
    floor = train.lr * train.min_lr_ratio
    return floor + (train.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def validation_interval(train: TrainConfig, total_steps: int | None) -> int | None:
    """Steps between validations: train.val_every when set; else about VALIDATIONS_PER_RUN
    over the run's `total_steps` (at least MIN_VAL_EVERY apart); None while the total is
    not known (a budgeted run timing its first steps validates only at its end)."""
    if train.val_every is not None:
        return train.val_every
    if total_steps is None:
        return None
    return max(MIN_VAL_EVERY, math.ceil(total_steps / VALIDATIONS_PER_RUN))


@dataclass(frozen=True)
class Schedule:
    """A budgeted run's schedule, fixed once and stored in its checkpoints.

    total_steps: the step the cosine reaches its floor and the run ends;
    warmup_steps: the warm-up actually used (train.warmup_steps, shortened to fit);
    budget_seconds: training time of the whole run, over every session (a resumed
    session gets what is left of it).
    """

    total_steps: int
    warmup_steps: int
    budget_seconds: float

    def learning_rate(self, step: int, train: TrainConfig) -> float:
        return learning_rate(step, self.total_steps, train, self.warmup_steps)

    def to_dict(self) -> dict[str, float | int]:
        return {
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "budget_seconds": self.budget_seconds,
        }

    @classmethod
    def from_dict(cls, values: dict[str, float | int]) -> Schedule:
        return cls(
            int(values["total_steps"]), int(values["warmup_steps"]), float(values["budget_seconds"])
        )


@dataclass(frozen=True)
class RunCosts:
    """Seconds of a run's work between its steps, timed once when the budget is calibrated.

    validation: one validation pass (0 for a run without validation data);
    checkpoint: one checkpoint write;
    sample: one audio sample (0 for a run without samples).
    """

    validation: float = 0.0
    checkpoint: float = 0.0
    sample: float = 0.0

    def per_step(self, train: TrainConfig) -> float:
        """Their share of each step: a validation every train.val_every steps (and the
        `best` checkpoint it may write), a checkpoint every checkpoint_every steps, a sample
        every sample_every steps. Validations scaled to the run (val_every none) are a
        number, not a share: `at_end` holds them."""
        share = self.checkpoint / train.checkpoint_every
        if self.validation > 0 and train.val_every is not None:
            share += (self.validation + self.checkpoint) / train.val_every
        if self.sample > 0 and train.sample_every:
            share += self.sample / train.sample_every
        return share

    def at_end(self, train: TrainConfig, budget_seconds: float | None = None) -> float:
        """The last step's validation and its checkpoints (`last`, and `best` if better),
        and, when validations are scaled to the run, all VALIDATIONS_PER_RUN of them, those
        at most SCALED_VALIDATION_SHARE of `budget_seconds`: one slow write timed while the
        disk was busy would otherwise be counted forty times over, and leave the run a
        tenth of its steps (measured: 105 instead of ~1,070 in 5 minutes). Were they
        truly that slow, the run ends at its time limit instead."""
        if self.validation <= 0:
            return self.checkpoint
        last = self.validation + 2 * self.checkpoint
        if train.val_every is not None:
            return last
        scaled = VALIDATIONS_PER_RUN * (self.validation + self.checkpoint)
        if budget_seconds is not None:
            scaled = min(scaled, SCALED_VALIDATION_SHARE * budget_seconds)
        return last + scaled


def budget_schedule(
    step: int,
    elapsed: float,
    seconds_per_step: float,
    budget_seconds: float,
    steps_cap: int | None,
    warmup_steps: int,
    reserve_seconds: float = 0.0,
) -> Schedule:
    """The schedule of a run at `step` after `elapsed` seconds of its budget, whose steps
    take `seconds_per_step` (their share of validation and checkpoints included): as many
    more steps as the rest of the budget, less `reserve_seconds` for the work after the last
    step, holds (at least one, at most `steps_cap` in all), with the warm-up cut to
    WARMUP_FRACTION of them.
    """
    if not (math.isfinite(seconds_per_step) and seconds_per_step > 0):
        raise ValueError(f"seconds per step must be a finite number > 0, got {seconds_per_step}")
    fit = math.floor(max(0.0, budget_seconds - elapsed - reserve_seconds) / seconds_per_step)
    total = step + max(1, fit)
    if steps_cap is not None:
        total = max(step + 1, min(total, steps_cap))
    warmup = warmup_steps
    if warmup > WARMUP_FRACTION * total:
        warmup = math.floor(WARMUP_FRACTION * total)
        logger.info(
            "train.warmup_steps %d is more than %d%% of the %d steps that fit the "
            "budget: warming up over %d steps",
            warmup_steps,
            round(100 * WARMUP_FRACTION),
            total,
            warmup,
        )
    logger.info(
        "%.3g s a step: %d steps fit %.0f s of training", seconds_per_step, total, budget_seconds
    )
    return Schedule(total, warmup, budget_seconds)


class Calibration:
    """Times a budgeted run's first steps (whole iterations: the step, logging, reporting),
    less the validations, checkpoints and samples among them (`RunCosts` adds their share).

    `step_done(now, periodic)` after each step, `periodic` the running total of seconds
    spent on that periodic work; `ready` once enough are timed: one untimed, then at least
    CALIBRATION_STEPS and CALIBRATION_FRACTION of the budget; `seconds_per_step`: the mean
    over the timed steps without the periodic work (None before the first).
    """

    def __init__(self, budget_seconds: float) -> None:
        self.budget_seconds = budget_seconds
        self.started: float | None = None
        self.periodic_before = 0.0
        self.elapsed = 0.0
        self.periodic = 0.0
        self.steps = 0

    def step_done(self, now: float, periodic: float = 0.0) -> None:
        if self.started is None:
            self.started = now  # the end of the untimed first step
            self.periodic_before = periodic
            return
        self.steps += 1
        self.elapsed = now - self.started
        self.periodic = periodic - self.periodic_before

    @property
    def ready(self) -> bool:
        return (
            self.steps >= CALIBRATION_STEPS
            and self.elapsed >= CALIBRATION_FRACTION * self.budget_seconds
        )

    @property
    def seconds_per_step(self) -> float | None:
        return max(self.elapsed - self.periodic, 1e-9) / self.steps if self.steps else None

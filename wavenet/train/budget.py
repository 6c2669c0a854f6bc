"""How long a run trains: the one owner of its total steps and its time budget.

    RunLength        what the run's checkpoints keep of it: --steps, the budget
                     (--minutes in seconds), the schedule fixed from the budget
    Budget           this session's view: the clock, the step the session ends at,
                     --stop-at, the time limit (the budget's deadline), the calibration
                     while a budgeted run times its first steps, the learning rate

    budget.start(step, options, warmup_steps, resumed)   the total and the time limit
    budget.running(step)                                 the loop's condition
    budget.out_of_time(step)                             --time-limit, the budget, --stop-at
    budget.calibrate(...)                                after each calibration step

Everything in the training loop that reads the time reads `Budget.clock` (time.monotonic
unless a test passes a fake one), so that tests of a budget do not depend on how busy the
machine is. The arithmetic (learning rates, how many steps fit) is wavenet.train.schedule's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from ..config import TrainConfig
from .distributed import Distributed
from .options import DEFAULT_STEPS, TrainOptions
from .schedule import Calibration, RunCosts, Schedule, budget_schedule, learning_rate

logger = logging.getLogger(__name__)

# Seconds since an arbitrary start, never going back.
Clock = Callable[[], float]


@dataclass
class RunLength:
    """How long a run trains, as its checkpoints keep it (`TrainState.length`), so that
    --resume alone continues the same schedule.

    steps: the run's --steps, the cosine's last step (None: a budgeted run, or a
    checkpoint written before it was kept). budget_seconds: a budgeted run's --minutes in
    seconds, kept from its first step, so that a run stopped before its schedule was fixed
    still knows its budget (None: no budget). schedule: a budgeted run's fixed total steps
    and warm-up (None: the total is --steps, or the budget's steps are not timed yet).
    """

    steps: int | None = None
    budget_seconds: float | None = None
    schedule: Schedule | None = None

    def to_extra(self) -> dict[str, Any]:
        """The checkpoint's `extra` entries."""
        return {
            "schedule": self.schedule.to_dict() if self.schedule is not None else None,
            "budget": self.budget_seconds,
            "total_steps": self.steps,
        }

    @classmethod
    def from_extra(cls, extra: dict[str, Any]) -> RunLength:
        """From a checkpoint's `extra` (KeyError, TypeError, ValueError when damaged)."""
        schedule, budget, steps = (
            extra.get("schedule"),
            extra.get("budget"),
            extra.get("total_steps"),
        )
        return cls(
            int(steps) if steps is not None else None,
            float(budget) if budget is not None else None,
            Schedule.from_dict(schedule) if schedule is not None else None,
        )


class Budget:
    """This session's clock and limits: where it ends (a step, a time), and what is left.

    length: the run's RunLength (the same object as `TrainState.length`; `start` fills it
    in); wall_before: seconds trained in earlier sessions; stop_at: --stop-at;
    time_limit: --time-limit, in seconds of this session, which `start` shortens to the
    budget's rest; clock: what every time in the session is read from.
    """

    def __init__(
        self,
        length: RunLength,
        *,
        wall_before: float = 0.0,
        stop_at: int | None = None,
        time_limit: float | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.length = length
        self.wall_before = wall_before
        self.stop_at = stop_at
        self.time_limit = time_limit
        self.clock = clock
        self.started = clock()
        # A budgeted run's --steps: the most it trains, whatever fits the budget.
        self.steps_cap: int | None = None
        # Set while a budgeted run times its first steps (no total yet), else None.
        self.calibration: Calibration | None = None
        # Seconds this rank spent validating, checkpointing and sampling after steps (the
        # calibration times the steps without them).
        self.periodic_seconds = 0.0

    # ------------------------------------------------------------------ the clock

    def elapsed(self) -> float:
        """Seconds of this session."""
        return self.clock() - self.started

    def wall_time(self) -> float:
        """Seconds trained over every session of the run."""
        return self.wall_before + self.elapsed()

    def seconds_left(self) -> float | None:
        """What is left of the run's budget (None: no budget)."""
        budget = self.length.budget_seconds
        return None if budget is None else budget - self.wall_time()

    @contextmanager
    def periodic(self) -> Iterator[None]:
        """Count the block's seconds as periodic work (validation, checkpoints, samples)."""
        started = self.clock()
        try:
            yield
        finally:
            self.periodic_seconds += self.clock() - started

    # ------------------------------------------------------------------ the steps

    @property
    def total_steps(self) -> int | None:
        """The step this session ends at: the schedule's total, else a budgeted run's
        --steps while its steps are timed (None: none, the budget ends it), else --steps."""
        if self.length.schedule is not None:
            return self.length.schedule.total_steps
        if self.length.budget_seconds is not None:
            return self.steps_cap
        return self.length.steps

    def running(self, step: int) -> bool:
        """Whether the session trains another step after `step` (a run already at
        --stop-at trains none)."""
        total = self.total_steps
        return (total is None or step < total) and (self.stop_at is None or step < self.stop_at)

    def before_end(self, step: int) -> bool:
        """Whether `step` comes before the run's last (a stop there is an early one)."""
        total = self.total_steps
        return total is None or step < total

    def is_last(self, step: int) -> bool:
        return step == self.total_steps

    def out_of_time(self, step: int) -> bool:
        """The time limit (or the budget) is spent, or `step` is --stop-at."""
        return (self.time_limit is not None and self.elapsed() > self.time_limit) or (
            self.stop_at is not None and step >= self.stop_at
        )

    def learning_rate(self, step: int, train: TrainConfig) -> float:
        """The schedule's, else --steps' (no decay while the steps are timed)."""
        if self.length.schedule is not None:
            return self.length.schedule.learning_rate(step, train)
        return learning_rate(step, None if self.calibration else self.total_steps, train)

    # ------------------------------------------------------------------ set-up

    def start(self, step: int, options: TrainOptions, warmup_steps: int, resumed: bool) -> None:
        """Fix this session's total steps and time limit; a budgeted run whose total is
        still to be measured gets a `calibration`.

        The total: a resumed run's stored schedule (whatever --steps or --minutes say
        now), else one fixed now from options.seconds_per_step, else (with a budget)
        measured, else --steps, else the --steps a resumed run was started with
        (DEFAULT_STEPS when none).
        """
        length = self.length
        budget = options.budget
        if length.schedule is None and budget is None and length.budget_seconds is not None:
            logger.info(
                "the run keeps its budget of %.0f s (stopped before its steps were "
                "timed): timing them again",
                length.budget_seconds,
            )
            budget = length.budget_seconds
        if budget is not None:
            length.budget_seconds = budget
        self.steps_cap = options.steps
        if length.schedule is not None:
            if budget is not None or options.steps is not None:
                logger.info(
                    "the run keeps its schedule (%d steps in %.0f s); --steps and "
                    "--minutes apply to new runs",
                    length.schedule.total_steps,
                    length.schedule.budget_seconds,
                )
        elif budget is None:
            length.steps = options.steps or length.steps or DEFAULT_STEPS
            return
        elif options.seconds_per_step is not None:
            length.schedule = budget_schedule(
                step,
                self.wall_before,
                options.seconds_per_step,
                budget,
                options.steps,
                warmup_steps,
            )
        else:
            if resumed:
                logger.info("the run has no schedule yet: timing its steps again")
            self.limit_time(budget - self.wall_before)
            self.calibration = Calibration(budget)
            return
        self.use_schedule(length.schedule)

    def use_schedule(self, schedule: Schedule) -> None:
        """End the session at the schedule's total, or when the budget (less the seconds
        of earlier sessions) runs out."""
        self.length.schedule = schedule
        self.limit_time(schedule.budget_seconds - self.wall_before)

    def limit_time(self, seconds: float) -> None:
        """Stop this session after `seconds` (or sooner, at the limit it has)."""
        self.time_limit = seconds if self.time_limit is None else min(self.time_limit, seconds)

    # ------------------------------------------------------------------ calibration

    def calibrate(
        self,
        step: int,
        train: TrainConfig,
        world: Distributed,
        device: torch.device,
        time_costs: Callable[[bool], RunCosts],
    ) -> bool:
        """Time one more step; once enough are timed (on any rank), time the periodic work
        (`time_costs(samples)`: a validation, a checkpoint and, when `samples` says the run
        reaches one, a sample), fix the schedule from rank 0's step time with their share
        added and -> True (the caller stores it: a checkpoint at once)."""
        calibration = self.calibration
        assert calibration is not None and self.length.budget_seconds is not None
        calibration.step_done(self.clock(), self.periodic_seconds)
        if not world.any(calibration.ready, device):
            return False
        # Rank 0's figure: only it validates and writes, so the others' step times hold
        # its periodic work as waiting.
        measured = calibration.seconds_per_step
        # Every rank has timed the same steps (at least CALIBRATION_STEPS when ready).
        assert measured is not None
        seconds_per_step = world.from_main(measured, device)
        budget = self.length.budget_seconds
        # A sample's time is measured only when the run can reach one (at this step time,
        # before the periodic work is counted): the first generation may compile a kernel.
        reachable = step + (budget - self.wall_time()) / seconds_per_step
        if self.steps_cap is not None:
            reachable = min(reachable, self.steps_cap)
        costs = time_costs(_samples_before(reachable, step, train))
        elapsed = world.mean(self.wall_time(), device)
        self.use_schedule(
            budget_schedule(
                step,
                elapsed,
                seconds_per_step + costs.per_step(train),
                budget,
                self.steps_cap,
                train.warmup_steps,
                reserve_seconds=costs.at_end(train, budget),
            )
        )
        self.calibration = None
        return True


def _samples_before(last_step: float, step: int, train: TrainConfig) -> bool:
    """Whether a run now at `step` writes a sample by `last_step` (train.sample_every)."""
    return bool(train.sample_every) and last_step >= train.sample_every * (
        step // train.sample_every + 1
    )

"""After every training step: validate, checkpoint, sample, log metrics, report, decide
to stop.

    after_step(state, monitor, train_bits, lr, stop_requested) -> stop?
        stop decision (all ranks agree) -> [rank 0] validation bits on fixed crops (EMA
        weights when kept; a new best is saved as `best`) -> `last` checkpoint -> every
        train.sample_every steps an audio sample (wavenet.train.samples, same weights) ->
        one line of metrics.jsonl (and TensorBoard) -> progress(StepReport)

`Monitor` is what the loop composes for this, one object a concern: the budget (clock,
total steps, time limit: budget.py), the checkpoints (checkpoints.py), the metrics log
(metrics.py), validation and early stopping (validation.py), the sample writer
(samples.py). `time_run_costs` times one validation, one checkpoint and a sample for a
time budget's calibration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..io import checkpoint as ckpt
from .budget import Budget
from .checkpoints import Checkpoints
from .distributed import Distributed
from .metrics import MetricsLog
from .samples import SampleWriter
from .schedule import RunCosts, validation_interval
from .state import TrainState
from .validation import Validation

logger = logging.getLogger(__name__)


@dataclass
class StepReport:
    """What the progress callback receives after every optimizer step."""

    step: int
    total_steps: int | None  # None while a budgeted run times its first steps
    train_bits: float
    lr: float
    samples_per_s: float
    val_bits: float | None = None
    checkpointed: bool = False


@dataclass
class Monitor:
    """The parts after_step uses, and how the run ended.

    samples: None without samples (train.sample_every = 0) and on ranks other than 0.
    interrupted: stopped by a signal; early_stopped: stopped by early stopping.
    """

    budget: Budget
    checkpoints: Checkpoints
    metrics: MetricsLog
    validation: Validation
    world: Distributed = field(default_factory=Distributed)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    progress: Callable[[StepReport], None] | None = None
    samples: SampleWriter | None = None
    interrupted: bool = False
    early_stopped: bool = False


def after_step(
    state: TrainState, monitor: Monitor, train_bits: float, lr: float, stop_requested: bool
) -> bool:
    """Validate, checkpoint, log and report after a step; -> True when the run stops here.

    The run stops early (with a checkpoint) on `stop_requested` (Ctrl-C), the time limit
    or `stop_at`, on every rank together; only rank 0 validates and writes.
    """
    budget, validation, tc, step = (
        monitor.budget,
        monitor.validation,
        state.config.train,
        state.step,
    )
    monitor.metrics.add_step(train_bits)
    out_of_time = budget.out_of_time(step)
    early = validation.stop_early
    stop = monitor.world.any(
        stop_requested or out_of_time or early, monitor.device
    ) and budget.before_end(step)
    monitor.interrupted = stop and not (out_of_time or early)
    monitor.early_stopped = stop and early and not (stop_requested or out_of_time)
    if not monitor.world.is_main:
        return stop
    last = stop or budget.is_last(step)
    val_bits = None
    extra = {}
    with budget.periodic():
        if monitor.interrupted and validation.batches:
            # A signal (a scheduler's SIGTERM gives a grace period, then SIGKILL): the
            # step is saved before a validation that may take longer than the grace;
            # last.pt is written again below with the validation's best.
            monitor.checkpoints.save(state, ckpt.LAST)
        every = validation_interval(tc, budget.total_steps)
        if validation.batches and ((every is not None and step % every == 0) or last):
            val_bits = validation.validate(state, monitor.checkpoints)
            if not last and every is not None:
                validation.check_patience(state, every)  # every rank stops next step
        checkpointed = step % tc.checkpoint_every == 0 or last
        if checkpointed:
            monitor.checkpoints.save(state, ckpt.LAST)
        if monitor.samples is not None and tc.sample_every and step % tc.sample_every == 0:
            extra["sample_time_s"] = _sample(state, monitor)
    rate = monitor.metrics.rate()
    if step % tc.log_every == 0 or val_bits is not None or last or extra:
        monitor.metrics.write(step, lr, rate, budget.wall_time(), val_bits, extra)
    if monitor.progress is not None:
        monitor.progress(
            StepReport(step, budget.total_steps, train_bits, lr, rate, val_bits, checkpointed)
        )
    if monitor.early_stopped:
        logger.warning(
            "stopped early at step %d: validation has not improved on %.3f "
            "bits/sample (step %s, kept in best.pt) for %d validations "
            "(train.early_stop_patience)",
            step,
            state.best_val_bits or float("nan"),
            state.best_step,
            validation.patience,
        )
    elif monitor.interrupted:
        logger.warning("stopped at step %d; resume with --resume", step)
    elif stop:
        logger.info("time limit reached at step %d", step)
    return stop


def time_run_costs(state: TrainState, monitor: Monitor, samples: bool) -> RunCosts:
    """Time one validation pass, one write of the `last` checkpoint and, when the run
    writes samples and `samples` says it will reach one, one sample (rank 0 does all and
    hands the figures to every rank), for a budget to make room for the periodic ones.
    The validation's figure is logged, not recorded; the checkpoint is written again once
    the schedule is fixed (the write must be timed before it can be counted)."""
    validation = checkpoint = sample = 0.0
    clock = monitor.budget.clock
    if monitor.world.is_main:
        if monitor.validation.batches:
            bits, validation = monitor.validation.timed(state, clock)
            logger.info(
                "validation at step %d: %.3f bits/sample (%.2f s)", state.step, bits, validation
            )
        started = clock()
        monitor.checkpoints.save(state, ckpt.LAST)
        checkpoint = clock() - started
        if monitor.samples is not None and samples:
            sample = monitor.samples.estimate_seconds(monitor.validation.evaluated_model(state))
            logger.info("a sample takes %.2f s (one written to a scratch folder)", sample)
    world, device = monitor.world, monitor.device
    return RunCosts(
        world.from_main(validation, device),
        world.from_main(checkpoint, device),
        world.from_main(sample, device),
    )


def _sample(state: TrainState, monitor: Monitor) -> float:
    """Write this step's audio sample; -> its seconds. A sample that cannot be written
    (a full disk) is a warning: the run goes on."""
    assert monitor.samples is not None
    clock = monitor.budget.clock
    started = clock()
    try:
        seconds = monitor.samples.write(monitor.validation.evaluated_model(state), state.step)
    except OSError as error:
        logger.warning("no sample at step %d: %s", state.step, error.strerror or error)
        return clock() - started
    logger.info("sample of step %d written in %.2f s", state.step, seconds)
    return seconds

"""After every training step: validate, checkpoint, sample, log metrics, report, decide
to stop.

    after_step(state, monitor, train_bits, lr, stop_requested) -> stop?
        stop decision (all ranks agree) -> [rank 0] validation bits on fixed crops (EMA
        weights when kept; a new best is saved as `best`) -> `last` checkpoint -> every
        train.sample_every steps an audio sample (wavenet.train.samples, same weights) ->
        one line of metrics.jsonl (and TensorBoard) -> progress(StepReport)

`time_run_costs` times one validation, one checkpoint and a sample for a time budget's
calibration.
`Monitor` holds what this needs between steps. The run's metrics log is one JSON object
a line; `truncate_metrics` cuts it back to a checkpoint's step when a run resumes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..data.crops import Batch
from ..errors import TrainError
from ..io import checkpoint as ckpt
from ..nn.model import WaveNet
from ..util.files import atomic_write_bytes
from .distributed import Distributed
from .loss import validation_bits
from .options import TrainOptions
from .schedule import RunCosts
from .state import TrainState

if TYPE_CHECKING:  # train.py imports this module; the type is only for annotations
    from .samples import SampleWriter

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"


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
    """What after_step needs and keeps between steps: validation crops, the run folder,
    the metrics interval, the clock."""

    options: TrainOptions
    val_batches: list[Batch]
    eval_model: torch.nn.Module  # EMA weights are loaded into it for validation
    samples_per_step: int  # scored samples per optimizer step, all ranks together
    world: Distributed = field(default_factory=Distributed)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    progress: Callable[[StepReport], None] | None = None
    writer: Any = None  # a TensorBoard SummaryWriter, or None
    wall_before: float = 0.0  # seconds trained in earlier sessions
    started: float = field(default_factory=time.monotonic)
    interval_bits: float = 0.0
    interval_steps: int = 0
    interval_start: float = field(default_factory=time.monotonic)
    last_train_bits: float | None = None
    interrupted: bool = False
    # Early stopping: validations without a new best that end the run (None: off); set
    # on rank 0 by a validation, the stop taken by all ranks after the next step.
    patience: int | None = None
    stop_early: bool = False
    early_stopped: bool = False
    samples: SampleWriter | None = None  # None: train.sample_every = 0
    # Seconds this rank spent validating, checkpointing and sampling after steps (a budget's
    # calibration times the steps without them).
    periodic_seconds: float = 0.0

    @property
    def run_dir(self) -> Path:
        return Path(self.options.out)

    def wall_time(self) -> float:
        return self.wall_before + time.monotonic() - self.started

    def save(self, state: TrainState, name: str) -> None:
        """Write a checkpoint; a failed write (a full disk) is one TrainError line that
        says what is kept and how to go on (`_kept_after_failed_save`)."""
        state.wall_time = self.wall_time()
        path = self.run_dir / ckpt.CHECKPOINT_DIR / name
        try:
            state.save(path)
        except OSError as error:
            raise TrainError(
                f"cannot write checkpoint {path} at step {state.step}: "
                f"{error.strerror or error}; "
                f"{_kept_after_failed_save(path.parent, state.step)}"
            ) from None


def _kept_after_failed_save(folder: Path, step: int) -> str:
    """What a run has after a checkpoint write failed (the write is atomic: a file there
    before is whole) and what to do: --resume needs `last`."""
    last, best = folder / ckpt.LAST, folder / ckpt.BEST
    if last.is_file():
        return f"{last} (saved before) is kept: make room, then continue with --resume"
    if best.is_file():
        return (
            f"no {last.name} was saved before, so --resume cannot continue; {best} is "
            f"kept: make room, then copy it to {last} and --resume from it, or start "
            f"again in another --out"
        )
    return (
        f"no checkpoint was saved before this one, so the {step} step(s) trained are "
        f"lost: make room, then start the run again (without --resume)"
    )


def after_step(
    state: TrainState, monitor: Monitor, train_bits: float, lr: float, stop_requested: bool
) -> bool:
    """Validate, checkpoint, log and report after a step; -> True when the run stops here.

    The run stops early (with a checkpoint) on `stop_requested` (Ctrl-C), the time limit
    or `stop_at`, on every rank together; only rank 0 validates and writes.
    """
    options, tc, step = monitor.options, state.config.train, state.step
    monitor.last_train_bits = train_bits
    monitor.interval_bits += train_bits
    monitor.interval_steps += 1
    out_of_time = (
        options.time_limit is not None and time.monotonic() - monitor.started > options.time_limit
    ) or (options.stop_at is not None and step >= options.stop_at)
    early = monitor.stop_early
    stop = monitor.world.any(stop_requested or out_of_time or early, monitor.device) and (
        options.steps is None or step < options.steps
    )
    monitor.interrupted = stop and not (out_of_time or early)
    monitor.early_stopped = stop and early and not (stop_requested or out_of_time)
    if not monitor.world.is_main:
        return stop
    last = stop or step == options.steps
    periodic_start = time.monotonic()
    if monitor.interrupted and monitor.val_batches:
        # A signal (a scheduler's SIGTERM gives a grace period, then SIGKILL): the step is
        # saved before a validation that may take longer than the grace; last.pt is
        # written again below with the validation's best.
        monitor.save(state, ckpt.LAST)
    val_bits = None
    if monitor.val_batches and (step % tc.val_every == 0 or last):
        val_bits = _validate(state, monitor)
        if (
            not last
            and monitor.patience
            and state.best_step is not None
            and (step - state.best_step) // tc.val_every >= monitor.patience
        ):
            monitor.stop_early = True  # every rank stops after the next step
    checkpointed = step % tc.checkpoint_every == 0 or last
    if checkpointed:
        monitor.save(state, ckpt.LAST)
    extra = {}
    if monitor.samples is not None and tc.sample_every and step % tc.sample_every == 0:
        extra["sample_time_s"] = _sample(state, monitor)
    monitor.periodic_seconds += time.monotonic() - periodic_start
    elapsed = time.monotonic() - monitor.interval_start
    rate = monitor.samples_per_step * monitor.interval_steps / max(elapsed, 1e-9)
    if step % tc.log_every == 0 or val_bits is not None or last or extra:
        _log_metrics(monitor, step, lr, rate, val_bits, extra)
    if monitor.progress is not None:
        monitor.progress(
            StepReport(step, options.steps, train_bits, lr, rate, val_bits, checkpointed)
        )
    if monitor.early_stopped:
        logger.warning(
            "stopped early at step %d: validation has not improved on %.3f "
            "bits/sample (step %s, kept in best.pt) for %d validations "
            "(train.early_stop_patience)",
            step,
            state.best_val_bits or float("nan"),
            state.best_step,
            monitor.patience,
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
    if monitor.world.is_main:
        if monitor.val_batches:
            started = time.monotonic()
            bits = validation_bits(
                _evaluated_model(state, monitor),
                monitor.val_batches,
                state.config.model.receptive_field,
                monitor.device,
            )
            validation = time.monotonic() - started
            logger.info(
                "validation at step %d: %.3f bits/sample (%.2f s)", state.step, bits, validation
            )
        started = time.monotonic()
        monitor.save(state, ckpt.LAST)
        checkpoint = time.monotonic() - started
        if monitor.samples is not None and samples:
            sample = monitor.samples.estimate_seconds(_evaluated_model(state, monitor))
            logger.info("a sample takes %.2f s (one written to a scratch folder)", sample)
    world, device = monitor.world, monitor.device
    return RunCosts(
        world.from_main(validation, device),
        world.from_main(checkpoint, device),
        world.from_main(sample, device),
    )


def _evaluated_model(state: TrainState, monitor: Monitor) -> WaveNet:
    """The weights that validation and samples use: the EMA's when kept."""
    if state.ema is None:
        return state.model
    monitor.eval_model.load_state_dict(state.ema)
    return monitor.eval_model  # type: ignore[return-value]


def _sample(state: TrainState, monitor: Monitor) -> float:
    """Write this step's audio sample; -> its seconds. A sample that cannot be written
    (a full disk) is a warning: the run goes on."""
    assert monitor.samples is not None
    started = time.monotonic()
    try:
        seconds = monitor.samples.write(_evaluated_model(state, monitor), state.step)
    except OSError as error:
        logger.warning("no sample at step %d: %s", state.step, error.strerror or error)
        return time.monotonic() - started
    logger.info("sample of step %d written in %.2f s", state.step, seconds)
    return seconds


def _validate(state: TrainState, monitor: Monitor) -> float:
    """Bits per sample on the validation crops (EMA weights when kept); saves `best`."""
    model = _evaluated_model(state, monitor)
    val_bits = validation_bits(
        model, monitor.val_batches, state.config.model.receptive_field, monitor.device
    )
    if state.best_val_bits is None or val_bits < state.best_val_bits:
        state.best_val_bits = val_bits
        state.best_step = state.step
        monitor.save(state, ckpt.BEST)
    return val_bits


def _log_metrics(
    monitor: Monitor,
    step: int,
    lr: float,
    rate: float,
    val_bits: float | None,
    extra: dict[str, float] | None = None,
) -> None:
    """One line of metrics.jsonl (and TensorBoard scalars) for the interval since the
    last; `extra` (the seconds a sample took) is added to it."""
    record = {
        "step": step,
        "train_bits": monitor.interval_bits / monitor.interval_steps,
        "lr": lr,
        "samples_per_s": rate,
        "wall_time": monitor.wall_time(),
    }
    if val_bits is not None:
        record["val_bits"] = val_bits
    record.update(extra or {})
    append_metrics(monitor.run_dir / METRICS_FILE, record)
    if monitor.writer is not None:
        for key in ("train_bits", "val_bits", "lr", "samples_per_s", "sample_time_s"):
            if key in record:
                monitor.writer.add_scalar(key, record[key], step)
    monitor.interval_bits, monitor.interval_steps = 0.0, 0
    monitor.interval_start = time.monotonic()


def append_metrics(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def truncate_metrics(path: Path, after_step: int) -> None:
    """Drop log lines past the checkpoint we resume from (their steps are redone), and
    lines that are not a JSON object (a torn last line: a crash while writing it), with
    a warning."""
    if not path.exists():
        return
    kept, torn = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            if json.loads(line).get("step", 0) <= after_step:
                kept.append(line)
        except (ValueError, AttributeError, TypeError):
            torn += 1
    if torn:
        logger.warning(
            "dropped %d unreadable line(s) of %s (cut short by a crash while writing)", torn, path
        )
    atomic_write_bytes(path, lambda h: h.write("".join(l + "\n" for l in kept).encode()))


def tensorboard_writer(run_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise TrainError(
            "--tensorboard needs the tensorboard package (pip install tensorboard)"
        ) from None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))

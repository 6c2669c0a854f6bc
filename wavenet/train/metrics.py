"""A run's metrics: RUN/metrics.jsonl (one JSON object a line) and TensorBoard scalars.

MetricsLog.add_step(train_bits)       after every step
MetricsLog.rate()                     scored samples per second since the last line
MetricsLog.write(step, lr, ...)       one line for the steps since the last
truncate_metrics(path, step)          cut the log back to a checkpoint's step (resume)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import TrainError
from ..util.files import atomic_write_bytes

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    """The metrics of the steps since the last line, and where the lines go.

    samples_per_step: scored samples per optimizer step, all ranks together; writer: a
    TensorBoard SummaryWriter, or None; clock: the budget's.
    """

    def __init__(
        self,
        run_dir: Path,
        samples_per_step: int,
        writer: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self.samples_per_step = samples_per_step
        self.writer = writer
        self.clock = clock
        self.interval_bits = 0.0
        self.interval_steps = 0
        self.interval_start = clock()
        self.last_train_bits: float | None = None

    def add_step(self, train_bits: float) -> None:
        self.last_train_bits = train_bits
        self.interval_bits += train_bits
        self.interval_steps += 1

    def rate(self) -> float:
        """Scored samples per second over the steps since the last line."""
        elapsed = self.clock() - self.interval_start
        return self.samples_per_step * self.interval_steps / max(elapsed, 1e-9)

    def write(
        self,
        step: int,
        lr: float,
        rate: float,
        wall_time: float,
        val_bits: float | None,
        extra: dict[str, float] | None = None,
    ) -> None:
        """One line of metrics.jsonl (and TensorBoard scalars) for the interval since the
        last; `extra` (the seconds a sample took) is added to it."""
        record = {
            "step": step,
            "train_bits": self.interval_bits / self.interval_steps,
            "lr": lr,
            "samples_per_s": rate,
            "wall_time": wall_time,
        }
        if val_bits is not None:
            record["val_bits"] = val_bits
        record.update(extra or {})
        append_metrics(self.path, record)
        if self.writer is not None:
            for key in ("train_bits", "val_bits", "lr", "samples_per_s", "sample_time_s"):
                if key in record:
                    self.writer.add_scalar(key, record[key], step)
        self.interval_bits, self.interval_steps = 0.0, 0
        self.interval_start = self.clock()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


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
    atomic_write_bytes(path, lambda h: h.write("".join(line + "\n" for line in kept).encode()))


def tensorboard_writer(run_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise TrainError(
            "--tensorboard needs the tensorboard package (pip install tensorboard)"
        ) from None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))

"""A training run's state: what it needs to continue bit for bit, and what its checkpoints
hold. The file format is wavenet/io/checkpoint.py's; this is the one place that decides
which training values go into it and how they come back."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import Config
from ..io.checkpoint import USE_ANOTHER, CheckpointError, load_weights, save_checkpoint
from .budget import RunLength

logger = logging.getLogger(__name__)


@dataclass
class TrainState:
    """Everything a training run needs to continue bit for bit, and what it checkpoints.

    ema: the exponential moving average of the model's state dict (None: no EMA).
    crop_generator: the generator every crop is drawn from (with torch's global CPU RNG,
    the run's RNG state: nothing else is random). wall_time: seconds trained so far, over
    every session of the run. speakers, world_size: recorded for `info`, resumes and eval.
    length: how long the run trains (--steps, the budget, its fixed schedule), owned by
    the session's `budget.Budget`, kept here for the checkpoints. ema_start: the
    step the average began at: 0, or the step of the resume that turned train.ema_decay
    on (the average then starts from the resumed weights; `train.ema_weight` counts its
    updates from there).
    """

    config: Config
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    crop_generator: torch.Generator
    ema: dict[str, torch.Tensor] | None = None
    step: int = 0
    best_val_bits: float | None = None
    wall_time: float = 0.0
    speakers: list[str] | None = None
    world_size: int = 1
    length: RunLength = field(default_factory=RunLength)
    ema_start: int = 0
    # The training data of this session (train_files, train_seconds, val_files), for the
    # model card of an export and for `info`; not restored on resume (the data may differ).
    data_summary: dict[str, Any] | None = None
    # The step of the best validation (best.pt), for early stopping; None: none yet.
    best_step: int | None = None

    def save(self, path: str | Path) -> None:
        save_checkpoint(
            path,
            config=self.config,
            model=self.model.state_dict(),
            step=self.step,
            ema=self.ema,
            optimizer=self.optimizer.state_dict(),
            rng={"crops": self.crop_generator.get_state(), "torch": torch.get_rng_state()},
            best_val_bits=self.best_val_bits,
            extra={
                "wall_time": self.wall_time,
                "world_size": self.world_size,
                "speakers": self.speakers,
                **self.length.to_extra(),
                "ema_start": self.ema_start,
                "data": self.data_summary,
                "best_step": self.best_step,
            },
        )

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        """Restore a checkpoint's training state (and torch's global CPU RNG) in place.

        The config and the speakers are read before the state is built, with
        `config_from_checkpoint` and `speakers_from_checkpoint`.
        """
        load_weights(self.model, payload["model"], "the checkpoint's")
        try:
            self.optimizer.load_state_dict(payload["optimizer"])
            self.crop_generator.set_state(payload["rng"]["crops"])
            torch.set_rng_state(payload["rng"]["torch"])
            wall_time = float(payload["extra"].get("wall_time", 0.0))
            length = RunLength.from_extra(payload["extra"])
            ema_start = int(payload["extra"].get("ema_start", 0))
            best_step = payload["extra"].get("best_step")
            best_step = int(best_step) if best_step is not None else None
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise CheckpointError(
                f"the checkpoint's training state is incomplete or damaged "
                f"({type(error).__name__}: {str(error).strip()[:120]}); it "
                f"can still generate, but to resume {USE_ANOTHER}"
            ) from None
        if self.ema is not None and payload.get("ema") is not None:
            device = next(iter(self.ema.values())).device
            self.ema = {k: v.to(device) for k, v in payload["ema"].items()}
        elif self.ema is not None:  # train.ema_decay turned on by this resume
            self.ema = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            ema_start = payload["step"]
            logger.info("the EMA starts at step %d from the resumed weights", ema_start)
        self.ema_start = ema_start
        self.step = payload["step"]
        self.best_val_bits = payload.get("best_val_bits")
        self.best_step = best_step
        self.wall_time = wall_time
        self.length = length

"""Validation while a run trains: bits per sample on fixed held-out crops, the `best`
checkpoint, and early stopping when validation stops improving (rank 0 only)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from ..data.crops import Batch
from ..io import checkpoint as ckpt
from ..nn.model import WaveNet
from .checkpoints import Checkpoints
from .loss import validation_bits
from .state import TrainState


class Validation:
    """The fixed validation crops and the weights they are scored with.

    batches: the crops (none: the run has no validation data, or this is not rank 0);
    eval_model: a copy of the model that EMA weights are loaded into (the model itself
    when there is no EMA); patience: validations without a new best that end the run
    (None: no early stopping). `stop_early` is set by the validation that runs out of
    patience; every rank stops after the next step.
    """

    def __init__(
        self,
        batches: list[Batch],
        eval_model: torch.nn.Module,
        device: torch.device,
        patience: int | None = None,
    ) -> None:
        self.batches = batches
        self.eval_model = eval_model
        self.device = device
        self.patience = patience
        self.stop_early = False

    def evaluated_model(self, state: TrainState) -> WaveNet:
        """The weights that validation and samples use: the EMA's when kept."""
        if state.ema is None:
            return state.model  # type: ignore[return-value]
        self.eval_model.load_state_dict(state.ema)
        return self.eval_model  # type: ignore[return-value]

    def bits(self, state: TrainState) -> float:
        """Bits per sample on the validation crops (EMA weights when kept)."""
        return validation_bits(
            self.evaluated_model(state),
            self.batches,
            state.config.model.receptive_field,
            self.device,
        )

    def validate(self, state: TrainState, checkpoints: Checkpoints) -> float:
        """Bits per sample on the validation crops; a new best is saved as `best`."""
        val_bits = self.bits(state)
        if state.best_val_bits is None or val_bits < state.best_val_bits:
            state.best_val_bits = val_bits
            state.best_step = state.step
            checkpoints.save(state, ckpt.BEST)
        return val_bits

    def check_patience(self, state: TrainState, val_every: int) -> None:
        """After a validation that is not the run's last: out of patience, stop early."""
        if (
            self.patience
            and state.best_step is not None
            and (state.step - state.best_step) // val_every >= self.patience
        ):
            self.stop_early = True

    def timed(
        self, state: TrainState, clock: Callable[[], float] = time.monotonic
    ) -> tuple[float, float]:
        """One validation pass, not recorded -> (bits, its seconds on `clock`)."""
        started = clock()
        bits = self.bits(state)
        return bits, clock() - started

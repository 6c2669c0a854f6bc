"""Checkpoint files: one self-describing `torch.save` dict, written atomically.

Layout (format `wavenet-checkpoint`, version 1)::

    format, format_version, package_version, config (the full resolved config as a dict),
    model (state dict), ema (state dict or None), optimizer (state dict or None),
    step, rng (torch CPU RNG state, crop-sampler generator state), best_val_bits (or None),
    extra (a dict of plain values: speaker names, world size, wall time)

A training run's checkpoint is written and read in one place, `TrainState.save` and
`TrainState.load_state_dict`. Files are always read with `weights_only=True`; a newer
format version is refused.
A run folder holds `config.json`, `checkpoints/last.pt`, `checkpoints/best.pt` and
`metrics.jsonl`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import Config, ConfigError, config_from_dict
from .errors import WavenetError
from .files import atomic_write_bytes
from .model import WaveNet

logger = logging.getLogger(__name__)

FORMAT_NAME = "wavenet-checkpoint"
FORMAT_VERSION = 1

CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"


class CheckpointError(WavenetError, ValueError):
    """A checkpoint or run folder is missing, unreadable or of an unknown format."""


def save_checkpoint(path: str | Path, *, config: Config, model: dict[str, torch.Tensor],
                    step: int, ema: dict[str, torch.Tensor] | None = None,
                    optimizer: dict[str, Any] | None = None, rng: dict[str, Any] | None = None,
                    best_val_bits: float | None = None,
                    extra: dict[str, Any] | None = None) -> None:
    """Write a checkpoint atomically. Tensors are moved to the CPU first."""
    from . import __version__

    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "config": config.to_dict(),
        "model": _to_cpu(model),
        "ema": _to_cpu(ema) if ema is not None else None,
        "optimizer": _to_cpu(optimizer) if optimizer is not None else None,
        "step": int(step),
        "rng": rng or {},
        "best_val_bits": best_val_bits,
        "extra": extra or {},
    }
    atomic_write_bytes(Path(path), lambda handle: torch.save(payload, handle))


@dataclass
class TrainState:
    """Everything a training run needs to continue bit for bit, and what it checkpoints.

    ema: the exponential moving average of the model's state dict (None: no EMA).
    crop_generator: the generator every crop is drawn from (with torch's global CPU RNG,
    the run's RNG state: nothing else is random). wall_time: seconds trained so far, over
    every session of the run. speakers, world_size: recorded for `info`, resumes and eval.
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

    def save(self, path: str | Path) -> None:
        save_checkpoint(
            path, config=self.config, model=self.model.state_dict(), step=self.step,
            ema=self.ema, optimizer=self.optimizer.state_dict(),
            rng={"crops": self.crop_generator.get_state(), "torch": torch.get_rng_state()},
            best_val_bits=self.best_val_bits,
            extra={"wall_time": self.wall_time, "world_size": self.world_size,
                   "speakers": self.speakers})

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        """Restore a checkpoint's training state (and torch's global CPU RNG) in place.

        The config and the speakers are read before the state is built, with
        `config_from_checkpoint` and `speakers_from_checkpoint`.
        """
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        if self.ema is not None and payload.get("ema") is not None:
            device = next(iter(self.ema.values())).device
            self.ema = {k: v.to(device) for k, v in payload["ema"].items()}
        self.step = payload["step"]
        self.best_val_bits = payload.get("best_val_bits")
        self.crop_generator.set_state(payload["rng"]["crops"])
        torch.set_rng_state(payload["rng"]["torch"])
        self.wall_time = float(payload["extra"].get("wall_time", 0.0))


def speakers_from_checkpoint(payload: dict[str, Any]) -> list[str] | None:
    """The speaker names of a model trained with speakers from folders, else None."""
    return payload["extra"].get("speakers")


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint file (weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for damaged files
        raise CheckpointError(f"cannot read checkpoint {path}: {str(error).splitlines()[0]}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path} is not a wavenet checkpoint")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version}; this wavenet reads versions "
            f"up to {FORMAT_VERSION} (upgrade the package)")
    return payload


def resolve_checkpoint(run_or_checkpoint: str | Path, prefer: str = "best") -> Path:
    """A checkpoint file, or a run folder's `best` (else `last`) checkpoint.

    `prefer="last"` picks `last` first (used for resuming and for `info`).
    """
    path = Path(run_or_checkpoint)
    if path.is_file():
        return path
    if not path.exists():
        raise CheckpointError(f"no run folder or checkpoint at {path}")
    order = [BEST, LAST] if prefer == "best" else [LAST, BEST]
    for name in order:
        candidate = path / CHECKPOINT_DIR / name
        if candidate.is_file():
            return candidate
    raise CheckpointError(f"run folder {path} has no checkpoint in {path / CHECKPOINT_DIR}")


def config_from_checkpoint(payload: dict[str, Any]) -> Config:
    try:
        return config_from_dict(payload["config"])
    except (KeyError, ConfigError) as error:
        raise CheckpointError(f"checkpoint config is invalid: {error}") from None


def model_from_checkpoint(payload: dict[str, Any], use_ema: bool = True) -> WaveNet:
    """Rebuild the model a checkpoint describes; EMA weights are used when present."""
    config = config_from_checkpoint(payload)
    model = WaveNet(config.model)
    state = payload["ema"] if use_ema and payload.get("ema") is not None else payload["model"]
    model.load_state_dict(state)
    return model.eval()


def load_model(run_or_checkpoint: str | Path, device: str | torch.device = "cpu",
               use_ema: bool = True) -> tuple[WaveNet, Config, dict[str, Any]]:
    """Load (model, config, checkpoint payload) from a run folder or checkpoint file."""
    payload = load_checkpoint(resolve_checkpoint(run_or_checkpoint))
    model = model_from_checkpoint(payload, use_ema=use_ema).to(device)
    return model, config_from_checkpoint(payload), payload

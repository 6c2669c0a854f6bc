"""Checkpoint files: one self-describing `torch.save` dict, written atomically.

Layout (format `wavenet-checkpoint`, version 2): the file is a `torch.save` dict

    format, format_version, sha256 (hex digest of contents), contents (uint8 tensor)

where `contents` is the `torch.save` bytes of the payload, itself a dict of

    format, format_version, package_version, config (the full resolved config as a dict),
    model (state dict), ema (state dict or None), optimizer (state dict or None),
    step, rng (torch CPU RNG state, crop-sampler generator state), best_val_bits (or None),
    extra (a dict of plain values: speaker names, world size, wall time)

Version 1 files are the payload alone, without a checksum; they still load.

A training run's checkpoint is written and read in one place, `TrainState.save` and
`TrainState.load_state_dict` (wavenet/train/state.py), through `save_checkpoint`. Files
are always read with `weights_only=True`; a newer format version is refused.
`load_checkpoint` checks everything before returning (the checksum, the layout, the
config, that the weights fit the config): each way a file can be broken is one
CheckpointError line.
A run folder holds `config.json`, `checkpoints/last.pt`, `checkpoints/best.pt` and
`metrics.jsonl`.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..config import Config, ConfigError, config_from_dict
from ..errors import CheckpointError
from ..nn.model import WaveNet
from ..util.files import atomic_write_bytes
from ..util.hardware import check_device
from .export import is_export_dir, read_export

logger = logging.getLogger(__name__)

FORMAT_NAME = "wavenet-checkpoint"
FORMAT_VERSION = 2

CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"
# The end of every message about a broken checkpoint: what to do.
USE_ANOTHER = (
    "use another checkpoint (a run folder keeps checkpoints/last.pt and "
    "checkpoints/best.pt; --resume reads last.pt, so copy best.pt over it to "
    "resume from there) or train again"
)


def save_checkpoint(
    path: str | Path,
    *,
    config: Config,
    model: dict[str, torch.Tensor],
    step: int,
    ema: dict[str, torch.Tensor] | None = None,
    optimizer: dict[str, Any] | None = None,
    rng: dict[str, Any] | None = None,
    best_val_bits: float | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically. Tensors are moved to the CPU first."""
    from ..version import __version__

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
    write_payload(path, payload)


def write_payload(path: str | Path, payload: dict[str, Any]) -> None:
    """Write a payload dict as a checksummed format-2 file, atomically.

    Both layers are serialized in memory first, so the file is written with plain writes
    and a full disk is one OSError (the file there before is kept).
    """
    inner = io.BytesIO()
    torch.save(payload, inner)
    contents = torch.frombuffer(inner.getbuffer(), dtype=torch.uint8)
    outer = io.BytesIO()
    torch.save(
        {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "sha256": hashlib.sha256(inner.getbuffer()).hexdigest(),
            "contents": contents,
        },
        outer,
    )
    del contents
    atomic_write_bytes(Path(path), lambda handle: handle.write(outer.getbuffer()))


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
    """Read and check a checkpoint file (weights_only=True), or an exported model's
    folder (`wavenet.io.export.read_export`) -> its payload dict.

    Checked: the checksum (format 2), the layout, the config, and that the weights (and
    EMA weights) fit the config; anything wrong is one CheckpointError line.
    """
    path = Path(path)
    if is_export_dir(path):  # an exported model (wavenet.io.export): read as a payload
        payload = read_export(path)
        _check_payload(payload, path)
        return payload
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"checkpoint {path} is empty (0 bytes): it was never written completely; {USE_ANOTHER}"
        )
    outer = _check_format(_read_torch(path, path, "cpu"), path)
    if outer["format_version"] < 2:
        payload = outer  # format 1: the payload itself, no checksum
    else:
        contents, digest = outer.get("contents"), outer.get("sha256")
        if (
            not isinstance(contents, torch.Tensor)
            or contents.dtype != torch.uint8
            or contents.dim() != 1
            or not isinstance(digest, str)
        ):
            raise CheckpointError(
                f"checkpoint {path} lacks its contents or their checksum; {USE_ANOTHER}"
            )
        data = contents.contiguous().numpy()
        # numpy's stubs lack the buffer protocol its arrays have (no copy through bytes).
        if hashlib.sha256(data).hexdigest() != digest:  # type: ignore[arg-type]
            raise CheckpointError(
                f"checkpoint {path} is damaged: its contents do not match "
                f"their checksum; {USE_ANOTHER}"
            )
        payload = _check_format(_read_torch(io.BytesIO(data.tobytes()), path, map_location), path)
    _check_payload(payload, path)
    return payload


def _read_torch(source: Path | io.BytesIO, path: Path, map_location: Any) -> Any:
    try:
        return torch.load(source, map_location=map_location, weights_only=True)
    except Exception:  # torch raises several types for damaged files, none worth showing
        raise CheckpointError(
            f"cannot read checkpoint {path}: it is damaged, cut short or "
            f"not a wavenet checkpoint (only tensors and plain values are "
            f"ever loaded from one); {USE_ANOTHER}"
        ) from None


def _check_format(payload: Any, path: Path) -> dict[str, Any]:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path} is not a wavenet checkpoint")
    version = payload.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{path} has no valid checkpoint format version; {USE_ANOTHER}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version}; this wavenet reads versions "
            f"up to {FORMAT_VERSION} (upgrade the package)"
        )
    return payload


# key -> (what it must be, test); None is allowed where the layout says "or None".
_LAYOUT: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "config": ("a dict", lambda v: isinstance(v, dict)),
    "model": ("a state dict", lambda v: _is_state_dict(v)),
    "ema": ("a state dict or None", lambda v: v is None or _is_state_dict(v)),
    "optimizer": ("a dict or None", lambda v: v is None or isinstance(v, dict)),
    "step": ("an int >= 0", lambda v: type(v) is int and v >= 0),
    "rng": ("a dict", lambda v: isinstance(v, dict)),
    "best_val_bits": (
        "a finite number or None",
        lambda v: v is None or (type(v) in (int, float) and math.isfinite(v)),
    ),
    "extra": ("a dict", lambda v: isinstance(v, dict)),
}


def _is_state_dict(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()
    )


def _check_payload(payload: dict[str, Any], path: Path) -> None:
    """The layout, the config, and that the weights fit the config."""
    for key, (expected, test) in _LAYOUT.items():
        if key not in payload:
            raise CheckpointError(f"checkpoint {path} has no {key!r}; {USE_ANOTHER}")
        if not test(payload[key]):
            raise CheckpointError(f"checkpoint {path}: {key!r} is not {expected}; {USE_ANOTHER}")
    try:
        config = config_from_dict(payload["config"])
    except (ConfigError, TypeError, ValueError) as error:
        raise CheckpointError(
            f"checkpoint {path} holds an invalid config ({str(error).strip()[:200]}); {USE_ANOTHER}"
        ) from None
    with torch.random.fork_rng(devices=[]):  # building a model draws from torch's RNG
        model = WaveNet(config.model)
    for key in ("model", "ema"):
        if payload[key] is not None:
            load_weights(model, payload[key], f"checkpoint {path}: {key!r}")


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """model.load_state_dict(state), a mismatch as one CheckpointError line."""
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines()[1:] if line.strip()]
        problem = (lines[0] if lines else str(error).strip())[:200]
        raise CheckpointError(
            f"{what} weights do not fit the config ({problem}); {USE_ANOTHER}"
        ) from None


def resolve_checkpoint(run_or_checkpoint: str | Path, prefer: str = "best") -> Path:
    """A checkpoint file, an exported model's folder, or a run folder's `best` (else
    `last`) checkpoint.

    `prefer="last"` picks `last` first (used for resuming and for `info`).
    """
    path = Path(run_or_checkpoint)
    if path.is_file() or is_export_dir(path):
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
    load_weights(model, state, "the checkpoint's")
    return model.eval()


def load_model(
    run_or_checkpoint: str | Path, device: str | torch.device = "cpu", use_ema: bool = True
) -> tuple[WaveNet, Config, dict[str, Any]]:
    """Load (model, config, checkpoint payload) from a run folder, a checkpoint file or
    an exported model's folder (`wavenet export`).

    Weights that are NaN or infinite (a run that diverged) are refused: they could only
    generate noise or score NaN.
    """
    device = check_device(device)  # InvalidArgumentError for a device this machine lacks
    path = resolve_checkpoint(run_or_checkpoint)
    payload = load_checkpoint(path)
    model = model_from_checkpoint(payload, use_ema=use_ema)
    bad = [
        name
        for name, value in model.state_dict().items()
        if value.is_floating_point() and not torch.isfinite(value).all()
    ]
    if bad:
        raise CheckpointError(
            f"checkpoint {path} holds NaN or infinite weights ({len(bad)} "
            f"tensor(s), the first {bad[0]}): training diverged before it "
            f"was saved; use an earlier checkpoint or train again with a "
            f"lower train.lr"
        )
    return model.to(device), config_from_checkpoint(payload), payload

"""Starting a new run from a trained model's weights (`wavenet train --init-from SOURCE`).

The new model has the source's config, except what fine-tuning needs:

- other or more speakers (`--speakers-from-folders` on new data): speakers known to the
  source keep their embedding rows, matched by name; new ones start from the mean of the
  known rows;
- an unconditioned model becoming a vocoder (`model.local_channels` set): the mel's
  projections into every layer start at zero, so at step 0 the model computes exactly
  what the source computes, and training learns how much the mel should change it.

Any other parameter whose shape no longer fits (a `--set model.*` that changes the
network) is refused in one line that lists them.
"""

from __future__ import annotations

import dataclasses
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import Config, ModelConfig, apply_overrides, config_from_dict
from ..errors import TrainError
from ..io.checkpoint import load_checkpoint, resolve_checkpoint, speakers_from_checkpoint
from ..nn.model import WaveNet
from ..util.files import file_sha256

logger = logging.getLogger(__name__)

SPEAKER_TABLE = "global_embedding.weight"
# Parameters a model gains when it becomes a vocoder; they may be absent from the source.
_VOCODER_PREFIXES = ("local_projections.", "upsampler.", "mel_mean", "mel_std")


def _shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every entry of WaveNet(config).state_dict(), nothing allocated."""
    with torch.device("meta"):
        model = WaveNet(config)
    return {name: tuple(value.shape) for name, value in model.state_dict().items()}


def incompatible_parameters(source: ModelConfig, target: ModelConfig) -> list[str]:
    """The parameters of `target` that cannot start from `source`'s weights:
    `name (source shape -> target shape)`, `name (not in the source)` or
    `name (only in the source)`. The speaker table's row count and a vocoder's new
    parameters (when the source has no mel input) are not listed: they are what
    fine-tuning changes."""
    have, want = _shapes(source), _shapes(target)
    problems = []
    for name, shape in want.items():
        if name not in have:
            if source.local_channels is None and name.startswith(_VOCODER_PREFIXES):
                continue
            problems.append(f"{name} (not in the source)")
        elif have[name] != shape and not (name == SPEAKER_TABLE and have[name][1:] == shape[1:]):
            problems.append(
                f"{name} ({'x'.join(map(str, have[name]))} -> {'x'.join(map(str, shape))})"
            )
    problems += [f"{name} (only in the source)" for name in have if name not in want]
    return problems


def check_fine_tunable(source: ModelConfig, target: ModelConfig) -> None:
    """TrainError listing the parameters that no longer fit, if any."""
    problems = incompatible_parameters(source, target)
    if problems:
        shown = ", ".join(problems[:6]) + (
            f" and {len(problems) - 6} more" if len(problems) > 6 else ""
        )
        raise TrainError(
            f"--init-from: the model config asked for does not fit the source's "
            f"weights: {shown}; only the speakers (--speakers-from-folders) and "
            f"a mel input (model.local_channels) can change when fine-tuning"
        )


def _key(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def load_source_weights(
    model: WaveNet,
    state: dict[str, torch.Tensor],
    *,
    source_config: ModelConfig,
    source_speakers: Sequence[str] | None,
    speakers: Sequence[str] | None,
) -> list[str]:
    """Copy the source's weights into `model` (in place, so an optimizer made over its
    parameters stays valid) -> lines saying what changed. See the module docstring."""
    check_fine_tunable(source_config, model.config)
    target = model.state_dict()
    notes: list[str] = []
    with torch.no_grad():
        for name, value in state.items():
            if name == SPEAKER_TABLE:
                target[name].copy_(_speaker_rows(value, source_speakers, speakers, notes))
            else:
                target[name].copy_(value)
        if model.config.local_channels is not None and source_config.local_channels is None:
            # Weights and biases of every local projection.
            for parameter in model.local_projections.parameters():
                parameter.zero_()
            notes.append(
                f"the model becomes a vocoder: its {model.config.local_channels}-band "
                f"mel input starts at zero weight, so step 0 computes the source model"
            )
    return notes


def _speaker_rows(
    table: torch.Tensor,
    source_speakers: Sequence[str] | None,
    speakers: Sequence[str] | None,
    notes: list[str],
) -> torch.Tensor:
    """The new speaker table: known names keep their rows, new ones get the mean row."""
    if speakers is None:
        return table
    known = {_key(name): i for i, name in enumerate(source_speakers or [])}
    if not known:  # a source without names: ids "0", "1", ... as it was trained
        known = {str(i): i for i in range(table.shape[0])}
    mean = table.mean(dim=0)
    rows: list[torch.Tensor] = []
    kept: list[str] = []
    new: list[str] = []
    for name in speakers:
        index = known.get(_key(name))
        rows.append(table[index] if index is not None else mean)
        (kept if index is not None else new).append(name)
    if new:
        notes.append(
            f"speakers: {len(kept)} known to the source keep their embeddings"
            f"{' (' + ', '.join(kept) + ')' if kept else ''}; {len(new)} new "
            f"({', '.join(new)}) start from the mean of the source's "
            f"{table.shape[0]}"
        )
    return torch.stack(rows)


@dataclass(frozen=True)
class Source:
    """A model to start from: where it is, its checked payload, and its sha256."""

    path: Path
    payload: dict[str, Any]
    sha256: str

    @property
    def config(self) -> Config:
        return config_from_dict(self.payload["config"])

    @property
    def weights(self) -> dict[str, torch.Tensor]:
        """The weights a run starts from: the source's EMA average where it has one."""
        payload = self.payload
        state: dict[str, torch.Tensor] = (
            payload["ema"] if payload.get("ema") is not None else payload["model"]
        )
        return state

    @property
    def speakers(self) -> list[str] | None:
        return speakers_from_checkpoint(self.payload)


def read_source(path: str | Path) -> Source:
    """A run folder (its best checkpoint, else last), a checkpoint file or an export
    folder, read and checked (CheckpointError / ExportError in one line)."""
    resolved = resolve_checkpoint(path)
    payload = load_checkpoint(resolved)
    export = payload["extra"].get("export")
    if export is not None:  # an export: its weights file's checksum, already verified
        sha256 = export["sha256"]
    else:
        sha256 = file_sha256(resolved)
    return Source(resolved, payload, sha256)


def fine_tune_config(
    source: Source, overrides: Sequence[str] = (), speakers_from_folders: bool = False
) -> Config:
    """The config of a run that starts from `source`: the source's, with `overrides`
    (`section.key=value`) applied and the source recorded in train.init_from(_sha256).
    With speakers from folders, the speaker count comes from the new data's folders
    (unless an override sets it). Refuses overrides that change a weight's shape."""
    data = apply_overrides(source.config.to_dict(), overrides)
    if speakers_from_folders and not any(
        o.split("=", 1)[0].strip() == "model.global_classes" for o in overrides
    ):
        data["model"]["global_classes"] = None
    data["train"]["init_from"] = str(source.path)
    data["train"]["init_from_sha256"] = source.sha256
    config = config_from_dict(data)
    wanted = config.model
    if wanted.global_classes is None and source.config.model.global_classes is not None:
        wanted = dataclasses.replace(wanted, global_classes=source.config.model.global_classes)
    check_fine_tunable(source.config.model, wanted)
    return config

"""Negative log-likelihood of whole files, every sample with its full receptive field.

For a file of n codes, sample p is scored for every p >= receptive_field: its prediction
reads codes p - receptive_field ... p - 1, so the first receptive_field codes are context
only. Files are cut into chunks of targets; each chunk carries its own context, so the
result does not depend on the chunk size. A vocoder (mel-conditioned model) scores each
file in one piece, since upsampled features near a cut would see only part of the mel.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..coding.logistic import mixture_log_prob
from ..coding.pcm import silence_code
from ..errors import InvalidArgumentError
from ..nn.model import WaveNet, at_least_float32


@dataclass
class EvalResult:
    bits_per_sample: float
    samples: int
    files: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "bits_per_sample": self.bits_per_sample,
            "samples": self.samples,
            "files": self.files,
        }


@dataclass
class _Window:
    inputs: torch.Tensor  # (T,) codes the model reads
    targets: torch.Tensor  # (N,) codes scored
    first: int  # the position whose logits predict targets[0]
    global_id: int | None = None
    mel: torch.Tensor | None = None  # (n_mels, frames)


def _windows(
    model: WaveNet, codes: torch.Tensor, chunk: int, global_id: int | None, mel: torch.Tensor | None
) -> list[_Window]:
    rf = model.receptive_field
    if mel is not None:
        # Position t predicts code t and reads feature t: feed one silence code first.
        n = min(len(codes), mel.shape[1] * model.config.upsample_factor)
        if n <= rf:
            return []
        pad = torch.tensor([silence_code(model.config.classes)])
        return [_Window(torch.cat([pad, codes[: n - 1]]), codes[rf:n], rf, global_id, mel)]
    return [
        _Window(codes[start - rf : end - 1], codes[start:end], rf - 1, global_id)
        for start in range(rf, len(codes), chunk)
        for end in [min(start + chunk, len(codes))]
    ]


@torch.inference_mode()
def evaluate_codes(
    model: WaveNet,
    files: Sequence[np.ndarray | torch.Tensor],
    *,
    global_ids: Sequence[int] | None = None,
    mels: Sequence[np.ndarray | torch.Tensor] | None = None,
    chunk: int = 16384,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    logits_of: Callable[..., torch.Tensor] | None = None,
) -> EvalResult:
    """Bits per sample of `model` over full code sequences (one array per file): per
    16-bit sample for a "mol" model (its codes are 16-bit samples, wavenet/coding/pcm.py).

    global_ids: one id per file for a globally conditioned model; mels: one log-mel
    (n_mels, frames) per file for a vocoder. logits_of: computes the logits instead of
    `model`, called as model is (codes, global_cond=, mel=): another arithmetic for the
    same model, e.g. `functools.partial(reduced.dot_logits, model, "int8-dot")`.
    """
    if chunk < 1 or batch_size < 1:
        raise InvalidArgumentError("chunk and batch_size must be >= 1")
    model.eval()
    device = next(model.parameters()).device
    windows: list[_Window] = []
    scored_files = 0
    for i, codes in enumerate(files):
        codes = torch.from_numpy(np.array(codes, dtype=np.int64))
        mel = None if mels is None else torch.from_numpy(np.array(mels[i], dtype=np.float32))
        found = _windows(model, codes, chunk, None if global_ids is None else global_ids[i], mel)
        scored_files += bool(found)
        windows.extend(found)
    # Windows of equal shape batch without padding.
    windows.sort(key=lambda w: (len(w.inputs), w.first))
    total_nats, total_samples = 0.0, 0
    for first in range(0, len(windows), batch_size):
        group = windows[first : first + batch_size]
        by_shape: dict[tuple[int, int, int], list[_Window]] = {}
        for window in group:
            frames = 0 if window.mel is None else window.mel.shape[1]
            by_shape.setdefault((len(window.inputs), window.first, frames), []).append(window)
        for same in by_shape.values():
            inputs = torch.stack([w.inputs for w in same]).to(device)
            targets = torch.stack([w.targets for w in same]).to(device)
            ids = (
                torch.tensor([w.global_id for w in same], device=device)
                if same[0].global_id is not None
                else None
            )
            same_mels = [w.mel for w in same if w.mel is not None]  # all of them, or none
            mel = torch.stack(same_mels).to(device) if same_mels else None
            start = same[0].first
            forward = model if logits_of is None else logits_of
            logits = forward(inputs, global_cond=ids, mel=mel)
            logits = logits[:, :, start : start + targets.shape[1]]
            total_nats += _nats(model, at_least_float32(logits), targets)
            total_samples += targets.numel()
        if progress is not None:
            progress(min(first + batch_size, len(windows)), len(windows))
    if total_samples == 0:
        raise InvalidArgumentError(
            f"no file is longer than the receptive field ({model.receptive_field} samples)"
        )
    return EvalResult(total_nats / total_samples / math.log(2.0), total_samples, scored_files)


def _nats(model: WaveNet, logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Summed -log P (nats) of targets (B, N) under logits (B, O, N): softmax
    cross-entropy, or the logistic mixture's for a "mol" model (bits per 16-bit sample)."""
    if model.config.output == "mol":
        rows = logits.transpose(1, 2).reshape(-1, logits.shape[1])
        return -mixture_log_prob(rows, targets.reshape(-1)).sum().item()
    return F.cross_entropy(logits, targets, reduction="sum").item()

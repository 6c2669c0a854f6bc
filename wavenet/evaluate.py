"""Negative log-likelihood of whole files, every sample with its full receptive field.

For a file of n codes, sample p is scored for every p >= receptive_field: its prediction
reads codes p - receptive_field ... p - 1, so the first receptive_field codes are context
only. Files are cut into chunks of targets; each chunk carries its own context, so the
result does not depend on the chunk size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .model import WaveNet


@dataclass
class EvalResult:
    bits_per_sample: float
    samples: int
    files: int

    def to_dict(self) -> dict[str, float | int]:
        return {"bits_per_sample": self.bits_per_sample, "samples": self.samples,
                "files": self.files}


@torch.inference_mode()
def evaluate_codes(model: WaveNet, files: Sequence[np.ndarray | torch.Tensor], *,
                   chunk: int = 16384, batch_size: int = 8,
                   progress: Callable[[int, int], None] | None = None) -> EvalResult:
    """Bits per sample of `model` over full code sequences (one array per file)."""
    if chunk < 1 or batch_size < 1:
        raise ValueError("chunk and batch_size must be >= 1")
    model.eval()
    device = next(model.parameters()).device
    rf = model.receptive_field
    windows: list[torch.Tensor] = []
    for codes in files:
        codes = torch.from_numpy(np.array(codes, dtype=np.int64))
        for start in range(rf, len(codes), chunk):
            end = min(start + chunk, len(codes))
            windows.append(codes[start - rf:end])  # rf codes of context + the targets
    scored_files = sum(1 for codes in files if len(codes) > rf)
    total_nats, total_samples = 0.0, 0
    # Group windows of equal length so they batch without padding.
    windows.sort(key=len)
    done = 0
    for first in range(0, len(windows), batch_size):
        group = windows[first:first + batch_size]
        by_length: dict[int, list[torch.Tensor]] = {}
        for window in group:
            by_length.setdefault(len(window), []).append(window)
        for same in by_length.values():
            items = torch.stack(same).to(device)
            logits = model(items[:, :-1])[:, :, rf - 1:]
            targets = items[:, rf:]
            total_nats += F.cross_entropy(_at_least_float32(logits), targets, reduction="sum").item()
            total_samples += targets.numel()
        done += len(group)
        if progress is not None:
            progress(done, len(windows))
    if total_samples == 0:
        raise ValueError(f"no file is longer than the receptive field ({rf} samples)")
    return EvalResult(total_nats / total_samples / math.log(2.0), total_samples, scored_files)


def _at_least_float32(logits: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 logits are upcast for the loss; float64 stays float64."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))

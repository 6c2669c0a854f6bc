"""Vocoding many mels at once: streams of different lengths batched into one generation.

    mels (n_mels, F_i), any number --sorted by length, longest first--> groups of
      `batch_size` --each padded to its longest by repeating its last frame-->
      generate(model, F_max x hop, batch_size=len(group), mel=...) --cut each stream to
      F_i x hop--> waveforms, in the order given

Generation is causal, so the padding changes nothing before a stream's end but the last
few samples' upsampled features (the upsampler's filters look a few samples ahead, and
see the repeated frame where the stream alone would see its edge repeated). Sorting keeps
the padding small. Each stream draws its own uniform numbers, so a mel vocoded in a batch
sounds alike but is not sample for sample the one vocoded alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..coding.pcm import codes_to_waveform
from ..errors import InvalidArgumentError
from ..nn.model import WaveNet
from .driver import generate
from .sampling import Progress


def length_groups(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices of `lengths`, longest first, in groups of at most `batch_size`."""
    if batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def vocode(
    model: WaveNet,
    mels: Sequence[torch.Tensor],
    *,
    batch_size: int = 8,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    method: str = "fast",
    progress: Progress | None = None,
    weights: str = "float32",
) -> list[torch.Tensor]:
    """Waveforms of a vocoder for each mel: (n_mels, F_i) -> float32 (F_i x hop,) in
    [-1, 1] on the CPU, in the order given.

    mels: checked, oriented mels (see `melfiles.orient_mel`), at least one frame each.
    progress(done, total) counts generated steps over all groups (a group's steps are
    its longest mel's samples). Other arguments as in `generate`.
    """
    if model.config.local_channels is None:
        raise InvalidArgumentError("this model is not a vocoder (model.local_channels is unset)")
    hop = model.config.upsample_factor
    device = model.embedding.weight.device
    frames = [int(m.shape[1]) for m in mels]
    groups = length_groups(frames, batch_size)
    total = sum(frames[group[0]] * hop for group in groups)
    done = 0
    out: list[torch.Tensor | None] = [None] * len(mels)
    for group in groups:
        longest = frames[group[0]]
        batch = torch.stack([_pad_frames(mels[i].float(), longest) for i in group]).to(device)

        def report(step: int, _total: int, offset: int = done) -> None:
            if progress is not None:
                progress(offset + step, total)

        codes = generate(
            model,
            longest * hop,
            batch_size=len(group),
            temperature=temperature,
            generator=generator,
            method=method,
            progress=report,
            mel=batch,
            weights=weights,
        )
        audio = codes_to_waveform(codes.cpu(), model.config.classes, model.config.coding).float()
        for row, i in enumerate(group):
            out[i] = audio[row, : frames[i] * hop].clone()
        done += longest * hop
    return [a for a in out if a is not None]


def _pad_frames(mel: torch.Tensor, frames: int) -> torch.Tensor:
    """(n_mels, F) -> (n_mels, frames >= F), the last frame repeated."""
    missing = frames - mel.shape[1]
    if missing == 0:
        return mel
    return torch.cat([mel, mel[:, -1:].expand(-1, missing)], dim=1)

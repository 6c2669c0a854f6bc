"""Training items: random fixed-length crops of encoded files, with their conditioning.

Item layout. With C = context (input positions that are not scored) and N =
target_length, an item holds L = C + N + 1 codes c[0] ... c[L-1]; the model reads
item[:, :-1] and position t predicts c[t + 1]. The loss is taken on positions
t = C ... L - 2, whose targets are item[:, C + 1:]::

    item          c[0] ... c[C-1]  c[C]   c[C+1] ... c[L-2]  c[L-1]     L = C + N + 1
    input         c[0] ... c[C-1]  c[C]   c[C+1] ... c[L-2]             L - 1 = C + N
                  '--- C context --'-------- N scored positions --'
    logits[C:]                     ->c[C+1] ...         ->c[L-1]
    targets                        = item[:, C + 1:]                    N

Two choices of C (`data.full_context`): C = receptive_field - 1 gives every scored
position a full receptive field of audio (the paper's crops; the context costs compute
and trains nothing), C = 0 scores every position computed, the first ones seeing the
zero padding of the causal convolutions as at the start of a file.

`item_length(C, N)` gives L; `inputs_and_targets(items, C)` cuts a batch so; the scored
logits are `logits[:, :, C:]`.

A file shorter than L is used whole, padded on the left with the code of silence
(`coding.pcm.silence_code`), as if silence had preceded it.

Weighting. A crop is one of the corpus's windows, every window equally likely: a file
is drawn in proportion to its number of windows (max(1, length - L + 1), or for a
vocoder its number of hop-aligned windows), then a window uniformly within it. This is
a uniform draw over the set of all distinct training items, the same for plain and
conditioned runs. Drawing files in proportion to their length instead (the plain
sampler's rule until issue 12) favours the windows of short files: a file of 2L samples
has L + 1 windows but weight 2L, so each of its windows came about twice as often as
one of a long file's. All randomness comes from the torch.Generator passed in (no
global RNG), so a seed gives reproducible crops and the generator's state resumes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..coding.pcm import silence_code
from ..errors import DataError, InvalidArgumentError
from .prepare import EncodedFile

__all__ = ["Batch", "CropSampler", "inputs_and_targets", "item_length"]


def item_length(context: int, target_length: int) -> int:
    """Codes per training item: context + target_length + 1 (see module docstring)."""
    if context < 0 or target_length < 1:
        raise InvalidArgumentError(
            f"context must be >= 0 and target_length >= 1, got {context} and {target_length}"
        )
    return context + target_length + 1


def inputs_and_targets(items: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a batch of items into model input and scored targets.

    items: (B, L) -> inputs (B, L - 1) = items[:, :-1], targets (B, L - C - 1) =
    items[:, C + 1:]. The logits that go with the targets are `model(inputs)[:, :, C:]`.
    """
    if items.dim() != 2 or items.shape[1] <= context + 1:
        raise InvalidArgumentError(
            f"expected items of shape (B, L) with L > context + 1 = "
            f"{context + 1}, got {tuple(items.shape)}"
        )
    return items[:, :-1], items[:, context + 1 :]


@dataclass(frozen=True)
class Batch:
    """Training items with their conditioning.

    codes: (B, L) long; global_ids: (B,) long or None; mel: (B, n_mels, frames) float or
    None, aligned so that upsampled feature t conditions input position t (which
    predicts codes[:, t + 1]).
    """

    codes: torch.Tensor
    global_ids: torch.Tensor | None = None
    mel: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.codes.shape[0]

    def slice(self, start: int, stop: int) -> Batch:
        return Batch(
            self.codes[start:stop],
            None if self.global_ids is None else self.global_ids[start:stop],
            None if self.mel is None else self.mel[start:stop],
        )

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            self.codes.to(device),
            None if self.global_ids is None else self.global_ids.to(device),
            None if self.mel is None else self.mel.to(device),
        )


class CropSampler:
    """Random training items of `item_length` codes, with their conditioning.

    files: EncodedFiles (an EncodedSet or a sequence; one quantization_channels);
    global_ids: one id per file or None; mels: one float array (n_mels, frames) per file
    or None, frame i covering samples [i * hop, (i + 1) * hop).
    batch(B) -> Batch: codes (B, item_length) in the layout of the module docstring,
    global_ids (B,), mel (B, n_mels, ceil((item_length - 1) / hop)).
    With mels, an item starts at sample k * hop - 1 (k >= 1) so that its input position t
    predicts sample k * hop + t and reads mel frames k, k + 1, ...
    `windows[i]` is file i's number of windows, its weight (module docstring).
    Cost per batch: B slices of memory-mapped codes.
    """

    def __init__(
        self,
        files: Iterable[EncodedFile],
        item_length: int,
        generator: torch.Generator,
        *,
        global_ids: Sequence[int] | None = None,
        mels: Sequence[np.ndarray | torch.Tensor] | None = None,
        hop_length: int = 1,
    ) -> None:
        if item_length < 2:
            raise InvalidArgumentError(
                f"item_length must be >= 2 (one input, one target), got {item_length}"
            )
        self.files = tuple(files)
        if not self.files:
            raise DataError("no audio to draw training items from (empty set)")
        channels = {f.quantization_channels for f in self.files}
        if len(channels) > 1:
            raise InvalidArgumentError(f"files mix quantization_channels {sorted(channels)}")
        self.item_length = item_length
        self.generator = generator
        self.pad_code = silence_code(channels.pop())
        self.global_ids = None if global_ids is None else torch.as_tensor(list(global_ids))
        self.mels = (
            None
            if mels is None
            else [torch.from_numpy(np.array(m, dtype=np.float32)) for m in mels]
        )
        self.hop = hop_length
        self.frames_per_item = -(-(item_length - 1) // hop_length)
        self.windows = torch.tensor(self._window_counts(), dtype=torch.int64)
        self._ends = torch.cumsum(self.windows, 0)

    def _window_counts(self) -> list[int]:
        if self.mels is None:
            return [max(1, len(f) - self.item_length + 1) for f in self.files]
        # Window k (starting at sample k * hop - 1) runs over k = 1 ... frames - frames_per_item.
        counts = [m.shape[1] - self.frames_per_item for m in self.mels]
        if min(counts) < 1:
            short = self.files[counts.index(min(counts))].path
            raise DataError(
                f"{short} is too short for a vocoder item of {self.item_length} "
                f"samples plus one hop"
            )
        return counts

    def batch(self, batch_size: int) -> Batch:
        """-> Batch of batch_size items (see the class docstring for the shapes)."""
        if batch_size < 1:
            raise InvalidArgumentError(f"batch_size must be >= 1, got {batch_size}")
        position = torch.randint(0, int(self._ends[-1]), (batch_size,), generator=self.generator)
        which = torch.searchsorted(self._ends, position, right=True)
        offset = position - (self._ends[which] - self.windows[which])
        codes = np.full((batch_size, self.item_length), self.pad_code, dtype=np.int64)
        mels, mel = self.mels, None
        if mels is not None:
            mel = torch.empty(batch_size, mels[0].shape[0], self.frames_per_item)
        for row, (index, start) in enumerate(zip(which.tolist(), offset.tolist())):
            source = self.files[index].codes
            if mels is not None and mel is not None:
                k = start + 1
                begin = k * self.hop - 1
                codes[row] = source[begin : begin + self.item_length]
                mel[row] = mels[index][:, k : k + self.frames_per_item]
            else:
                take = min(len(source), self.item_length)
                codes[row, self.item_length - take :] = source[start : start + take]
        ids = None if self.global_ids is None else self.global_ids[which]
        return Batch(torch.from_numpy(codes), ids, mel)

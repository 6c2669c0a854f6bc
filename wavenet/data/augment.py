"""Waveform augmentation of training items: random speed, gain and polarity, applied to
the audio and then coded, so that a small folder is heard in more ways than it holds.

Training items are cut from cached codes (wavenet.data.prepare, crops). With augmentation
on (`data.augment_speed`, `data.augment_gain_db`, `data.augment_polarity`), each item is
decoded back to its waveform (the values its codes stand for), changed, and coded again:

    speed      resampled by a factor f drawn uniformly in [1 - s, 1 + s] (pitch and tempo
               together, as a tape played faster or slower): the crop drawn is longer, and
               the middle of the resampled audio is kept, away from the resampler's edges
    gain       times 10^(g / 20), g uniform in [-G, G] dB, clipped to full scale
    polarity   the waveform negated with probability 1/2

Re-coding an already coded waveform adds the coding's rounding once more where the gain
moves a value between steps; at unity gain and speed the codes come back unchanged
(tested). Validation items are never augmented. Every random draw comes from the crop
sampler's torch.Generator, so a seed gives the same items and a resumed run continues them.
A vocoder's mel frames are computed from the unchanged audio, so for a model with local
conditioning only polarity (which leaves a mel unchanged) is allowed (config.Config).
"""

from __future__ import annotations

import math

import numpy as np
import soxr
import torch

from ..coding.pcm import codes_to_waveform, waveform_to_codes
from ..config import DataConfig
from .crops import Batch, CropSampler

__all__ = ["AugmentedCrops", "augmentation_on"]

# Samples dropped at each end of a resampled crop: soxr's filter sees zeros past the ends
# of a one-shot call, so its first and last few dozen samples are not those of the longer
# recording (the "HQ" filter's half-length at these ratios is well under this).
EDGE = 64


def augmentation_on(data: DataConfig) -> bool:
    """Whether training items are augmented at all."""
    return data.augment_speed > 0 or data.augment_gain_db > 0 or data.augment_polarity


def source_length(item_length: int, speed: float) -> int:
    """Codes to draw for an item of `item_length` after a speed change of up to `speed`:
    enough that the fastest factor (1 + speed) still leaves item_length + 2 EDGE samples."""
    if speed <= 0:
        return item_length
    return math.ceil((item_length + 2 * EDGE) * (1 + speed)) + 1


class AugmentedCrops:
    """Draws crops of `source_length` codes from `sampler` and returns augmented items of
    `item_length` codes: the same `batch(B) -> Batch` as a CropSampler.

    coding / quantization_channels: how the codes were made (ModelConfig.coding, .classes).
    """

    def __init__(
        self,
        sampler: CropSampler,
        item_length: int,
        data: DataConfig,
        coding: str,
        quantization_channels: int,
    ) -> None:
        self.sampler = sampler
        self.item_length = item_length
        self.data = data
        self.coding = coding
        self.channels = quantization_channels

    def _uniform(self, n: int, low: float, high: float) -> np.ndarray:
        values = torch.rand(n, generator=self.sampler.generator, dtype=torch.float64).numpy()
        return low + (high - low) * values

    def batch(self, batch_size: int) -> Batch:
        drawn = self.sampler.batch(batch_size)
        audio = codes_to_waveform(drawn.codes, self.channels, self.coding).numpy()
        d = self.data
        speeds = self._uniform(batch_size, 1 - d.augment_speed, 1 + d.augment_speed)
        gains_db = self._uniform(batch_size, -d.augment_gain_db, d.augment_gain_db)
        flips = self._uniform(batch_size, 0.0, 1.0) < (0.5 if d.augment_polarity else 0.0)
        rows = np.empty((batch_size, self.item_length), dtype=np.float32)
        for row in range(batch_size):
            x = audio[row].astype(np.float64)
            if d.augment_speed > 0:
                # Played f times faster: f input samples become one output sample.
                x = soxr.resample(x, speeds[row], 1.0)[-(self.item_length + EDGE) : -EDGE]
            else:
                x = x[-self.item_length :]
            x = x * 10.0 ** (gains_db[row] / 20.0)
            if flips[row]:
                x = -x
            rows[row] = np.clip(x, -1.0, 1.0)
        codes = waveform_to_codes(torch.from_numpy(rows), self.channels, self.coding)
        return Batch(codes.to(torch.int64), drawn.global_ids, drawn.mel)

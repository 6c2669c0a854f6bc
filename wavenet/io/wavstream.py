"""A 16-bit mono WAV written to a stream as its samples are made (`generate --out -`).

A pipe cannot be rewound to fill in a WAV header's sizes afterwards, so the header is
written first with the sizes of the `n_samples` promised, and then each block of samples
as it comes. The samples are converted to 16-bit by soundfile, as when a file is
written (`util.files.atomic_write_audio`): the stream's bytes after the header are
those of the same audio written to a .wav file.

    RIFF <36 + 2n> WAVE
    fmt  <16> PCM=1, channels=1, rate, byte rate=2 rate, block align=2, bits=16
    data <2n> samples...
"""

from __future__ import annotations

import io
import struct
from typing import BinaryIO

import numpy as np

from ..errors import InvalidArgumentError

# The largest data chunk a WAV header's 32-bit sizes can state, in 16-bit samples.
MAX_WAV_SAMPLES = (2**32 - 1 - 36) // 2


def wav_header(n_samples: int, sample_rate: int) -> bytes:
    """The 44-byte header of a 16-bit mono PCM WAV of n_samples samples."""
    if not 0 <= n_samples <= MAX_WAV_SAMPLES:
        raise InvalidArgumentError(
            f"a WAV stream holds at most {MAX_WAV_SAMPLES:,} samples, got {n_samples:,}"
        )
    if not 1 <= sample_rate < 2**31:
        raise InvalidArgumentError(f"sample_rate must be a positive int, got {sample_rate}")
    data = 2 * n_samples
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, 2 * sample_rate, 2, 16)
        + b"data"
        + struct.pack("<I", data)
    )


class WavStream:
    """Writes the header at once, then `write(samples)` blocks of (T,) float in [-1, 1]
    or int16 samples, until n_samples are written; more is an error."""

    def __init__(self, handle: BinaryIO, sample_rate: int, n_samples: int) -> None:
        self.handle = handle
        self.sample_rate = sample_rate
        self.n_samples = n_samples
        self.written = 0
        handle.write(wav_header(n_samples, sample_rate))

    def write(self, samples: np.ndarray) -> None:
        import soundfile as sf

        if samples.ndim != 1:
            raise InvalidArgumentError(f"samples must be (T,), got shape {samples.shape}")
        if self.written + len(samples) > self.n_samples:
            raise InvalidArgumentError(
                f"the stream was promised {self.n_samples:,} samples; "
                f"{self.written + len(samples):,} would be written"
            )
        raw = io.BytesIO()
        sf.write(raw, samples, self.sample_rate, subtype="PCM_16", format="RAW", endian="LITTLE")
        self.handle.write(raw.getbuffer())
        self.handle.flush()
        self.written += len(samples)

    @property
    def complete(self) -> bool:
        return self.written == self.n_samples

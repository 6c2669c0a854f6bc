"""`decode_tail`: the end of a long file decoded from its end (`generate --prime` uses its
last receptive field only), equal to the whole decode's end, in memory that does not grow
with the file."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from wavenet.coding.mulaw import mu_law_encode
from wavenet.data.audio import decode_audio, decode_tail
from wavenet.errors import InvalidArgumentError


def write_tone(path: Path, rate: int, seconds: float, channels: int = 2) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(int(rate * seconds)) / rate
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    sf.write(path, np.stack([x, 0.5 * x][:channels], 1), rate, subtype="PCM_16")


@pytest.mark.parametrize(("rate", "target"), [(44100, 16000), (16000, 16000), (8000, 22050)])
def test_the_tail_is_the_whole_decode_cut_to_its_end(
    tmp_path: Path, rate: int, target: int
) -> None:
    path = tmp_path / "long.wav"
    write_tone(path, rate, 12.0)
    whole = decode_audio(path, target)
    for samples in (1, 2047, 3 * target):
        tail = decode_tail(path, target, samples)
        assert tail.shape == (samples,)
        assert np.abs(tail - whole[-samples:]).max() <= 1e-6  # measured: under 2e-7
        # Their codes: a sample within 1e-7 of a bin's edge may fall one bin over.
        codes = mu_law_encode(torch.from_numpy(tail))
        differ = codes - mu_law_encode(torch.from_numpy(whole[-samples:]))
        assert int(differ.abs().max()) <= 1 and int(differ.count_nonzero()) <= samples // 1000


def test_a_short_file_is_decoded_whole(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    write_tone(path, 16000, 0.5)
    whole = decode_audio(path, 16000)
    assert np.array_equal(decode_tail(path, 16000, 2047), whole[-2047:])
    assert np.array_equal(decode_tail(path, 16000, 10**6), whole)  # more than there is
    with pytest.raises(InvalidArgumentError, match="samples must be >= 1"):
        decode_tail(path, 16000, 0)


def test_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    """Ten minutes of 16 kHz audio: the whole decode holds 38 MB of float32 samples, the
    tail of 2,047 samples a few blocks of reading."""
    path = tmp_path / "ten-minutes.wav"
    write_tone(path, 16000, 600.0, channels=1)

    def peak(decode: object) -> int:
        tracemalloc.start()
        try:
            decode()  # type: ignore[operator]
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    whole = peak(lambda: decode_audio(path, 16000))
    tail = peak(lambda: decode_tail(path, 16000, 2047))
    assert whole > 30e6
    assert tail < 4e6, tail

"""Long files in bounded memory: `stream_audio` decodes, resamples and (in the data
pipeline) codes a block at a time, giving the whole decode's samples; `decode_tail` reads
only the end of a file (`generate --prime` uses its last receptive field)."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from wavenet.coding.mulaw import mu_law_encode
from wavenet.data.audio import decode_audio, decode_tail, stream_audio, trim_silent_edges
from wavenet.data.prepare import encode_waveform
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


@pytest.mark.parametrize(("rate", "target"), [(44100, 16000), (16000, 16000), (8000, 22050)])
def test_streaming_gives_the_whole_decode_and_its_codes(
    tmp_path: Path, rate: int, target: int
) -> None:
    path = tmp_path / "tone.wav"
    write_tone(path, rate, 7.3)
    whole = decode_audio(path, target)
    blocks = list(stream_audio(path, target))
    assert len(blocks) > 1 or rate * 7.3 < 1 << 18
    assert np.array_equal(np.concatenate(blocks), whole)  # the resampler streams exactly
    from wavenet.data.cache import ArrayCache
    from wavenet.data.prepare import _Encoder

    for trim in (False, True):
        encoder = _Encoder(target, 256, trim, -50.0, ArrayCache(tmp_path / "cache", "codes"))
        codes, untrimmed = encoder.encode(path)
        kept = trim_silent_edges(whole, -50.0) if trim else whole
        assert untrimmed == len(whole)
        assert np.array_equal(codes, encode_waveform(kept, 256))


_PEAK_GROWTH = """
import re, sys
from pathlib import Path
from wavenet.data.prepare import _Encoder, encode_waveform
from wavenet.data.audio import decode_audio
def kib(field):
    return int(re.search(field + r":\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1))
path, how = Path(sys.argv[1]), sys.argv[2]
Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from here
before = kib("VmRSS")
if how == "stream":
    _Encoder(16000, 256, False, -50.0, None).encode(path)
else:
    encode_waveform(decode_audio(path, 16000), 256)
print(kib("VmHWM") - before)
"""


def test_coding_a_long_file_holds_its_codes_not_its_waveform(tmp_path: Path) -> None:
    """Ten minutes at 44.1 kHz, coded at 16 kHz (9.6 MB of codes), in a fresh process:
    the peak resident memory grows by a few blocks and twice the codes when streamed,
    against the whole waveform at both rates and its int64 codes before."""
    path = tmp_path / "ten-minutes.wav"
    write_tone(path, 44100, 600.0, channels=1)

    def growth_kb(how: str) -> int:
        command = [sys.executable, "-c", _PEAK_GROWTH, str(path), how]
        return int(subprocess.run(command, capture_output=True, text=True, check=True).stdout)

    streamed, whole = growth_kb("stream"), growth_kb("whole")
    assert streamed < 60_000, streamed  # KiB
    assert whole > 3 * streamed, (whole, streamed)

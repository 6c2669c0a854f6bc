"""Audio made in Python for tests: sines written with soundfile, and folders of them.

Import from a test module as `from audio_fixtures import sine, write_audio, ...`
(pytest puts tests/ on sys.path).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def sine(
    freq: float, seconds: float, sample_rate: int, amplitude: float = 0.5, phase: float = 0.0
) -> np.ndarray:
    """float32 (round(seconds * sample_rate),) sine wave."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def write_audio(
    path: Path,
    data: np.ndarray,
    sample_rate: int,
    subtype: str | None = None,
    format: str | None = None,
) -> Path:
    """Write (T,) or (T, channels) float data; creates parent folders; returns path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sample_rate, subtype=subtype, format=format)
    return path


def make_audio_folder(
    folder: Path, count: int = 3, seconds: float = 0.5, sample_rate: int = 8000
) -> list[Path]:
    """`count` 16-bit mono wav files of sines at different pitches, in sorted order."""
    return [
        write_audio(
            folder / f"clip{i:02d}.wav",
            sine(220.0 * (i + 1), seconds, sample_rate),
            sample_rate,
            "PCM_16",
        )
        for i in range(count)
    ]


def write_text_as(path: Path) -> Path:
    """A text file with an audio name: not audio."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("this is not audio\n" * 20, encoding="utf-8")
    return path


def write_truncated(source: Path, target: Path, keep: int | float) -> Path:
    """Copy the first `keep` bytes (int) or fraction of bytes (float) of `source`."""
    raw = source.read_bytes()
    count = keep if isinstance(keep, int) else int(len(raw) * keep)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(raw[:count])
    return target

"""A built-in dataset for the demo: plucked-string melodies by Karplus-Strong synthesis,
and the figures that say how tonal audio is (the demo's generated clip beside them).

The melodies are pure numpy and seeded: the same seed writes the same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .features import periodicity, spectral_flatness

# A major pentatonic scale in semitones above the key's root.
PENTATONIC = (0, 2, 4, 7, 9, 12, 14, 16)
KEYS_HZ = (196.0, 220.0, 261.6)  # G3, A3, C4


@dataclass(frozen=True)
class MelodyStyle:
    """What the melodies are made of.

    keys_hz: one key per file, in turn; scale: semitones above the key's root that the
    random walk moves over; gaps: seconds from one note to the next, drawn at random;
    note_seconds: how long a note rings (notes overlap when it exceeds the gap);
    damping: the string's loss per period (nearer 1 rings longer).
    """

    keys_hz: tuple[float, ...] = KEYS_HZ
    scale: tuple[int, ...] = PENTATONIC
    gaps: tuple[float, ...] = (0.2, 0.3, 0.4)
    note_seconds: float = 1.2
    damping: float = 0.996


def pluck(
    frequency: float,
    seconds: float,
    sample_rate: int,
    rng: np.random.Generator,
    damping: float = 0.996,
) -> np.ndarray:
    """One plucked string: a zero-mean noise burst fed through a delay line with an
    averaging filter."""
    period = max(2, int(round(sample_rate / frequency)))
    total = int(seconds * sample_rate)
    out = np.empty(total + period, dtype=np.float64)
    burst = rng.uniform(-1, 1, period)
    # Zero mean: the filter passes an offset as slowly as the pitch, and a string has none.
    out[:period] = burst - burst.mean()
    for start in range(period, total + period, period):
        previous = out[start - period : start]
        # y[n] = damping * (y[n - P] + y[n - P - 1]) / 2, one period at a time
        shifted = np.concatenate(
            ([out[start - period - 1] if start > period else 0.0], previous[:-1])
        )
        stop = min(start + period, total + period)
        out[start:stop] = (damping * 0.5 * (previous + shifted))[: stop - start]
    return out[:total]


def melody(
    seconds: float,
    sample_rate: int,
    key_hz: float,
    rng: np.random.Generator,
    style: MelodyStyle = MelodyStyle(),
) -> np.ndarray:
    """A random walk over the style's scale, one plucked note every `style.gaps` seconds."""
    audio = np.zeros(int(seconds * sample_rate))
    t, degree = 0.0, int(rng.integers(len(style.scale)))
    while t < seconds:
        degree = int(np.clip(degree + rng.integers(-2, 3), 0, len(style.scale) - 1))
        frequency = key_hz * 2 ** (style.scale[degree] / 12)
        start = int(t * sample_rate)
        note = pluck(
            frequency, min(style.note_seconds, seconds - t), sample_rate, rng, style.damping
        )
        audio[start : start + len(note)] += note[: len(audio) - start]
        t += float(rng.choice(style.gaps))
    return 0.5 * audio / max(1e-9, np.abs(audio).max())


def write_demo_dataset(
    folder: str | Path,
    *,
    files: int = 12,
    seconds: float = 8.0,
    sample_rate: int = 8000,
    seed: int = 0,
    style: MelodyStyle = MelodyStyle(),
) -> list[Path]:
    """Write `files` melodies (the style's keys in turn) as 16-bit wav files; returns
    their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(files):
        key = style.keys_hz[i % len(style.keys_hz)]
        path = folder / f"melody_{i:02d}.wav"
        sf.write(
            path,
            melody(seconds, sample_rate, key, rng, style).astype(np.float32),
            sample_rate,
            subtype="PCM_16",
        )
        paths.append(path)
    return paths


@dataclass(frozen=True)
class ToneFigures:
    """How tonal a waveform is: spectral flatness (0 a pure tone, 0.56 white noise) and
    periodicity (near 1 for a sustained string, 0.14-0.17 for white noise); see
    `wavenet.data.features`."""

    flatness: float
    periodicity: float


def tone_figures(waveform: np.ndarray, sample_rate: int) -> ToneFigures:
    """Raises ValueError for a waveform shorter than a frame, or silent."""
    return ToneFigures(spectral_flatness(waveform), periodicity(waveform, sample_rate))


def noise_figures(samples: int, sample_rate: int) -> ToneFigures:
    """The figures of seeded white noise of `samples` samples, the far end of the scale."""
    return tone_figures(np.random.default_rng(0).standard_normal(samples), sample_rate)

"""A built-in dataset for the demo: plucked-string melodies by Karplus-Strong synthesis.

Pure numpy, seeded: the same seed writes the same files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

# A major pentatonic scale in semitones above the key's root.
PENTATONIC = (0, 2, 4, 7, 9, 12, 14, 16)
KEYS_HZ = (196.0, 220.0, 261.6)  # G3, A3, C4


def pluck(frequency: float, seconds: float, sample_rate: int, rng: np.random.Generator,
          damping: float = 0.996) -> np.ndarray:
    """One plucked string: a noise burst fed through a delay line with an averaging filter."""
    period = max(2, int(round(sample_rate / frequency)))
    total = int(seconds * sample_rate)
    out = np.empty(total + period, dtype=np.float64)
    out[:period] = rng.uniform(-1, 1, period)
    for start in range(period, total + period, period):
        previous = out[start - period:start]
        # y[n] = damping * (y[n - P] + y[n - P - 1]) / 2, one period at a time
        shifted = np.concatenate(([out[start - period - 1] if start > period else 0.0],
                                  previous[:-1]))
        stop = min(start + period, total + period)
        out[start:stop] = (damping * 0.5 * (previous + shifted))[:stop - start]
    return out[:total]


def melody(seconds: float, sample_rate: int, key_hz: float, rng: np.random.Generator) -> np.ndarray:
    """A random walk over the pentatonic scale, one plucked note every 0.2 to 0.4 s."""
    audio = np.zeros(int(seconds * sample_rate))
    t, degree = 0.0, int(rng.integers(len(PENTATONIC)))
    while t < seconds:
        degree = int(np.clip(degree + rng.integers(-2, 3), 0, len(PENTATONIC) - 1))
        frequency = key_hz * 2 ** (PENTATONIC[degree] / 12)
        start = int(t * sample_rate)
        note = pluck(frequency, min(1.2, seconds - t), sample_rate, rng)
        audio[start:start + len(note)] += note[: len(audio) - start]
        t += float(rng.choice([0.2, 0.3, 0.4]))
    return 0.5 * audio / max(1e-9, np.abs(audio).max())


def write_demo_dataset(folder: str | Path, *, files: int = 12, seconds: float = 8.0,
                       sample_rate: int = 8000, seed: int = 0) -> list[Path]:
    """Write `files` melodies (several keys) as 16-bit wav files; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(files):
        key = KEYS_HZ[i % len(KEYS_HZ)]
        path = folder / f"melody_{i:02d}.wav"
        sf.write(path, melody(seconds, sample_rate, key, rng).astype(np.float32), sample_rate,
                 subtype="PCM_16")
        paths.append(path)
    return paths

"""Audio and run helpers shared by the test modules (imported as `helpers`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from wavenet.config import ModelConfig

SAMPLE_RATE = 8000
FAST = [
    "train.log_every=1",
    "train.val_every=10",
    "train.checkpoint_every=10",
    "data.target_length=256",
    "train.warmup_steps=5",
]


# Kernel 3, odd channel counts and a small alphabet: every remainder branch of the
# generation kernel (columns that fill no vector, rows that fill no tile).
KERNEL3 = ModelConfig(
    quantization_channels=11,
    residual_channels=5,
    gate_channels=6,
    skip_channels=7,
    kernel_size=3,
    layers_per_stack=3,
    stacks=2,
)
# A tiny vocoder: 8 mel bands, hop 16 (4 x 4), on the tiny preset.
TINY_VOCODER = [
    "mel.n_mels=8",
    "mel.n_fft=64",
    "mel.hop_length=16",
    "mel.win_length=64",
    "model.local_channels=8",
    "model.upsample_scales=4,4",
]


def write_chord(
    folder: Path,
    files: int = 3,
    seconds: float = 1.5,
    seed: int = 0,
    frequencies: tuple[float, float, float] = (220.0, 277.2, 329.6),
) -> Path:
    """A chord of three sines (A major unless told) with a little noise, split over
    several files."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    for i in range(files):
        phase = rng.uniform(0, 2 * np.pi, 3)
        chord = sum(np.sin(2 * np.pi * f * t + p) for f, p in zip(frequencies, phase))
        audio = 0.25 * chord + 0.002 * rng.standard_normal(t.shape)
        sf.write(folder / f"chord {i}.wav", audio.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
    return folder

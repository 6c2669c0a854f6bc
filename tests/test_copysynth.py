"""Copy-synthesis figures: the log-mel distance and the Griffin-Lim baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wavenet.config import MelConfig
from wavenet.data.features import log_mel_of_waveform
from wavenet.eval.copysynth import DYNAMIC_RANGE_DB, griffin_lim, log_mel_distance

RATE = 16000


def gliding_tone(seconds: float = 1.0, seed: int = 0) -> torch.Tensor:
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(seed)
    tone = (
        0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.3 * t)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    )
    return torch.from_numpy((tone + 0.003 * rng.standard_normal(len(t))).astype(np.float32))


def test_log_mel_distance() -> None:
    mel = MelConfig(f_max=8000.0)
    audio = gliding_tone()
    assert log_mel_distance(audio, audio, RATE, mel) == 0.0
    # Half the amplitude is 6.02 dB in every band above the floor.
    assert log_mel_distance(audio, 0.5 * audio, RATE, mel) == pytest.approx(6.02, abs=0.05)
    # Silence sits at the floor: the distance is at most the dynamic range.
    silent = log_mel_distance(audio, torch.zeros_like(audio), RATE, mel)
    assert 10.0 < silent <= DYNAMIC_RANGE_DB
    with pytest.raises(ValueError, match="one length"):
        log_mel_distance(audio, audio[:-1], RATE, mel)


@pytest.mark.parametrize("fmt", ["wavenet", "hifigan"])
def test_griffin_lim_is_close_and_aligned(fmt: str) -> None:
    mel = MelConfig(f_max=8000.0, format=fmt)
    audio = gliding_tone()
    features = log_mel_of_waveform(audio, RATE, mel, 256)
    rebuilt = griffin_lim(features, RATE, mel)
    n = features.shape[1] * 256
    assert rebuilt.shape == (n,)
    close = log_mel_distance(audio[:n], rebuilt, RATE, mel)
    noise = log_mel_distance(
        audio[:n], 0.1 * torch.randn(n, generator=torch.Generator().manual_seed(0)), RATE, mel
    )
    assert close < 6.0 and noise > 20.0
    # Moved by a hop either way it lines up worse with the file.
    for shift in (-256, 256):
        assert log_mel_distance(audio[:n], torch.roll(rebuilt, shift), RATE, mel) > close

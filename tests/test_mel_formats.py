"""mel.format = "hifigan": the features equal an independent computation of HiFi-GAN's
formula, come from the float audio, and are cached apart from the default format's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
import torchaudio

import wavenet
from wavenet.coding.mulaw import mu_law_decode, mu_law_encode
from wavenet.config import ConfigError, MelConfig
from wavenet.data.features import (
    hifigan_log_mel,
    log_mel,
    log_mel_of_waveform,
    mel_filterbank,
    mel_magnitude,
)
from wavenet.data.prepare import load_encoded, mel_features


def reference_hifigan_mel(
    audio: torch.Tensor,
    rate: int,
    n_mels: int,
    n_fft: int,
    hop: int,
    win: int,
    f_min: float,
    f_max: float,
) -> torch.Tensor:
    """HiFi-GAN's mel_spectrogram written out from its definition."""
    pad = (n_fft - hop) // 2
    padded = F.pad(audio[None, None].double(), (pad, pad), mode="reflect")[0, 0]
    spectrum = torch.stft(
        padded,
        n_fft,
        hop_length=hop,
        win_length=win,
        window=torch.hann_window(win, dtype=torch.float64),
        center=False,
        return_complex=True,
    ).abs()
    bank = torchaudio.functional.melscale_fbanks(
        n_fft // 2 + 1, f_min, f_max, n_mels, rate, norm="slaney", mel_scale="slaney"
    )
    return torch.log(torch.clamp(bank.T.double() @ spectrum, min=1e-5))


def speechlike(n: int, rate: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    voiced = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 20))
    audio = 0.2 * voiced * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.02 * rng.standard_normal(n)
    audio[n // 3 : n // 2] = 0.0  # digital silence reaches the 1e-5 clamp
    return torch.from_numpy(audio.astype(np.float32))


def test_preset_vocoder_22k_is_hifigans_format() -> None:
    config = wavenet.load_config("vocoder-22k")
    assert config.mel == MelConfig(
        n_mels=80,
        n_fft=1024,
        hop_length=256,
        win_length=1024,
        f_min=0.0,
        f_max=8000.0,
        format="hifigan",
    )
    assert config.data.sample_rate == 22050 and config.model.local_channels == 80
    for name in ("default", "tiny", "vocoder", "demo"):
        assert wavenet.load_config(name).mel.format == "wavenet"


@pytest.mark.parametrize("length", [22050, 22050 + 100, 300])
def test_hifigan_features_equal_an_independent_computation(length: int) -> None:
    config = wavenet.load_config("vocoder-22k")
    audio = speechlike(length, 22050)
    ours = hifigan_log_mel(audio, 22050, config.mel)
    if length < 385:  # too short to reflect-pad by 384: one frame, zero-padded
        assert ours.shape == (80, 1)
        return
    expected = reference_hifigan_mel(audio, 22050, 80, 1024, 256, 1024, 0.0, 8000.0)
    assert ours.shape == (80, length // 256) and ours.dtype == torch.float32
    torch.testing.assert_close(ours.double(), expected[:, : length // 256], atol=2e-4, rtol=0)
    assert float(ours.min()) == pytest.approx(np.log(1e-5))  # the silent part is clamped
    # The same through the path that generation and `wavenet mel` take.
    assert torch.equal(log_mel_of_waveform(audio, 22050, config.mel, 256), ours)


def test_hifigan_features_come_from_the_float_audio(tmp_path: Path) -> None:
    mel = MelConfig(
        n_mels=20, n_fft=256, hop_length=64, win_length=256, f_max=4000.0, format="hifigan"
    )
    audio = speechlike(8000, 8000, seed=1)
    sf.write(tmp_path / "a.wav", audio.numpy(), 8000, subtype="FLOAT")
    files = load_encoded(tmp_path, sample_rate=8000, cache_dir=tmp_path / "cache").files
    cached = mel_features(files, sample_rate=8000, mel=mel, cache_dir=tmp_path / "cache")[0]
    direct = hifigan_log_mel(audio, 8000, mel)
    np.testing.assert_array_equal(cached, direct.numpy())
    quantized = hifigan_log_mel(mu_law_decode(mu_law_encode(audio)), 8000, mel)
    assert float((direct - quantized).abs().max()) > 0.1
    # The format is part of the cache key: the default format's entry is another array.
    own = mel_features(
        files,
        sample_rate=8000,
        mel=dataclasses.replace(mel, format="wavenet"),
        cache_dir=tmp_path / "cache",
    )[0]
    assert own.shape == cached.shape and not np.allclose(own, cached)
    np.testing.assert_allclose(
        own,
        log_mel(
            mu_law_decode(mu_law_encode(audio)), 8000, dataclasses.replace(mel, format="wavenet")
        ).numpy(),
        atol=1e-6,
    )


def test_mel_magnitude_inverts_both_formats() -> None:
    audio = speechlike(62 * 64, 8000)  # whole hops: both formats frame the same samples
    for fmt in ("wavenet", "hifigan"):
        mel = MelConfig(n_mels=20, n_fft=256, hop_length=64, win_length=256, format=fmt)
        features = (
            log_mel(audio, 8000, mel) if fmt == "wavenet" else hifigan_log_mel(audio, 8000, mel)
        )
        magnitude = mel_magnitude(features, mel)
        bank = mel_filterbank(8000, mel)
        assert bank.shape == (129, 20)
        padded = F.pad(audio[None, None], (96, 96), mode="reflect")[0, 0]
        spectrum = torch.stft(
            padded, 256, 64, 256, torch.hann_window(256), center=False, return_complex=True
        ).abs()
        expected = (bank.T @ spectrum).clamp(min=1e-5)
        assert magnitude.shape == expected.shape == (20, 62)
        torch.testing.assert_close(magnitude, expected, rtol=1e-3, atol=1e-7)


def test_unknown_mel_format_is_refused() -> None:
    with pytest.raises(ConfigError, match="mel.format must be one of wavenet, hifigan"):
        wavenet.load_config("tiny", ["mel.format=htk"])

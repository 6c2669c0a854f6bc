"""Log-mel features for local conditioning, aligned to samples.

Frame i describes samples [i * hop, (i + 1) * hop): the waveform is padded by
(n_fft - hop) / 2 on each side and framed without centring, so frame i's window is
centred on the middle of its hop block and a signal of T samples gives T // hop frames.
Features are computed from the quantized audio (mu-law, or 16-bit for "mol"), the very
signal the model learns to produce, and scaled so that the floor (1e-5, -100 dB) maps to 0 and a
magnitude of 1 to 1: raw log-mels reach -11.5, which would saturate the gates.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio

from .config import MelConfig
from .pcm import codes_to_waveform, waveform_to_codes

LOG_FLOOR = 1e-5


@functools.lru_cache(maxsize=8)
def _transform(sample_rate: int, mel: MelConfig) -> torchaudio.transforms.MelSpectrogram:
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate, n_fft=mel.n_fft, win_length=mel.win_length,
        hop_length=mel.hop_length, f_min=mel.f_min, f_max=mel.f_max, n_mels=mel.n_mels,
        power=1.0, center=False)


def log_mel(waveform: torch.Tensor, sample_rate: int, mel: MelConfig) -> torch.Tensor:
    """float waveform (T,) -> scaled log-mel (n_mels, T // hop_length), float32, >= 0.

    value = 1 + ln(max(magnitude, 1e-5)) / ln(1e5)."""
    if waveform.dim() != 1:
        raise ValueError(f"expected a 1-D waveform, got shape {tuple(waveform.shape)}")
    frames = waveform.shape[0] // mel.hop_length
    if frames == 0:
        return torch.zeros(mel.n_mels, 0)
    extra = mel.n_fft - mel.hop_length
    left, right = extra // 2, extra - extra // 2
    signal = waveform[: frames * mel.hop_length].float().unsqueeze(0)
    mode = "reflect" if signal.shape[1] > max(left, right) else "constant"
    padded = F.pad(signal.unsqueeze(0), (left, right), mode=mode).squeeze(0)
    spectrum = _transform(sample_rate, mel)(padded)[0]
    scale = -math.log(LOG_FLOOR)
    return (1.0 + torch.log(spectrum.clamp(min=LOG_FLOOR)) / scale)[:, :frames]


def log_mel_of_codes(codes: np.ndarray | torch.Tensor, sample_rate: int, mel: MelConfig,
                     quantization_channels: int, coding: str = "mu-law") -> torch.Tensor:
    """Log-mel of the audio that `codes` (mu-law, or "pcm16") decode to: (n_mels, len // hop)."""
    codes = torch.as_tensor(np.asarray(codes, dtype=np.int64))
    return log_mel(codes_to_waveform(codes, quantization_channels, coding), sample_rate, mel)


def log_mel_of_waveform(waveform: torch.Tensor, sample_rate: int, mel: MelConfig,
                        quantization_channels: int, coding: str = "mu-law") -> torch.Tensor:
    """Log-mel of a float waveform after quantization to codes (as in training)."""
    codes = waveform_to_codes(waveform, quantization_channels, coding)
    return log_mel(codes_to_waveform(codes, quantization_channels, coding), sample_rate, mel)


def spectral_flatness(waveform: np.ndarray, n_fft: int = 512, hop_length: int = 256) -> float:
    """Mean over frames of the power spectrum's geometric mean / arithmetic mean.

    waveform (T,) float -> a number in (0, 1]: near 0 for tones (power in a few bins),
    exp(-Euler's gamma) = 0.56 for white noise (each bin of a frame's periodogram is
    exponentially distributed). Hann-windowed frames of n_fft samples every hop_length,
    DC bin left out; silent frames (mean power < 1e-12) are skipped.
    """
    waveform = np.asarray(waveform, dtype=np.float64)
    if waveform.ndim != 1 or len(waveform) < n_fft:
        raise ValueError(f"expected a 1-D waveform of at least n_fft={n_fft} samples, got "
                         f"shape {waveform.shape}")
    starts = np.arange(0, len(waveform) - n_fft + 1, hop_length)
    frames = waveform[starts[:, None] + np.arange(n_fft)] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)[:, 1:]) ** 2
    power = power[power.mean(axis=1) >= 1e-12]
    if len(power) == 0:
        raise ValueError("the waveform is silent: its spectral flatness is undefined")
    power = np.maximum(power, 1e-30)
    flatness = np.exp(np.log(power).mean(axis=1)) / power.mean(axis=1)
    return float(flatness.mean())

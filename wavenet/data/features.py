"""Log-mel features for local conditioning, aligned to samples.

Frame i describes samples [i * hop, (i + 1) * hop): the waveform is padded by
(n_fft - hop) / 2 on each side and framed without centring, so frame i's window is
centred on the middle of its hop block and a signal of T samples gives T // hop frames.

Two definitions (`MelConfig.format`):
- "wavenet" (`log_mel`): computed from the quantized audio (mu-law, or 16-bit for "mol"),
  the very signal the model learns to produce, HTK mel scale without normalisation, and
  scaled so that the floor (1e-5, -100 dB) maps to 0 and a magnitude of 1 to 1: raw
  log-mels reach -11.5.
- "hifigan" (`hifigan_log_mel`): what HiFi-GAN's `mel_spectrogram` and the TTS models
  trained on its features emit: from the float audio, a Hann window of win_length,
  reflect padding, Slaney mel scale with area-normalised (Slaney) filters, magnitude
  (not power), natural log of values clamped at 1e-5, no scaling.
The model standardizes either with its training set's statistics, so the scale of the
values does not matter to it.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..coding.pcm import codes_to_waveform, waveform_to_codes
from ..config import MelConfig
from ..errors import InvalidArgumentError
from ..util import dependencies

LOG_FLOOR = 1e-5
# mel.format -> torchaudio's (norm, mel_scale) of the filterbank.
_FILTERBANKS = {"wavenet": (None, "htk"), "hifigan": ("slaney", "slaney")}


@functools.lru_cache(maxsize=8)
def _transform(sample_rate: int, mel: MelConfig) -> torch.nn.Module:
    """torchaudio's MelSpectrogram for the format (torchaudio is loaded here, on first use)."""
    norm, mel_scale = _FILTERBANKS[mel.format]
    return dependencies.torchaudio().transforms.MelSpectrogram(
        sample_rate=sample_rate,
        n_fft=mel.n_fft,
        win_length=mel.win_length,
        hop_length=mel.hop_length,
        f_min=mel.f_min,
        f_max=mel.f_max,
        n_mels=mel.n_mels,
        power=1.0,
        center=False,
        norm=norm,
        mel_scale=mel_scale,
    )


def _padded_magnitude_mel(signal: torch.Tensor, sample_rate: int, mel: MelConfig) -> torch.Tensor:
    """float (T,) -> magnitude mel (n_mels, frames) of the signal padded by
    (n_fft - hop) / 2 each side (reflect; zeros when the signal is too short to reflect)."""
    extra = mel.n_fft - mel.hop_length
    left, right = extra // 2, extra - extra // 2
    mode = "reflect" if signal.shape[0] > max(left, right) else "constant"
    padded = F.pad(signal.float()[None, None], (left, right), mode=mode)[0]
    return _transform(sample_rate, mel)(padded)[0]


def log_mel(waveform: torch.Tensor, sample_rate: int, mel: MelConfig) -> torch.Tensor:
    """float waveform (T,) -> scaled log-mel (n_mels, T // hop_length), float32, >= 0.

    value = 1 + ln(max(magnitude, 1e-5)) / ln(1e5)."""
    if waveform.dim() != 1:
        raise InvalidArgumentError(f"expected a 1-D waveform, got shape {tuple(waveform.shape)}")
    frames = waveform.shape[0] // mel.hop_length
    if frames == 0:
        return torch.zeros(mel.n_mels, 0)
    spectrum = _padded_magnitude_mel(waveform[: frames * mel.hop_length], sample_rate, mel)
    scale = -math.log(LOG_FLOOR)
    return (1.0 + torch.log(spectrum.clamp(min=LOG_FLOOR)) / scale)[:, :frames]


def hifigan_log_mel(waveform: torch.Tensor, sample_rate: int, mel: MelConfig) -> torch.Tensor:
    """float waveform (T,) -> ln(max(mel magnitude, 1e-5)) (n_mels, T // hop_length), float32.

    HiFi-GAN's definition (module docstring), with `mel`'s sizes; `mel.format` must be
    "hifigan". The whole signal is framed (the last frame's window reaches past sample
    frames * hop when T is not a multiple of the hop, as in HiFi-GAN).
    """
    if waveform.dim() != 1:
        raise InvalidArgumentError(f"expected a 1-D waveform, got shape {tuple(waveform.shape)}")
    if mel.format != "hifigan":
        raise InvalidArgumentError(
            f"hifigan_log_mel needs mel.format = 'hifigan', got {mel.format!r}"
        )
    frames = waveform.shape[0] // mel.hop_length
    if frames == 0:
        return torch.zeros(mel.n_mels, 0)
    spectrum = _padded_magnitude_mel(waveform, sample_rate, mel)
    return torch.log(spectrum.clamp(min=LOG_FLOOR))[:, :frames]


def mel_magnitude(features: torch.Tensor, mel: MelConfig) -> torch.Tensor:
    """Undo the log of either format: features (..., n_mels, frames) -> mel magnitudes
    (values at the 1e-5 floor stay there)."""
    if mel.format == "hifigan":
        return torch.exp(features)
    return torch.exp((features - 1.0) * -math.log(LOG_FLOOR))


def mel_filterbank(sample_rate: int, mel: MelConfig) -> torch.Tensor:
    """The format's filterbank, (n_fft // 2 + 1, n_mels): magnitude spectrum @ it = mel."""
    transform: Any = _transform(sample_rate, mel)  # MelSpectrogram: torchaudio is untyped
    bank: torch.Tensor = transform.mel_scale.fb
    return bank


def log_mel_of_codes(
    codes: np.ndarray | torch.Tensor,
    sample_rate: int,
    mel: MelConfig,
    quantization_channels: int,
    coding: str = "mu-law",
) -> torch.Tensor:
    """Log-mel of the audio that `codes` (mu-law, or "pcm16") decode to: (n_mels, len // hop)."""
    codes = torch.as_tensor(np.asarray(codes, dtype=np.int64))
    return log_mel(codes_to_waveform(codes, quantization_channels, coding), sample_rate, mel)


def log_mel_of_waveform(
    waveform: torch.Tensor,
    sample_rate: int,
    mel: MelConfig,
    quantization_channels: int,
    coding: str = "mu-law",
) -> torch.Tensor:
    """The features of a float waveform (T,) as training computes them: (n_mels, T // hop).

    "wavenet": after quantization to codes (`coding`); "hifigan": of the waveform itself."""
    if mel.format == "hifigan":
        return hifigan_log_mel(waveform, sample_rate, mel)
    codes = waveform_to_codes(waveform, quantization_channels, coding)
    return log_mel(codes_to_waveform(codes, quantization_channels, coding), sample_rate, mel)


def spectral_flatness(waveform: np.ndarray, n_fft: int = 512, hop_length: int = 256) -> float:
    """Mean over frames of the power spectrum's geometric mean / arithmetic mean.

    waveform (T,) float -> a number in (0, 1]: near 0 for tones (power in a few bins),
    exp(-Euler's gamma) = 0.56 for white noise (each bin of a frame's periodogram is
    exponentially distributed). Hann-windowed frames of n_fft samples every hop_length,
    each frame's mean taken out first and the DC bin left out (a constant offset, which
    the window would leak into the lowest bins, is not a tone); silent frames (mean power
    < 1e-12) are skipped.
    """
    waveform = np.asarray(waveform, dtype=np.float64)
    if waveform.ndim != 1 or len(waveform) < n_fft:
        raise InvalidArgumentError(
            f"expected a 1-D waveform of at least n_fft={n_fft} samples, got shape {waveform.shape}"
        )
    starts = np.arange(0, len(waveform) - n_fft + 1, hop_length)
    frames = waveform[starts[:, None] + np.arange(n_fft)]
    frames = (frames - frames.mean(axis=1, keepdims=True)) * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)[:, 1:]) ** 2
    power = power[power.mean(axis=1) >= 1e-12]
    if len(power) == 0:
        raise InvalidArgumentError("the waveform is silent: its spectral flatness is undefined")
    power = np.maximum(power, 1e-30)
    flatness = np.exp(np.log(power).mean(axis=1)) / power.mean(axis=1)
    return float(flatness.mean())


def active_share(
    waveform: np.ndarray, sample_rate: int, frame_seconds: float = 0.02, threshold_db: float = -40.0
) -> float:
    """The share of frames of frame_seconds whose rms is above threshold_db (dBFS).

    waveform (T,) float in [-1, 1] -> a number in [0, 1]: speech recordings with pauses
    are active in ~0.6-0.8 of their 20 ms frames, digital silence in none. A waveform
    shorter than one frame is one frame."""
    waveform = np.asarray(waveform, dtype=np.float64)
    if waveform.ndim != 1 or not len(waveform):
        raise InvalidArgumentError(f"expected a non-empty 1-D waveform, got shape {waveform.shape}")
    size = max(1, int(round(frame_seconds * sample_rate)))
    count = max(1, len(waveform) // size)
    frames = (
        waveform[: count * size].reshape(count, size) if len(waveform) >= size else waveform[None]
    )
    rms = np.sqrt(np.mean(frames**2, axis=1))
    return float(np.mean(rms > 10.0 ** (threshold_db / 20.0)))


def periodicity(
    waveform: np.ndarray,
    sample_rate: int,
    frame_seconds: float = 0.05,
    min_lag_seconds: float = 0.002,
    max_lag_seconds: float = 0.015,
) -> float:
    """Mean over frames of the highest normalized autocorrelation at lags of 2 to 15 ms.

    waveform (T,) float -> a number in [-1, 1]: near 1 for a sustained string or any
    signal that repeats with a period (or a multiple of it) in the lag range, about 0.15
    for white noise in 50 ms frames (the largest of ~100 correlations of 0.05 spread).
    Each frame of frame_seconds is compared with itself shifted by every lag:
    sum x[n] x[n+k] / sqrt(sum x[n]^2 sum x[n+k]^2) over the overlap, x with the frame's
    mean taken out (an offset would correlate at every lag); silent frames (variance
    < 1e-8) are skipped.
    """
    waveform = np.asarray(waveform, dtype=np.float64)
    frame = int(round(frame_seconds * sample_rate))
    lags = np.arange(
        max(1, int(round(min_lag_seconds * sample_rate))),
        int(round(max_lag_seconds * sample_rate)) + 1,
    )
    if waveform.ndim != 1 or len(waveform) < frame or lags[-1] >= frame:
        raise InvalidArgumentError(
            f"expected a 1-D waveform of at least one {frame}-sample frame "
            f"longer than the largest lag, got shape {waveform.shape}"
        )
    frames = waveform[: len(waveform) // frame * frame].reshape(-1, frame)
    frames = frames - frames.mean(axis=1, keepdims=True)
    frames = frames[(frames**2).mean(axis=1) >= 1e-8]
    if len(frames) == 0:
        raise InvalidArgumentError("the waveform is silent: its periodicity is undefined")
    peaks = np.full(len(frames), -1.0)
    for lag in lags:
        head, tail = frames[:, :-lag], frames[:, lag:]
        energy = np.sqrt((head**2).sum(axis=1) * (tail**2).sum(axis=1))
        correlation = (head * tail).sum(axis=1) / np.maximum(energy, 1e-30)
        peaks = np.maximum(peaks, correlation)
    return float(peaks.mean())

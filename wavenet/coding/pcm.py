"""16-bit linear PCM as codes, and how a model's codes map to audio and back.

A mixture-of-logistics model (`model.output = "mol"`) works on the 65,536 values of
16-bit audio. A sample s in [-32768, 32767] is the code k = s + 32768 in [0, 65536)
(offset binary), so codes stay non-negative indices everywhere in the pipeline, and
silence (s = 0) is the code 32768 = 65536 // 2, as for mu-law codes Q // 2::

    float waveform x  --pcm16_encode: s = clamp(round(32768 x))-->  code k = s + 32768
    code k  --pcm16_decode-->  x = (k - 32768) / 32768        (exact for 16-bit files)
    code k  --code_values-->   v = -1 + 2k / 65535            (the scale the model
                                                               predicts on, bin k's centre)
    code k  --mu_law_of_pcm16-->  the mu-law code whose embedding the model reads (beside
                                  the value v through a 1x1)

On the model's scale the bins are 2 / 65535 wide and tile [-1 - 1/65535, 1 + 1/65535].

`waveform_to_codes` / `codes_to_waveform` / `file_samples` pick mu-law or 16-bit PCM by
a config's `coding` ("mu-law" or "pcm16", see `ModelConfig.coding`). A 16-bit file is
written from the int16 samples (soundfile scales float input to PCM_16 by 32767 but reads
PCM_16 back divided by 32768, so a float round trip would not return the same samples).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import torch

from ..config import PCM16_CLASSES
from ..errors import InvalidArgumentError, InvalidTypeError
from .mulaw import mu_law_decode, mu_law_encode

CODINGS = ("mu-law", "pcm16")


def silence_code(quantization_channels: int) -> int:
    """The code of 0.0 among `quantization_channels` codes, for either coding: the mu-law
    code of 0.0 (128 for 256 channels), or the 16-bit sample 0 (32768 for 65,536 codes).
    What short files are padded with and what generation starts from.

    `mu_law_encode` gives floor((F(0) + 1) / 2 * mu + 0.5) with mu = Q - 1, which is
    floor(Q / 2) for every Q, even or odd; a 16-bit sample s is the code s + 65536 / 2.
    """
    return quantization_channels // 2


def codes_dtype(quantization_channels: int) -> np.dtype:
    """Smallest unsigned dtype holding codes 0 ... quantization_channels - 1."""
    if quantization_channels <= 1 << 8:
        return np.dtype(np.uint8)
    if quantization_channels <= 1 << 16:
        return np.dtype(np.uint16)
    return np.dtype(np.uint32)


PCM16_SILENCE = silence_code(PCM16_CLASSES)
# Half a bin on the model's [-1, 1] scale.
HALF_BIN = 1.0 / (PCM16_CLASSES - 1)


def pcm16_encode(waveform: torch.Tensor) -> torch.Tensor:
    """float (...) in [-1, 1] (clipped beyond) -> codes (...) long in [0, 65536)."""
    if not waveform.is_floating_point():
        raise InvalidTypeError(f"pcm16_encode expects a float waveform, got dtype {waveform.dtype}")
    samples = torch.round(waveform.to(torch.float64) * 32768.0).clamp(-32768, 32767)
    return samples.to(torch.long) + PCM16_SILENCE


def pcm16_decode(codes: torch.Tensor) -> torch.Tensor:
    """codes (...) in [0, 65536) -> float32 waveform (...) (k - 32768) / 32768 in [-1, 1)."""
    return (codes.to(torch.float64) - PCM16_SILENCE).div(32768.0).to(torch.float32)


def pcm16_samples(codes: torch.Tensor | np.ndarray) -> np.ndarray:
    """codes (...) -> the int16 samples (...) they stand for, for writing PCM_16 files."""
    array = codes.cpu().numpy() if isinstance(codes, torch.Tensor) else np.asarray(codes)
    return (array.astype(np.int64) - PCM16_SILENCE).astype(np.int16)


def code_values(codes: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """codes (...) long -> values (...) of `dtype`, -1 + 2k / 65535: bin k's centre on the
    scale of the mixture's means and of the value input."""
    return codes.to(dtype) * (2.0 / (PCM16_CLASSES - 1)) - 1.0


def mu_law_of_pcm16(quantization_channels: int = 256) -> torch.Tensor:
    """The mu-law code of every 16-bit sample code: (65536,) long in [0, Q)."""
    return mu_law_encode(pcm16_decode(torch.arange(PCM16_CLASSES)), quantization_channels)


def waveform_to_codes(
    waveform: torch.Tensor, quantization_channels: int, coding: str = "mu-law"
) -> torch.Tensor:
    """float waveform (...) -> codes (...) long: mu-law of `quantization_channels` codes,
    or 16-bit PCM (quantization_channels is then not used)."""
    return _coder(coding, quantization_channels)[0](waveform)


def codes_to_waveform(
    codes: torch.Tensor, quantization_channels: int, coding: str = "mu-law"
) -> torch.Tensor:
    """Inverse of `waveform_to_codes`: codes (...) -> float32 waveform (...) in [-1, 1]."""
    return _coder(coding, quantization_channels)[1](codes)


def _coder(
    coding: str, quantization_channels: int
) -> tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]:
    """A coding's (waveform -> codes, codes -> waveform) pair."""
    if coding == "pcm16":
        return pcm16_encode, pcm16_decode
    _check_coding(coding)
    return (
        partial(mu_law_encode, quantization_channels=quantization_channels),
        partial(mu_law_decode, quantization_channels=quantization_channels),
    )


def file_samples(
    codes: torch.Tensor, quantization_channels: int, coding: str = "mu-law"
) -> np.ndarray:
    """codes (..., T) -> what a PCM_16 file is written from: for "pcm16" the int16 samples
    themselves (written exactly), else the float32 waveform (soundfile converts it)."""
    if coding == "pcm16":
        return pcm16_samples(codes)
    return codes_to_waveform(codes.cpu(), quantization_channels, coding).numpy()


def _check_coding(coding: str) -> None:
    if coding not in CODINGS:
        raise InvalidArgumentError(f"coding must be one of {', '.join(CODINGS)}, got {coding!r}")

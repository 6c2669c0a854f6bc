"""Mu-law companding and quantization (ITU-T G.711 style, with mu = Q - 1)."""

from __future__ import annotations

import torch
import torchaudio.functional as AF


def mu_law_encode(waveform: torch.Tensor, quantization_channels: int = 256) -> torch.Tensor:
    """Compand and quantize a waveform.

    waveform: float (...) in [-1, 1] (values outside are clipped) -> codes: long (...) in
    [0, quantization_channels - 1], code = floor((F(x) + 1) / 2 * mu + 0.5) with
    F(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu).
    """
    if not waveform.is_floating_point():
        raise TypeError(f"mu_law_encode expects a float waveform, got dtype {waveform.dtype}")
    return AF.mu_law_encoding(waveform.clamp(-1.0, 1.0), quantization_channels)


def mu_law_decode(codes: torch.Tensor, quantization_channels: int = 256) -> torch.Tensor:
    """Inverse of `mu_law_encode`: codes: int (...) -> float32 waveform (...) in [-1, 1]."""
    return AF.mu_law_decoding(codes, quantization_channels)

"""Mu-law companding and quantization (ITU-T G.711 style, with mu = Q - 1).

Plain torch arithmetic, so that `import wavenet` never loads torchaudio's native library
(whose wheels load only against the torch they were built for). The values are those of
torchaudio's `mu_law_encoding` / `mu_law_decoding`, which this module used before.
"""

from __future__ import annotations

import torch

from ..errors import InvalidArgumentError, InvalidTypeError


def check_quantization_channels(quantization_channels: object) -> int:
    """`quantization_channels` as an int >= 2, or InvalidArgument/InvalidTypeError."""
    if isinstance(quantization_channels, bool) or not isinstance(quantization_channels, int):
        raise InvalidTypeError(
            f"quantization_channels must be an int, got {type(quantization_channels).__name__}"
        )
    if quantization_channels < 2:
        raise InvalidArgumentError(
            f"quantization_channels must be at least 2, got {quantization_channels}"
        )
    return quantization_channels


def _check_tensor(value: object, name: str, function: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        hint = " (use torch.from_numpy)" if type(value).__module__ == "numpy" else ""
        raise InvalidTypeError(
            f"{function} expects {name} as a torch.Tensor, got {type(value).__name__}{hint}"
        )
    return value


def mu_law_encode(waveform: torch.Tensor, quantization_channels: int = 256) -> torch.Tensor:
    """Compand and quantize a waveform.

    waveform: float (...) in [-1, 1] (values outside are clipped) -> codes: long (...) in
    [0, quantization_channels - 1], code = floor((F(x) + 1) / 2 * mu + 0.5) with
    F(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu).
    Raises InvalidTypeError (a TypeError) for a non-tensor or an integer waveform and
    InvalidArgumentError (a ValueError) for NaN samples or fewer than 2 channels.
    """
    waveform = _check_tensor(waveform, "the waveform", "mu_law_encode")
    if not waveform.is_floating_point():  # complex and bool included
        raise InvalidTypeError(
            f"mu_law_encode expects a float waveform, got dtype {waveform.dtype}"
        )
    mu = float(check_quantization_channels(quantization_channels) - 1)
    if torch.isnan(waveform).any():
        raise InvalidArgumentError("mu_law_encode: the waveform holds NaN samples")
    x = waveform.clamp(-1.0, 1.0)
    mu_t = torch.tensor(mu, dtype=x.dtype)  # the arithmetic in x's dtype, as it always was
    companded = torch.sign(x) * torch.log1p(mu_t * x.abs()) / torch.log1p(mu_t)
    return ((companded + 1) / 2 * mu_t + 0.5).to(torch.int64)


def mu_law_decode(codes: torch.Tensor, quantization_channels: int = 256) -> torch.Tensor:
    """Inverse of `mu_law_encode`: codes: int (...) in [0, Q - 1] -> float32 waveform (...)
    in [-1, 1] (float64 codes give float64).

    Raises InvalidArgumentError (a ValueError) for codes outside [0, Q - 1] and
    InvalidTypeError for a non-tensor.
    """
    codes = _check_tensor(codes, "the codes", "mu_law_decode")
    if codes.is_complex() or codes.dtype == torch.bool:
        raise InvalidTypeError(f"mu_law_decode expects integer codes, got dtype {codes.dtype}")
    mu = float(check_quantization_channels(quantization_channels) - 1)
    if codes.numel() and (
        bool((codes < 0).any())
        or bool((codes > mu).any())
        or (codes.is_floating_point() and bool(torch.isnan(codes).any()))
    ):
        raise InvalidArgumentError(
            f"mu_law_decode: codes must lie in [0, {int(mu)}], found "
            f"[{codes.min().item()}, {codes.max().item()}]"
        )
    values = codes if codes.is_floating_point() else codes.to(torch.float32)
    mu_t = torch.tensor(mu, dtype=values.dtype)
    x = values / mu_t * 2 - 1.0
    return torch.sign(x) * (torch.exp(x.abs() * torch.log1p(mu_t)) - 1.0) / mu_t

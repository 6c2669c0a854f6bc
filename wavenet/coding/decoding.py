"""`decode`: the waveform of a model's codes, whichever output type made them (the module is
not called decode.py, so that `wavenet.coding.decode` is the function, never the module).

    codes (..., T) --model.output "categorical"--> mu_law_decode(codes, quantization_channels)
                   --model.output "mol"---------->  (k - 32768) / 32768   (16-bit samples)
                   --> float32 waveform (..., T) in [-1, 1]

The config says which: a model's codes mean nothing without it, and the checkpoint carries
it (`wavenet.load_model` returns it beside the model).
"""

from __future__ import annotations

import torch

from ..config import Config, ModelConfig
from ..errors import InvalidArgumentError, InvalidTypeError
from .pcm import codes_to_waveform


def decode(codes: torch.Tensor, config: Config | ModelConfig) -> torch.Tensor:
    """The float waveform of codes such as `wavenet.generate` returns.

    codes: integer (..., T), mu-law codes in [0, quantization_channels) for a categorical
    model, 16-bit sample codes in [0, 65536) (the sample + 32768) for a "mol" model.
    config: the model's `Config` (as `load_model` returns it) or its `ModelConfig`.
    Returns float32 (..., T) in [-1, 1], on the codes' device.

    Raises InvalidTypeError (a TypeError) for codes that are not an integer tensor or a
    config of another type, and InvalidArgumentError (a ValueError) for codes outside the
    model's range.
    """
    model = config.model if isinstance(config, Config) else config
    if not isinstance(model, ModelConfig):
        raise InvalidTypeError(
            f"decode expects a wavenet Config or ModelConfig, got {type(config).__name__}"
        )
    if not isinstance(codes, torch.Tensor):
        hint = " (use torch.from_numpy)" if type(codes).__module__ == "numpy" else ""
        raise InvalidTypeError(
            f"decode expects the codes as a torch.Tensor, got {type(codes).__name__}{hint}"
        )
    if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
        raise InvalidTypeError(f"decode expects integer codes, got dtype {codes.dtype}")
    if codes.numel() and (bool((codes < 0).any()) or bool((codes >= model.classes).any())):
        raise InvalidArgumentError(
            f"decode: codes of this model ({model.output}) lie in [0, {model.classes - 1}], "
            f"found [{codes.min().item()}, {codes.max().item()}]"
        )
    return codes_to_waveform(codes, model.quantization_channels, model.coding)

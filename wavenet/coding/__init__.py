"""Codes: how audio becomes the integers a model predicts, and back (no torchaudio, no nn).

- `mulaw`: mu-law companding to Q codes, the categorical model's input and target.
- `pcm`: 16-bit samples as codes 0 ... 65535 (a "mol" model's), and the choice between
  the two codings by a config's `coding` (`waveform_to_codes`, `codes_to_waveform`,
  `file_samples`).
- `logistic`: the discretized mixture of logistics over 16-bit codes (log-probability,
  sampling) that a "mol" model's head parametrizes.
- `decoding`: `decode(codes, config)`, the waveform of a model's codes for either output.
"""

from .decoding import decode
from .logistic import mixture_log_prob, sample_mixture
from .mulaw import mu_law_decode, mu_law_encode
from .pcm import (
    codes_to_waveform,
    file_samples,
    pcm16_decode,
    pcm16_encode,
    pcm16_samples,
    waveform_to_codes,
)

__all__ = [
    "codes_to_waveform",
    "decode",
    "file_samples",
    "mixture_log_prob",
    "mu_law_decode",
    "mu_law_encode",
    "pcm16_decode",
    "pcm16_encode",
    "pcm16_samples",
    "sample_mixture",
    "waveform_to_codes",
]

"""Evaluation: how good a model is, in the figures the package reports.

- `bits.py`: bits per sample of whole files, every sample with its full receptive field
  (`evaluate_codes`; `wavenet eval`).
- `compression.py`: what `xz -9e` and other general-purpose coders make of the same codes,
  the bar a model must clear.
- `copysynth.py`: a vocoder's resynthesis of held-out audio from its mel, beside
  Griffin-Lim's, as a log-mel distance.
- `likeness.py`: whether generated audio has the long-term spectrum of held-out audio
  (`spectrum_distance_db`, in dB, levels aside).
- `plots.py`: training curves and spectrograms (matplotlib, imported only when drawing).
"""

from .bits import EvalResult, evaluate_codes
from .compression import baseline_bits, compressed_bits_per_sample
from .copysynth import CopySynthesis, copy_synthesis, log_mel_distance
from .likeness import long_term_spectrum, spectrum_distance_db
from .plots import plot_curves, plot_spectrograms, read_metrics

__all__ = [
    "CopySynthesis",
    "EvalResult",
    "baseline_bits",
    "compressed_bits_per_sample",
    "copy_synthesis",
    "evaluate_codes",
    "log_mel_distance",
    "long_term_spectrum",
    "plot_curves",
    "plot_spectrograms",
    "read_metrics",
    "spectrum_distance_db",
]

"""Whether generated audio is like held-out audio of the same kind, beyond bits: the shape
of its long-term average spectrum (LTAS).

    frames of n_fft samples every n_fft // 2, Hann window -> power |rfft|^2 per bin
    -> mean over the active frames -> 10 log10(power + tiny) dB per bin

A frame is active as in `wavenet.data.features.active_share`: the rms of its samples
(before the window) is above threshold_db dBFS (-40 by default); when no frame is active
every frame counts, so silence has a spectrum too (the floor). Pauses are left out so
that a recording with long silences and one without have comparable spectra; how much of
the audio is active is `active_share`'s figure, reported beside this one.

`spectrum_distance_db` compares two LTAS by shape only: each is moved to 0 dB mean over
the bins compared (50 Hz to min(Nyquist, 8 kHz)), and the distance is the rms of their
difference in dB. A gain applied to either signal does not change it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InvalidArgumentError

# Added to the mean power before the log: silence gives -300 dB, not -inf.
TINY = 1e-30
ACTIVE_DB = -40.0  # `active_share`'s default threshold
LOW_HZ = 50.0
HIGH_HZ = 8000.0

Audio = np.ndarray | Sequence[np.ndarray]


# Frames transformed at once: bounds the memory a long recording takes (8 MB at n_fft 1024).
_BLOCK_FRAMES = 1024


def _power_sums(audio: np.ndarray, n_fft: int, threshold_db: float) -> np.ndarray:
    """audio (T,) -> [[sum of active frames' power (bins,), active count],
    [sum of every frame's power, frame count]] as a (2, bins + 1) array.

    Frames of n_fft samples every n_fft // 2, Hann-windowed (audio shorter than n_fft is
    zero-padded to one frame; a last partial frame is left out)."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim != 1 or not len(audio):
        raise InvalidArgumentError(f"expected a non-empty 1-D waveform, got shape {audio.shape}")
    if len(audio) < n_fft:
        audio = np.pad(audio, (0, n_fft - len(audio)))
    hop, window = n_fft // 2, np.hanning(n_fft)
    level = 10.0 ** (threshold_db / 20.0)
    sums = np.zeros((2, n_fft // 2 + 2))
    starts = np.arange(0, len(audio) - n_fft + 1, hop)
    for first in range(0, len(starts), _BLOCK_FRAMES):
        frames = audio[starts[first : first + _BLOCK_FRAMES, None] + np.arange(n_fft)]
        active = np.sqrt(np.mean(frames**2, axis=1)) > level
        power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
        sums[0, :-1] += power[active].sum(axis=0)
        sums[0, -1] += active.sum()
        sums[1, :-1] += power.sum(axis=0)
        sums[1, -1] += len(frames)
    return sums


def _ltas(audio: Audio, n_fft: int, threshold_db: float) -> np.ndarray:
    """The LTAS in dB of one waveform or of the frames of several together."""
    if n_fft < 2:
        raise InvalidArgumentError(f"n_fft must be >= 2, got {n_fft}")
    waves = [audio] if isinstance(audio, np.ndarray) else list(audio)
    if not waves:
        raise InvalidArgumentError("expected at least one waveform, got none")
    sums = np.sum([_power_sums(w, n_fft, threshold_db) for w in waves], axis=0)
    chosen = sums[0] if sums[0, -1] > 0 else sums[1]  # the active frames, else all
    return np.asarray(10.0 * np.log10(chosen[:-1] / chosen[-1] + TINY))


def long_term_spectrum(
    audio: Audio, sample_rate: int, n_fft: int = 1024, threshold_db: float = ACTIVE_DB
) -> np.ndarray:
    """waveform (T,) float in [-1, 1], or a list of them -> LTAS (n_fft // 2 + 1,) in dB.

    Bin k is the frequency k * sample_rate / n_fft. Mean power over the active frames
    (module docstring); a list pools the frames of every waveform."""
    if sample_rate < 1:
        raise InvalidArgumentError(f"sample_rate must be >= 1, got {sample_rate}")
    return _ltas(audio, n_fft, threshold_db)


def spectrum_distance_db(
    generated: Audio, reference: Audio, sample_rate: int, n_fft: int = 1024
) -> float:
    """RMS difference in dB of the two LTAS, each normalised to 0 dB mean, over the bins
    from 50 Hz to min(sample_rate / 2, 8000) Hz: 0 for the same spectral shape whatever
    the levels; white noise against the same noise low-passed is tens of dB."""
    low, high = LOW_HZ, min(sample_rate / 2.0, HIGH_HZ)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    bins = (freqs >= low) & (freqs <= high)
    if not bins.any():
        raise InvalidArgumentError(
            f"no frequency bin between {low:g} and {high:g} Hz at {sample_rate} Hz, n_fft {n_fft}"
        )
    a = long_term_spectrum(generated, sample_rate, n_fft)[bins]
    b = long_term_spectrum(reference, sample_rate, n_fft)[bins]
    difference = (a - a.mean()) - (b - b.mean())
    return float(np.sqrt(np.mean(difference**2)))

"""The long-term average spectrum and the spectrum distance (wavenet.eval.likeness) on
signals whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from wavenet.errors import InvalidArgumentError
from wavenet.eval.likeness import long_term_spectrum, spectrum_distance_db

RATE = 16000


def noise(seed: int, seconds: float = 2.0, level: float = 0.1) -> np.ndarray:
    return level * np.random.default_rng(seed).standard_normal(int(seconds * RATE))


def low_passed(audio: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """Everything above cutoff_hz removed (in one FFT of the whole signal)."""
    spectrum = np.fft.rfft(audio)
    spectrum[np.fft.rfftfreq(len(audio), 1.0 / RATE) > cutoff_hz] = 0.0
    return np.fft.irfft(spectrum, n=len(audio))


def test_a_signal_is_at_distance_zero_from_itself() -> None:
    audio = noise(0) + 0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * RATE) / RATE)
    assert spectrum_distance_db(audio, audio, RATE) == pytest.approx(0.0, abs=1e-9)


def test_white_noise_against_low_passed_noise_is_far_and_two_white_noises_are_near() -> None:
    white, other_white = noise(1), noise(2)
    muffled = low_passed(noise(3), 1000.0)
    near = spectrum_distance_db(white, other_white, RATE)
    far = spectrum_distance_db(white, muffled, RATE)
    assert near < 1.0
    assert far > 20.0
    assert far > 10 * near


def test_the_level_does_not_count() -> None:
    white, muffled = noise(4), low_passed(noise(5), 2000.0)
    base = spectrum_distance_db(white, muffled, RATE)
    assert spectrum_distance_db(0.01 * white, muffled, RATE) == pytest.approx(base, abs=1e-6)
    assert spectrum_distance_db(white, 5.0 * muffled, RATE) == pytest.approx(base, abs=1e-6)


def test_silent_frames_are_left_out_of_the_spectrum() -> None:
    """Pauses (below -40 dBFS) do not count: noise with long silences has the spectrum of
    the noise alone, and a list pools the frames of every waveform."""
    white = noise(6, seconds=1.0)
    with_pauses = np.concatenate([np.zeros(3 * RATE), white, np.zeros(3 * RATE)])
    # Counted with the pauses, the mean power would be 7 times lower: -8.5 dB.
    level_change = long_term_spectrum(with_pauses, RATE) - long_term_spectrum(white, RATE)
    assert abs(level_change.mean()) < 0.5
    assert spectrum_distance_db(with_pauses, white, RATE) < 1.0
    assert spectrum_distance_db([np.zeros(RATE), white], white, RATE) < 0.5


def test_silence_only_is_handled() -> None:
    silence = np.zeros(RATE)
    spectrum = long_term_spectrum(silence, RATE)
    assert spectrum.shape == (513,)
    assert np.isfinite(spectrum).all()
    assert spectrum_distance_db(silence, silence, RATE) == 0.0
    # A flat floor against white noise's nearly flat spectrum: a few dB at most.
    assert 0.0 < spectrum_distance_db(silence, noise(7), RATE) < 3.0
    # Shorter than one frame: zero-padded to one frame.
    assert long_term_spectrum(noise(8, seconds=0.01), RATE).shape == (513,)


def test_a_sample_rate_of_8000_compares_up_to_its_nyquist_frequency() -> None:
    rate = 8000
    white = np.random.default_rng(9).standard_normal(2 * rate) * 0.1
    assert spectrum_distance_db(white, white, rate) == pytest.approx(0.0, abs=1e-9)


def test_bad_input_is_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        long_term_spectrum(np.zeros((2, 100)), RATE)
    with pytest.raises(InvalidArgumentError):
        long_term_spectrum(np.zeros(0), RATE)
    with pytest.raises(InvalidArgumentError):
        spectrum_distance_db([], noise(0), RATE)

"""`wavenet demo` end to end on a budget of seconds, and `wavenet plot`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from wavenet.demo import pluck, write_demo_dataset
from wavenet.features import periodicity, spectral_flatness
from wavenet_cli.main import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_demo_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--minutes", "0.1",
                                       "--seconds", "0.5"])
    assert result.exit_code == 0, result.output
    audio, rate = sf.read(out / "generated.wav")
    assert rate == 8000 and audio.shape == (4000,)
    for picture in ("spectrograms.png", "curves.png"):
        assert (out / picture).read_bytes()[:8] == PNG_MAGIC
        assert str(out / picture) in result.output
    records = [json.loads(l) for l in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] >= 1 and "val_bits" in records[-1]
    assert "scheduled steps" in result.output and "xz -9e on the same validation codes" in result.output
    assert "spectral flatness" in result.output and "after the one-time kernel compile" in result.output
    assert len(list((out / "data").glob("*.wav"))) == 12
    # A second run refuses to replace the folder unless told to.
    again = CliRunner().invoke(main, ["demo", "--out", str(out), "--minutes", "0.01"])
    assert again.exit_code == 1 and "--force" in again.output


def test_demo_dataset_is_seeded_and_pitched(tmp_path: Path) -> None:
    a = write_demo_dataset(tmp_path / "a", files=2, seconds=1.0)
    b = write_demo_dataset(tmp_path / "b", files=2, seconds=1.0)
    assert np.array_equal(sf.read(a[1])[0], sf.read(b[1])[0])
    # A plucked string repeats with the period of its pitch: the autocorrelation peaks
    # at a lag of sample_rate / frequency.
    for frequency in (110.0, 220.0, 330.0):
        note = pluck(frequency, 1.0, 8000, np.random.default_rng(0))
        note = note - note.mean()
        correlation = np.correlate(note, note, mode="full")[len(note) - 1:]
        lag = 8 + int(np.argmax(correlation[8:200]))
        assert abs(8000 / lag - frequency) / frequency < 0.03


def test_plot_command(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    lines = [{"step": s, "train_bits": 8 - s / 10, "lr": 1e-3, "samples_per_s": 1.0,
              "wall_time": s} for s in range(1, 11)]
    lines[-1]["val_bits"] = 7.5
    (run / "metrics.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines))
    result = CliRunner().invoke(main, ["plot", str(run), "--out", str(tmp_path / "c.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "c.png").read_bytes()[:8] == PNG_MAGIC
    missing = CliRunner().invoke(main, ["plot", str(tmp_path / "nothing")])
    assert missing.exit_code == 1 and "no metrics log" in missing.output


def test_spectral_flatness_of_noise_and_of_a_tone() -> None:
    rng = np.random.default_rng(0)
    # Each bin of a noise frame's periodogram is exponential: flatness exp(-gamma) = 0.561.
    assert spectral_flatness(rng.standard_normal(80_000)) == pytest.approx(0.5615, abs=0.01)
    t = np.arange(80_000) / 8000
    assert spectral_flatness(np.sin(2 * np.pi * 440 * t)) < 1e-6  # measured: 1e-10
    # The demo's plucked strings are tonal: measured 0.03.
    note = pluck(220.0, 1.0, 8000, rng)
    assert spectral_flatness(note) < 0.1
    with pytest.raises(ValueError, match="silent"):
        spectral_flatness(np.zeros(8000))
    with pytest.raises(ValueError, match="n_fft"):
        spectral_flatness(np.zeros(100))


def test_periodicity_of_noise_of_a_pluck_and_of_the_melodies(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    # The largest of ~100 correlations with a spread of 1/sqrt(400) in each 50 ms frame.
    assert periodicity(rng.standard_normal(32_000), 8000) == pytest.approx(0.14, abs=0.02)
    assert periodicity(pluck(220.0, 1.0, 8000, rng), 8000) > 0.98  # measured: 0.993
    # A tone whose period (1 ms) is below the lags repeats at twice it, 2 ms.
    t = np.arange(8000) / 8000
    assert periodicity(np.sin(2 * np.pi * 1000 * t), 8000) > 0.99
    melodies = write_demo_dataset(tmp_path, files=3, seconds=2.0)
    assert all(periodicity(sf.read(p)[0], 8000) > 0.9 for p in melodies)
    with pytest.raises(ValueError, match="silent"):
        periodicity(np.zeros(8000), 8000)
    with pytest.raises(ValueError, match="frame"):
        periodicity(np.zeros(300), 8000)


@pytest.mark.slow
def test_two_minute_demo_sounds_more_like_its_clips_than_noise(tmp_path: Path) -> None:
    """The real demo (2 minutes of training): the generated audio's spectral flatness is
    nearer the training clips' than white noise's."""
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    generated = spectral_flatness(sf.read(out / "generated.wav")[0])
    clips = np.mean([spectral_flatness(sf.read(p)[0]) for p in (out / "data").glob("*.wav")])
    noise = spectral_flatness(np.random.default_rng(0).standard_normal(32_000))
    assert abs(generated - clips) < abs(generated - noise), result.output

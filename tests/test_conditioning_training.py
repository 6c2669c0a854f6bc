"""Conditioning end to end through the CLI: a tiny vocoder follows the mel, a tiny speaker
model follows the id."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from wavenet_cli.main import main

RATE = 8000
# A receptive field of 4 samples, shorter than any tone's period, so that the pitch must
# come from the mel and not from the history (a longer one learned to continue the tones
# from their past and ignored the mel: starting from silence, pitches came out up to 30%
# off).
VOCODER = ["mel.n_mels=20", "mel.n_fft=256", "mel.hop_length=64", "mel.win_length=256",
           "model.local_channels=20", "model.upsample_scales=8,8", "data.val_fraction=0",
           "train.log_every=50", "model.layers_per_stack=2", "model.stacks=1",
           "model.residual_channels=32", "model.gate_channels=64"]


def tone(frequency: float, seconds: float, amplitude: float = 0.5, phase: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * frequency * t + phase)).astype(np.float32)


def dominant_frequency(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft((audio - audio.mean()) * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / RATE)[spectrum.argmax()])


def power_near(audio: np.ndarray, frequency: float, width: float = 0.05) -> float:
    """Fraction of the signal's power within +-width of frequency."""
    spectrum = np.abs(np.fft.rfft(audio - audio.mean())) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / RATE)
    band = np.abs(freqs - frequency) <= width * frequency
    return float(spectrum[band].sum() / spectrum.sum())


def train(data: Path, run: Path, cache: Path, steps: int, *args: str) -> None:
    command = ["train", "--data", str(data), "--out", str(run), "--config", "tiny",
               "--steps", str(steps), "--cache-dir", str(cache), *args]
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0, result.output


PITCHES = (200.0, 280.0, 390.0, 540.0)


def test_vocoder_resynthesizes_held_out_tones_at_their_pitch(tmp_path: Path) -> None:
    data = tmp_path / "tones"
    data.mkdir()
    for f in PITCHES:
        for amplitude in (0.2, 0.4, 0.6):
            sf.write(data / f"tone {f:g} {amplitude:g}.wav", tone(f, 0.5, amplitude), RATE)
    run = tmp_path / "vocoder"
    train(data, run, tmp_path / "cache", 600, *sum((["--set", s] for s in VOCODER), []))
    rng = np.random.default_rng(0)
    for f in PITCHES:
        # A recording not trained on: other amplitude, phase and length.
        held_out = tmp_path / f"held out {f:g}.wav"
        sf.write(held_out, tone(f, 0.5, amplitude=rng.uniform(0.3, 0.5),
                                phase=rng.uniform(0, 2 * np.pi)), RATE)
        out = tmp_path / f"resynth {f:g}.wav"
        result = CliRunner().invoke(main, ["generate", str(run), "--out", str(out), "--mel-from",
                                           str(held_out), "--seed", "0", "--temperature", "0.5"])
        assert result.exit_code == 0, result.output
        audio, rate = sf.read(out)
        assert rate == RATE and len(audio) == (4000 // 64) * 64  # frames x hop
        found = dominant_frequency(audio)
        assert abs(found - f) / f < 0.03, (f, found)


def test_speaker_id_selects_its_tone(tmp_path: Path) -> None:
    data = tmp_path / "speakers"
    for name, f in (("low", 300.0), ("high", 500.0)):
        (data / name).mkdir(parents=True)
        for i in range(2):
            sf.write(data / name / f"{i}.wav", tone(f, 1.0, phase=i), RATE)
    run = tmp_path / "speaker-run"
    train(data, run, tmp_path / "cache", 150, "--speakers-from-folders", "--set",
          "data.val_fraction=0", "--set", "model.layers_per_stack=5")
    info = json.loads(CliRunner().invoke(main, ["info", str(run), "--json"]).output)
    assert info["speakers"] == ["high", "low"]
    for name, f, other in (("low", 300.0, 500.0), ("high", 500.0, 300.0)):
        out = tmp_path / f"{name}.wav"
        result = CliRunner().invoke(main, ["generate", str(run), "--out", str(out), "--speaker",
                                           name, "--samples", "8000", "--seed", "1"])
        assert result.exit_code == 0, result.output
        audio = sf.read(out)[0][2000:]  # past the start from silence
        assert power_near(audio, f) > 0.5, (name, power_near(audio, f), power_near(audio, other))
        assert power_near(audio, other) < 0.1
    unknown = CliRunner().invoke(main, ["generate", str(run), "--out", str(tmp_path / "x.wav"),
                                        "--speaker", "alto"])
    assert unknown.exit_code == 1 and "known: high, low" in unknown.output
    missing = CliRunner().invoke(main, ["generate", str(run), "--out", str(tmp_path / "y.wav")])
    assert missing.exit_code == 1 and "needs --speaker" in missing.output

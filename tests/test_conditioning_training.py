"""Conditioning end to end through the CLI: a tiny vocoder follows the mel, a tiny speaker
model follows the id."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from click.testing import CliRunner

from wavenet.data.prepare import load_encoded, mel_features, mel_statistics
from wavenet.io.checkpoint import load_model
from wavenet_cli.main import main

RATE = 8000
# A receptive field of 16 samples (2 ms), shorter than most of the tones' periods, so
# that the pitch has to come from the mel: generation starts from silence.
VOCODER = [
    "mel.n_mels=20",
    "mel.n_fft=256",
    "mel.hop_length=64",
    "mel.win_length=256",
    "model.local_channels=20",
    "model.upsample_scales=8,8",
    "data.val_fraction=0",
    "train.log_every=50",
    "model.layers_per_stack=4",
    "model.stacks=1",
    "model.residual_channels=32",
    "model.gate_channels=64",
]


def tone(
    frequency: float,
    seconds: float,
    amplitude: float = 0.5,
    phase: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    hiss = noise * np.random.default_rng(seed).standard_normal(len(t))
    return (amplitude * np.sin(2 * np.pi * frequency * t + phase) + hiss).astype(np.float32)


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
    command = [
        "train",
        "--data",
        str(data),
        "--out",
        str(run),
        "--config",
        "tiny",
        "--steps",
        str(steps),
        "--cache-dir",
        str(cache),
        *args,
    ]
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0, result.output


PITCHES = (200.0, 280.0, 390.0, 540.0)


def test_vocoder_resynthesizes_held_out_tones_at_their_pitch(tmp_path: Path) -> None:
    # Three recordings per pitch at random levels and phases, with a little hiss: clean
    # tones at three fixed levels were memorized (the held-out recordings scored 33 to 41
    # bits/sample) and generation from new levels fell into a constant output.
    data = tmp_path / "tones"
    data.mkdir()
    rng = np.random.default_rng(1)
    for f in PITCHES:
        for i in range(3):
            sf.write(
                data / f"tone {f:g} {i}.wav",
                tone(
                    f,
                    0.5,
                    rng.uniform(0.15, 0.65),
                    rng.uniform(0, 2 * np.pi),
                    noise=0.01,
                    seed=int(f) + i,
                ),
                RATE,
            )
    run = tmp_path / "vocoder"
    train(data, run, tmp_path / "cache", 600, *sum((["--set", s] for s in VOCODER), []))
    # The run standardizes the mel with the statistics of its training files.
    model, config, _ = load_model(run)
    files = load_encoded(data, sample_rate=RATE, cache_dir=tmp_path / "cache").files
    mean, std = mel_statistics(
        mel_features(files, sample_rate=RATE, mel=config.mel, cache_dir=tmp_path / "cache")
    )
    torch.testing.assert_close(model.mel_mean, mean)
    torch.testing.assert_close(model.mel_std, std)
    for f in PITCHES:
        # A recording not trained on: its own level, phase and hiss.
        held_out = tmp_path / f"held out {f:g}.wav"
        sf.write(
            held_out,
            tone(
                f,
                0.5,
                amplitude=rng.uniform(0.3, 0.5),
                phase=rng.uniform(0, 2 * np.pi),
                noise=0.01,
                seed=int(f) + 100,
            ),
            RATE,
        )
        out = tmp_path / f"resynth {f:g}.wav"
        result = CliRunner().invoke(
            main,
            [
                "generate",
                str(run),
                "--out",
                str(out),
                "--mel-from",
                str(held_out),
                "--seed",
                "0",
                "--temperature",
                "0.5",
            ],
        )
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
    train(
        data,
        run,
        tmp_path / "cache",
        150,
        "--speakers-from-folders",
        "--set",
        "data.val_fraction=0",
        "--set",
        "model.layers_per_stack=5",
    )
    info = json.loads(CliRunner().invoke(main, ["info", str(run), "--json"]).output)
    assert info["speakers"] == ["high", "low"]
    for name, f, other in (("low", 300.0, 500.0), ("high", 500.0, 300.0)):
        out = tmp_path / f"{name}.wav"
        result = CliRunner().invoke(
            main,
            [
                "generate",
                str(run),
                "--out",
                str(out),
                "--speaker",
                name,
                "--samples",
                "8000",
                "--seed",
                "1",
            ],
        )
        assert result.exit_code == 0, result.output
        audio = sf.read(out)[0][2000:]  # past the start from silence
        assert power_near(audio, f) > 0.5, (name, power_near(audio, f), power_near(audio, other))
        assert power_near(audio, other) < 0.1
    unknown = CliRunner().invoke(
        main, ["generate", str(run), "--out", str(tmp_path / "x.wav"), "--speaker", "alto"]
    )
    assert unknown.exit_code == 1 and "known: high, low" in unknown.output
    missing = CliRunner().invoke(main, ["generate", str(run), "--out", str(tmp_path / "y.wav")])
    assert missing.exit_code == 1 and "needs --speaker" in missing.output

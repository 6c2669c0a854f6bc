"""Training-item augmentation (speed, gain, polarity) and the head's dropout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import FAST, SAMPLE_RATE, write_chord

import wavenet
from wavenet.coding.pcm import codes_to_waveform
from wavenet.config import DataConfig, ModelConfig
from wavenet.data.augment import EDGE, AugmentedCrops, source_length
from wavenet.data.crops import CropSampler
from wavenet.data.prepare import EncodedFile, encode_waveform
from wavenet.io.checkpoint import config_from_checkpoint, load_checkpoint, resolve_checkpoint
from wavenet_cli.main import main

LENGTH = 1025


def sine_files(frequency: float = 500.0, amplitude: float = 0.3) -> list[EncodedFile]:
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    wave = (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    return [EncodedFile(Path("sine.wav"), encode_waveform(wave, 256))]


def augmented(data: DataConfig, seed: int = 0, files: list[EncodedFile] | None = None):
    generator = torch.Generator().manual_seed(seed)
    crops = CropSampler(files or sine_files(), source_length(LENGTH, data.augment_speed), generator)
    return AugmentedCrops(crops, LENGTH, data, "mu-law", 256)


def peak_frequency(codes: torch.Tensor) -> float:
    audio = codes_to_waveform(codes, 256).numpy().astype(np.float64)
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)), n=16 * len(audio)))
    return float(np.argmax(spectrum)) * SAMPLE_RATE / (16 * len(audio))


def rms(codes: torch.Tensor) -> float:
    return float(np.sqrt(np.mean(codes_to_waveform(codes, 256).numpy() ** 2)))


def test_polarity_flips_about_half_the_items_exactly() -> None:
    data = DataConfig(augment_polarity=True)
    items = augmented(data).batch(64).codes
    plain = CropSampler(sine_files(), LENGTH, torch.Generator().manual_seed(0)).batch(64).codes
    same = (items == plain).all(dim=1)
    flipped = (items == 255 - plain).all(dim=1)
    assert bool((same | flipped).all())  # mu-law is symmetric: -x codes as 255 - c
    assert 16 <= int(flipped.sum()) <= 48


def test_gain_moves_the_level_within_its_range() -> None:
    items = augmented(DataConfig(augment_gain_db=6.0)).batch(64).codes
    assert items.shape == (64, LENGTH) and items.dtype == torch.int64
    reference = 0.3 / np.sqrt(2)
    gains = np.array([20 * np.log10(rms(row) / reference) for row in items])
    # Re-coding an 8-bit mu-law waveform moves its level by a few hundredths of a dB.
    assert gains.min() >= -6.1 and gains.max() <= 6.1
    assert gains.max() - gains.min() > 6.0  # drawn across the range, not one gain


def test_speed_changes_pitch_by_the_factor_drawn() -> None:
    data = DataConfig(augment_speed=0.1)
    assert source_length(LENGTH, 0.1) >= (LENGTH + 2 * EDGE) * 1.1
    items = augmented(data).batch(32).codes
    assert items.shape == (32, LENGTH)
    peaks = np.array([peak_frequency(row) for row in items])
    # A 500 Hz sine played 0.9x-1.1x as fast (bins of the padded FFT are ~0.5 Hz).
    assert peaks.min() >= 500 * 0.9 - 2 and peaks.max() <= 500 * 1.1 + 2
    assert peaks.max() - peaks.min() > 50
    # The resampled middle keeps the sine's level: no edge transient in the kept part.
    levels = np.array([rms(row) for row in items])
    assert np.all(np.abs(20 * np.log10(levels / (0.3 / np.sqrt(2)))) < 0.3)


def test_a_seed_gives_the_same_items() -> None:
    data = DataConfig(augment_speed=0.05, augment_gain_db=3.0, augment_polarity=True)
    first, second = augmented(data, seed=3), augmented(data, seed=3)
    for _ in range(3):
        assert torch.equal(first.batch(4).codes, second.batch(4).codes)
    assert not torch.equal(augmented(data, seed=4).batch(4).codes, augmented(data).batch(4).codes)


def test_config_ranges_and_vocoders() -> None:
    with pytest.raises(wavenet.ConfigError, match="augment_speed"):
        DataConfig(augment_speed=0.6)
    with pytest.raises(wavenet.ConfigError, match="augment_gain_db"):
        DataConfig(augment_gain_db=-1.0)
    with pytest.raises(wavenet.ConfigError, match="dropout"):
        ModelConfig(dropout=1.0)
    vocoder = wavenet.load_config(
        "tiny", ["model.local_channels=80", "model.upsample_scales=16,16"]
    )
    with pytest.raises(wavenet.ConfigError, match="vocoder"):
        wavenet.load_config(
            "tiny",
            ["model.local_channels=80", "model.upsample_scales=16,16", "data.augment_gain_db=3"],
        )
    assert vocoder.data.augment_polarity is False


def test_dropout_only_while_training() -> None:
    torch.manual_seed(0)
    config = ModelConfig(
        quantization_channels=16,
        residual_channels=8,
        gate_channels=8,
        skip_channels=8,
        layers_per_stack=3,
        stacks=1,
        dropout=0.5,
    )
    model = wavenet.WaveNet(config)
    codes = torch.randint(0, 16, (2, 50))
    model.eval()
    evaluated = model(codes)
    torch.testing.assert_close(model.forward_blocks(codes), evaluated, rtol=1e-5, atol=1e-5)
    model.train()
    dropped, dropped_blocks = model(codes), model.forward_blocks(codes)
    assert not torch.allclose(dropped, evaluated)
    assert not torch.allclose(dropped_blocks, evaluated)
    dropped.sum().backward()  # the fused pass's backward with dropout after it
    assert model.head_out.weight.grad is not None
    # Generation is inference whatever the caller's mode: a seed gives the codes of the
    # model in eval mode, and the caller's mode is kept.
    seed = 1
    out_training = wavenet.generate(
        model, 30, generator=torch.Generator().manual_seed(seed), method="naive"
    )
    assert model.training
    model.eval()
    out_eval = wavenet.generate(
        model, 30, generator=torch.Generator().manual_seed(seed), method="naive"
    )
    assert torch.equal(out_training, out_eval)


def test_a_run_trains_on_augmented_items(tmp_path: Path) -> None:
    data = write_chord(tmp_path / "chord")
    run = tmp_path / "run"
    overrides = [
        *FAST,
        "data.augment_speed=0.05",
        "data.augment_gain_db=3",
        "data.augment_polarity=true",
        "model.dropout=0.1",
    ]
    args = ["train", "--data", str(data), "--out", str(run), "--config", "tiny", "--steps", "30"]
    for override in overrides:
        args += ["--set", override]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    bits = [r["train_bits"] for r in records if "train_bits" in r]
    assert len(bits) >= 25
    assert bits[0] > 7.5 and np.mean(bits[-5:]) < bits[0] - 0.5, bits  # measured 8.0 -> 7.05
    config = config_from_checkpoint(load_checkpoint(resolve_checkpoint(run, prefer="last")))
    assert config.data.augment_speed == 0.05 and config.model.dropout == 0.1

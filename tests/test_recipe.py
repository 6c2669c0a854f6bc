"""A new run's recipe adapted to its training audio's duration (data.adapt_to_duration)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from helpers import FAST, write_chord

import wavenet
from wavenet.io.checkpoint import config_from_checkpoint, load_checkpoint, resolve_checkpoint
from wavenet.train.recipe import (
    AUGMENT_UNDER_SECONDS,
    SMALL_MODEL_UNDER_SECONDS,
    adapt_to_duration,
)
from wavenet_cli.main import main


def test_the_cpu_preset_adapts_by_duration() -> None:
    cpu = wavenet.load_config("cpu")
    assert cpu.data.adapt_to_duration
    many, changes = adapt_to_duration(cpu, AUGMENT_UNDER_SECONDS + 1)
    assert many == cpu and changes == []
    minutes, changes = adapt_to_duration(cpu, 300.0)
    assert minutes.data.augment_speed == 0.05 and minutes.data.augment_gain_db == 0.0
    assert minutes.data.augment_polarity and minutes.model == cpu.model
    assert changes == [
        "data.augment_speed=0.05",
        "data.augment_polarity=true",
    ]
    seconds, changes = adapt_to_duration(cpu, SMALL_MODEL_UNDER_SECONDS - 90)
    m = seconds.model
    assert (m.residual_channels, m.gate_channels, m.skip_channels) == (32, 64, 128)
    assert m.receptive_field == cpu.model.receptive_field
    assert "model.skip_channels=128" in changes


def test_what_the_config_sets_is_kept() -> None:
    cpu = wavenet.load_config("cpu", ["data.augment_speed=0.02", "model.residual_channels=16"])
    small, changes = adapt_to_duration(cpu, 30.0)
    assert small.data.augment_speed == 0.02 and small.model.residual_channels == 16
    assert "data.augment_speed=0.05" not in changes and "data.augment_polarity=true" in changes
    off = wavenet.load_config("cpu", ["data.adapt_to_duration=false"])
    assert adapt_to_duration(off, 30.0) == (off, [])
    vocoder = wavenet.load_config(
        "cpu",
        ["model.local_channels=80", "model.upsample_scales=16,16"],
    )
    assert adapt_to_duration(vocoder, 30.0) == (vocoder, [])


def test_a_new_run_is_saved_with_its_adapted_config(tmp_path: Path) -> None:
    data = write_chord(tmp_path / "chord")  # 4.5 s of audio
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(run), "--config", "tiny", "--steps", "10"]
    for override in [*FAST, "data.adapt_to_duration=true"]:
        args += ["--set", override]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "the small-folder recipe data.augment_speed=0.05" in result.stderr
    saved = config_from_checkpoint(load_checkpoint(resolve_checkpoint(run, prefer="last")))
    assert saved.data.augment_speed == 0.05 and saved.data.augment_polarity
    # A resumed run keeps the config it was saved with, and says nothing new.
    resumed = CliRunner().invoke(
        main, ["train", "--data", str(data), "--out", str(run), "--resume", "--steps", "12"]
    )
    assert resumed.exit_code == 0, resumed.output
    assert "to step 12" in resumed.output and "small-folder recipe" not in resumed.stderr

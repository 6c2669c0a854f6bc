"""`wavenet train --init-from`: runs that start from a trained model, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from helpers import FAST, write_chord

from wavenet.io.checkpoint import load_checkpoint, load_model
from wavenet_cli.main import main


def write_other_chord(folder: Path, files: int, seed: int) -> Path:
    """A chord the source never heard (G major, lower and wider apart than A major)."""
    return write_chord(folder, files=files, seed=seed, frequencies=(196.0, 246.9, 293.7))


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def train(data: Path, out: Path, steps: int, cache: Path, *extra: str) -> str:
    fast = [a for pair in FAST for a in ("--set", pair)]
    return cli(
        "train",
        "--data",
        str(data),
        "--out",
        str(out),
        "--steps",
        str(steps),
        "--cache-dir",
        str(cache),
        *fast,
        *extra,
    )


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("source")
    run = root / "run"
    train(
        write_chord(root / "chord"),
        run,
        120,
        root / "cache",
        "--config",
        "tiny",
        "--set",
        "train.val_every=40",
        "--set",
        "train.checkpoint_every=40",
    )
    return run


def held_out_bits(run: Path, data: Path, cache: Path) -> float:
    report = json.loads(
        cli("eval", str(run), "--data", str(data), "--json", "--cache-dir", str(cache))
    )
    return float(report["bits_per_sample"])


def test_fine_tuning_learns_new_data_faster_than_from_scratch(source: Path, tmp_path: Path) -> None:
    new = write_other_chord(tmp_path / "new", files=3, seed=1)
    held = write_other_chord(tmp_path / "held", files=1, seed=2)
    cache = tmp_path / "cache"
    tuned, scratch = tmp_path / "tuned", tmp_path / "scratch"
    train(new, tuned, 30, cache, "--init-from", str(source), "--set", "train.val_every=30")
    train(new, scratch, 30, cache, "--config", "tiny", "--set", "train.val_every=30")
    tuned_bits = held_out_bits(tuned, held, cache)
    scratch_bits = held_out_bits(scratch, held, cache)
    source_bits = held_out_bits(source, held, cache)
    print(
        f"held-out bits on the new chord after 30 steps: fine-tuned {tuned_bits:.3f}, "
        f"from scratch {scratch_bits:.3f}; the source before fine-tuning {source_bits:.3f}"
    )
    assert tuned_bits < scratch_bits - 0.5
    assert tuned_bits < source_bits  # it learned the new data, not only kept the old
    # The run records where it started, and info says so.
    config = json.loads((tuned / "config.json").read_text())
    assert config["train"]["init_from"].endswith("best.pt")
    assert len(config["train"]["init_from_sha256"]) == 64
    assert "started from" in cli("info", str(tuned))
    # A fresh optimizer and schedule: the new run counts its own steps.
    assert load_checkpoint(tuned / "checkpoints" / "last.pt")["step"] == 30


def test_fine_tuning_from_an_export(source: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    cli("export", str(source), "--out", str(shared))
    tuned = tmp_path / "tuned"
    train(
        write_other_chord(tmp_path / "new", 2, 3),
        tuned,
        2,
        tmp_path / "cache",
        "--init-from",
        str(shared),
        "--set",
        "train.lr=1e-30",
    )
    config = json.loads((tuned / "config.json").read_text())
    assert config["train"]["init_from"] == str(shared)
    # A vanishing lr: the weights are the export's, so the logits are the source's.
    a, _, _ = load_model(source)
    b, _, _ = load_model(tuned)
    codes = torch.randint(0, 256, (1, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(a(codes), b(codes), rtol=0, atol=1e-5)


def test_refusals_are_one_line(source: Path, tmp_path: Path) -> None:
    data = write_other_chord(tmp_path / "new", 2, 4)
    fast = [a for pair in FAST for a in ("--set", pair)]
    base = [
        "train",
        "--data",
        str(data),
        "--steps",
        "2",
        "--cache-dir",
        str(tmp_path / "c"),
        *fast,
        "--init-from",
        str(source),
    ]
    cases = [
        (
            ["--out", str(tmp_path / "a"), "--set", "model.residual_channels=24"],
            "does not fit the source's weights: embedding.weight (256x16 -> 256x24)",
        ),
        (["--out", str(tmp_path / "b"), "--config", "tiny"], "change fields with --set"),
        (["--out", str(tmp_path / "c"), "--resume"], "pass one of them"),
        (
            ["--out", str(tmp_path / "d"), "--init-from", str(tmp_path / "nowhere")],
            "no run folder or checkpoint",
        ),
    ]
    for extra, message in cases:
        result = CliRunner().invoke(main, base + extra)
        assert result.exit_code == 1, result.output
        assert message in result.output, result.output
        assert "Traceback" not in result.output


def test_new_speakers_and_a_new_mel_input_start_at_the_source(tmp_path: Path) -> None:
    """Through the CLI: a speaker model fine-tuned on other and more speakers, and an
    unconditioned model turned into a vocoder, compute the source's logits at the start
    (a vanishing lr keeps the start's weights)."""
    cache = tmp_path / "cache"
    voices = tmp_path / "voices"
    write_chord(voices / "ann", files=2, seconds=0.8)
    write_other_chord(voices / "bob", files=2, seed=5)
    speaker_run = tmp_path / "speakers"
    train(voices, speaker_run, 2, cache, "--config", "tiny", "--speakers-from-folders")
    more = tmp_path / "more"
    write_other_chord(more / "bob", files=2, seed=6)
    write_chord(more / "cy", files=2, seconds=0.8, seed=7)
    tuned = tmp_path / "tuned"
    train(
        more,
        tuned,
        1,
        cache,
        "--init-from",
        str(speaker_run),
        "--speakers-from-folders",
        "--set",
        "train.lr=1e-30",
    )
    source_model, _, _ = load_model(speaker_run)
    tuned_model, _, payload = load_model(tuned)
    assert payload["extra"]["speakers"] == ["bob", "cy"]
    codes = torch.randint(0, 256, (1, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(
            tuned_model(codes, global_cond=torch.tensor([0])),
            source_model(codes, global_cond=torch.tensor([1])),
            rtol=0,
            atol=1e-5,
        )

    plain = tmp_path / "plain"
    train(
        write_chord(tmp_path / "chord", files=2, seconds=0.8), plain, 2, cache, "--config", "tiny"
    )
    vocoder = tmp_path / "vocoder"
    mel = [
        "mel.n_mels=8",
        "mel.n_fft=64",
        "mel.hop_length=16",
        "mel.win_length=64",
        "model.local_channels=8",
        "model.upsample_scales=4,4",
        "data.val_fraction=0",
    ]
    train(
        tmp_path / "chord",
        vocoder,
        1,
        cache,
        "--init-from",
        str(plain),
        *[a for pair in mel for a in ("--set", pair)],
        "--set",
        "train.lr=1e-30",
    )
    source_model, _, _ = load_model(plain)
    vocoder_model, _, _ = load_model(vocoder)
    assert vocoder_model.config.local_channels == 8
    with torch.no_grad():
        torch.testing.assert_close(
            vocoder_model(codes, mel=torch.randn(1, 8, 4)), source_model(codes), rtol=0, atol=1e-5
        )

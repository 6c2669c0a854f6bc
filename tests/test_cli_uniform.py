"""The commands spell their options alike (issue 28, item 6): the run folder positional
wherever a command reads one, `-v`, `--device`, `--force` and `--json` wherever they apply,
one module per command."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

import wavenet
from wavenet.io.checkpoint import save_checkpoint
from wavenet_cli.main import main

COMMANDS = sorted(main.list_commands(click.Context(main)))
READS_A_RUN = {"eval", "export", "generate", "info", "mel", "plot"}
WRITES = {"demo", "export", "generate", "mel", "plot"}
REPORTS = {"eval", "export", "generate", "info", "mel", "presets"}
RUNS_A_MODEL = {"eval", "generate", "train"}


def command(name: str) -> click.Command:
    found = main.get_command(click.Context(main), name)
    assert found is not None
    return found


def options(name: str) -> set[str]:
    return {opt for param in command(name).params for opt in param.opts}


@pytest.mark.parametrize("name", COMMANDS)
def test_options_are_where_they_apply(name: str) -> None:
    opts = options(name)
    if name != "presets":
        assert {"-v", "--verbose"} <= opts, f"{name} has no -v"
    assert ("--force" in opts) == (name in WRITES), name
    assert ("--json" in opts) == (name in REPORTS), name
    assert ("--device" in opts) == (name in RUNS_A_MODEL), name


@pytest.mark.parametrize("name", sorted(READS_A_RUN))
def test_the_run_is_the_first_argument(name: str) -> None:
    arguments = [p for p in command(name).params if isinstance(p, click.Argument)]
    assert arguments[0].name == "run"
    visible = [p for p in command(name).params if isinstance(p, click.Option) and not p.hidden]
    assert all("--run" not in p.opts for p in visible)


def test_each_command_has_its_own_module() -> None:
    modules = {getattr(command(name).callback, "__module__", "") for name in COMMANDS}
    assert len(modules) == len(COMMANDS)
    assert "wavenet_cli.main" not in modules


# -- wavenet mel RUN SOURCE ------------------------------------------------------------


@pytest.fixture(scope="module")
def vocoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny vocoder's checkpoint and a clip beside it: mels need no training."""
    folder = tmp_path_factory.mktemp("vocoder")
    config = wavenet.load_config(
        "tiny",
        [
            "mel.n_mels=20",
            "mel.n_fft=256",
            "mel.hop_length=64",
            "mel.win_length=256",
            "model.local_channels=20",
            "model.upsample_scales=8,8",
        ],
    )
    torch.manual_seed(0)
    save_checkpoint(
        folder / "voc.pt", config=config, model=wavenet.WaveNet(config.model).state_dict(), step=0
    )
    t = np.arange(4000) / 8000
    sf.write(folder / "clip.wav", 0.3 * np.sin(2 * np.pi * 330 * t), 8000)
    return folder


def test_mel_takes_the_run_positionally(vocoder: Path, tmp_path: Path) -> None:
    run, clip = vocoder / "voc.pt", vocoder / "clip.wav"
    new = CliRunner().invoke(main, ["mel", str(run), str(clip), "--out-dir", str(tmp_path / "a")])
    assert new.exit_code == 0, new.output
    # The old spelling still works, hidden from --help, and writes the same mel.
    old = CliRunner().invoke(
        main, ["mel", str(clip), "--run", str(run), "--out-dir", str(tmp_path / "b")]
    )
    assert old.exit_code == 0, old.output
    a, b = np.load(tmp_path / "a" / "clip.npy"), np.load(tmp_path / "b" / "clip.npy")
    assert a.shape == (20, 4000 // 64) and np.array_equal(a, b)
    assert "--run" not in CliRunner().invoke(main, ["mel", "--help"]).output


@pytest.mark.parametrize(
    "args, said",
    [
        (["RUN"], "Missing argument 'SOURCE'"),
        (["RUN", "CLIP", "--run", "RUN"], "give the run once"),
    ],
)
def test_mel_arguments_are_one_line(vocoder: Path, tmp_path: Path, args, said: str) -> None:
    paths = {"RUN": str(vocoder / "voc.pt"), "CLIP": str(vocoder / "clip.wav")}
    result = CliRunner().invoke(
        main, ["mel", *[paths.get(a, a) for a in args], "--out-dir", str(tmp_path / "m")]
    )
    assert result.exit_code == 2 and said in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m").exists()


def test_mel_json(vocoder: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    result = CliRunner().invoke(
        main, ["mel", str(vocoder / "voc.pt"), str(vocoder), "--out-dir", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["written"] == 1 and report["skipped"] == [] and report["n_mels"] == 20
    assert report["hop_length"] == 64 and report["out_dir"] == str(out)


# -- --json where it was added ----------------------------------------------------------


def test_presets_json_matches_the_text() -> None:
    text = CliRunner().invoke(main, ["presets"])
    rows = json.loads(CliRunner().invoke(main, ["presets", "--json"]).stdout)
    assert [r["name"] for r in rows] == wavenet.preset_names()
    assert len(text.output.splitlines()) == len(rows)
    tiny = next(r for r in rows if r["name"] == "tiny")
    assert tiny["receptive_field"] == 31 and tiny["sample_rate"] == 8000
    assert f"receptive field {tiny['receptive_field']} samples" in text.output


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = wavenet.load_config("tiny")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny") / "model.pt"
    save_checkpoint(path, config=config, model=wavenet.WaveNet(config.model).state_dict(), step=7)
    return path


def test_generate_json_is_one_object_on_stdout(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "clip.wav"
    result = CliRunner().invoke(
        main, ["generate", str(tiny), "--out", str(out), "--samples", "300", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # the seed line and the progress bar: on stderr
    assert report["files"] == [str(out)] and report["samples"] == 300
    assert f"pass --seed {report['seed']}" in result.stderr
    assert sf.info(out).frames == 300
    again = CliRunner().invoke(
        main,
        ["generate", str(tiny), "--out", str(tmp_path / "b.wav"), "--samples", "300"]
        + ["--seed", str(report["seed"])],
    )
    assert np.array_equal(sf.read(out)[0], sf.read(tmp_path / "b.wav")[0]), again.output


def test_export_json(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    result = CliRunner().invoke(main, ["export", str(tiny), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["source"] == str(tiny) and report["dtype"] == "float32"
    assert set(report["files"]) == {p.name for p in out.iterdir()}
    assert report["bytes"] == sum(report["files"].values())


# -- plot refuses to overwrite ------------------------------------------------------------


def test_plot_refuses_an_existing_picture_without_force(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1, "train_bits": 7.9}\n')
    picture = tmp_path / "curves.svg"
    picture.write_text("mine")
    refused = CliRunner().invoke(main, ["plot", str(run), "--out", str(picture)])
    assert refused.exit_code == 1 and picture.read_text() == "mine"
    assert refused.stderr.strip() == f"Error: {picture} exists; pass --force to overwrite"
    forced = CliRunner().invoke(main, ["plot", str(run), "--out", str(picture), "--force", "-v"])
    assert forced.exit_code == 0, forced.output
    assert picture.read_text().lstrip().startswith("<?xml")


def test_train_steps_are_checked_once_by_the_library(tmp_path: Path) -> None:
    """The CLI repeated train()'s check of --steps; the message is the same, from one place."""
    result = CliRunner().invoke(
        main,
        ["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--steps", "0"]
        + ["--config", "tiny"],
    )
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: --steps must be >= 1, got 0"
    assert not (tmp_path / "r").exists()

"""One error family: every library error is a WavenetError that keeps its old parent,
and every command turns one into a single line and exit status 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import wavenet
from wavenet.config import ConfigError
from wavenet.data.audio import AudioDecodeError, DataError
from wavenet.data.conditioning import (
    ConditioningError,
    check_mel,
    mel_input,
    read_mel_file,
    speaker_ids,
)
from wavenet.errors import WavenetError
from wavenet.eval.plots import PlotError
from wavenet.io.checkpoint import CheckpointError
from wavenet.train.loop import TrainError
from wavenet_cli.main import main


@pytest.mark.parametrize(
    "cls,parent",
    [
        (ConfigError, ValueError),
        (CheckpointError, ValueError),
        (TrainError, RuntimeError),
        (PlotError, RuntimeError),
        (DataError, Exception),
        (AudioDecodeError, DataError),
        (ConditioningError, ValueError),
    ],
)
def test_every_error_is_a_wavenet_error_and_keeps_its_parent(cls: type, parent: type) -> None:
    assert issubclass(cls, WavenetError) and issubclass(cls, parent)
    assert wavenet.WavenetError is WavenetError and "WavenetError" in wavenet.__all__


def test_every_exception_class_is_defined_in_errors() -> None:
    """One family in one place: wavenet/errors.py defines every exception class of the
    library; other modules only re-import them (the names keep working from there)."""
    import ast

    package = Path(wavenet.__file__).parent
    elsewhere = []
    for path in sorted(package.rglob("*.py")):
        if path == package / "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and (
                node.name.endswith(("Error", "Exception"))
                or any(ast.unparse(b).endswith(("Error", "Exception")) for b in node.bases)
            ):
                elsewhere.append(f"{path.relative_to(package)}: {node.name}")
    assert not elsewhere, "exception classes outside wavenet/errors.py:\n" + "\n".join(elsewhere)
    import wavenet.errors as errors

    family = [v for v in vars(errors).values() if isinstance(v, type)]
    family = [c for c in family if issubclass(c, BaseException)]
    assert len(family) >= 13 and all(issubclass(c, WavenetError) for c in family)


@pytest.mark.parametrize(
    "module,name,parent",
    [
        ("wavenet.io.export", "ExportError", ValueError),
        ("wavenet.util.dependencies", "DependencyError", ImportError),
        ("wavenet.train.runlock", "RunLockedError", RuntimeError),
        ("wavenet.data.prepare", "DataError", Exception),
        ("wavenet.data.audio", "AudioDecodeError", Exception),
    ],
)
def test_errors_stay_importable_where_they_are_raised(module: str, name: str, parent: type) -> None:
    import importlib

    import wavenet.errors as errors

    cls = getattr(importlib.import_module(module), name)
    assert cls is getattr(errors, name) and issubclass(cls, WavenetError)
    assert issubclass(cls, parent)


def assert_one_line(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.exception is not None
    # Progress lines may go to stdout first; stderr holds the error and nothing else.
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert result.output.strip().splitlines()[-1] == lines[0]
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--data", "D", "--out", "R", "--config", "tiny", "--steps", "1"],
        ["eval", "R", "--data", "D"],
        ["info", "R"],
        ["generate", "R", "--out", "O.wav", "--samples", "4"],
        ["plot", "R"],
        ["demo", "--out", "R", "--minutes", "0.01", "--seconds", "0.01"],
    ],
)
@pytest.mark.parametrize(
    "error",
    [
        ConfigError,
        CheckpointError,
        TrainError,
        DataError,
        PlotError,
        ConditioningError,
        WavenetError,
    ],
)
def test_each_command_turns_a_library_error_into_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], error: type
) -> None:
    """Whatever the library raises deep inside a command, the user sees one line."""

    def fail(*args, **kwargs):
        raise error("something precise went wrong\nsecond line that stays hidden")

    # The first library call each command makes, wherever it is imported from.
    import wavenet.config
    import wavenet.eval.plots
    import wavenet.io.checkpoint

    monkeypatch.setattr(wavenet.config, "load_config", fail)
    monkeypatch.setattr(wavenet.io.checkpoint, "load_model", fail)
    monkeypatch.setattr(wavenet.io.checkpoint, "resolve_checkpoint", fail)
    monkeypatch.setattr(wavenet.eval.plots, "read_metrics", fail)
    paths = {
        "D": str(tmp_path / "data"),
        "R": str(tmp_path / "run"),
        "O.wav": str(tmp_path / "o.wav"),
    }
    result = CliRunner().invoke(main, [paths.get(a, a) for a in command])
    assert_one_line(result, "something precise went wrong")


def test_demo_training_error_is_one_line(tmp_path: Path) -> None:
    """It leaked a traceback: train() ran outside any error handling in `demo`."""
    config = tmp_path / "speakers.toml"
    config.write_text(
        "[model]\nresidual_channels = 4\ngate_channels = 4\nskip_channels = 4\n"
        "layers_per_stack = 2\nstacks = 1\nglobal_classes = 2\n"
    )
    result = CliRunner().invoke(
        main,
        [
            "demo",
            "--out",
            str(tmp_path / "d"),
            "--config",
            str(config),
            "--minutes",
            "0.01",
            "--seconds",
            "0.01",
        ],
    )
    assert_one_line(result, "--speakers-from-folders")


def test_unwritable_user_path_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(
        main, ["demo", "--out", str(blocker / "demo"), "--minutes", "0.01", "--seconds", "0.01"]
    )
    assert_one_line(result, str(blocker))


# -- conditioning inputs, moved from the CLI into wavenet.data.conditioning ----------------

VOCODER = [
    "model.local_channels=8",
    "model.upsample_scales=4,4",
    "mel.n_mels=8",
    "mel.hop_length=16",
    "mel.n_fft=64",
    "mel.win_length=64",
]


def test_speaker_ids() -> None:
    plain = wavenet.load_config("tiny")
    assert speaker_ids(plain, None, None, 3) is None
    with pytest.raises(ConditioningError, match="not trained with speakers"):
        speaker_ids(plain, None, "alto", 1)
    config = wavenet.load_config("tiny", ["model.global_classes=2"])
    named = speaker_ids(config, ["high", "low"], "low", 3)
    assert named is not None and named.tolist() == [1, 1, 1]
    unnamed = speaker_ids(config, None, "0", 2)
    assert unnamed is not None and unnamed.tolist() == [0, 0]  # names default to ids
    with pytest.raises(ConditioningError, match="needs --speaker; known: high, low"):
        speaker_ids(config, ["high", "low"], None, 1)
    with pytest.raises(ConditioningError, match="unknown speaker 'alto'"):
        speaker_ids(config, ["high", "low"], "alto", 1)


def test_mel_input_from_files(tmp_path: Path) -> None:
    import soundfile as sf

    config = wavenet.load_config("tiny", VOCODER)
    assert mel_input(wavenet.load_config("tiny")) is None
    with pytest.raises(ConditioningError, match="not a vocoder"):
        mel_input(wavenet.load_config("tiny"), mel_file=tmp_path / "x.npy")
    with pytest.raises(ConditioningError, match="give --mel-from AUDIO or --mel FILE"):
        mel_input(config)
    audio = tmp_path / "a.wav"
    sf.write(audio, 0.3 * np.sin(np.arange(800) / 5.0), 8000)
    from_audio = mel_input(config, audio=audio, batch_size=2)
    assert from_audio is not None
    assert from_audio.shape == (2, 8, 800 // 16) and from_audio.dtype == torch.float32
    np.save(tmp_path / "m.npy", from_audio[0].numpy())
    torch.save(from_audio[0].clone(), tmp_path / "m.pt")
    for name in ("m.npy", "m.pt"):
        torch.testing.assert_close(
            mel_input(config, mel_file=tmp_path / name, batch_size=2), from_audio
        )
    (tmp_path / "bad.npy").write_bytes(b"garbage")
    with pytest.raises(ConditioningError, match=r"bad\.npy is not a \.npy array file"):
        read_mel_file(tmp_path / "bad.npy")
    torch.save({"not": "a tensor"}, tmp_path / "dict.pt")
    with pytest.raises(ConditioningError, match="holds no tensor"):
        read_mel_file(tmp_path / "dict.pt")
    with pytest.raises(AudioDecodeError):
        mel_input(config, audio=tmp_path / "bad.npy")


@pytest.mark.parametrize(
    "mel,match",
    [
        (torch.ones(8, 10, dtype=torch.complex64), "must be real"),
        (torch.full((8, 10), float("nan")), "80 NaN or infinite value"),
        (torch.tensor([[float("inf")] + [0.0] * 9] * 8), "8 NaN or infinite value"),
        (torch.ones(7, 10), "n_mels=8"),
        (torch.ones(3, 8, 10), r"\(3, 8, 10\)"),
        (torch.ones(8, 0), "no frames"),
        (torch.ones(8, 10, dtype=torch.bool), "must hold numbers"),
    ],
)
def test_check_mel_refuses(mel: torch.Tensor, match: str) -> None:
    config = wavenet.load_config("tiny", VOCODER)
    with pytest.raises(ConditioningError, match=match):
        check_mel(mel, config, batch_size=2)


def test_check_mel_repeats_one_mel_for_the_batch() -> None:
    config = wavenet.load_config("tiny", VOCODER)
    mel = torch.arange(80, dtype=torch.int32).reshape(8, 10)
    out = check_mel(mel, config, batch_size=3)
    assert out.shape == (3, 8, 10) and out.dtype == torch.float32
    assert torch.equal(out[2], mel.float())

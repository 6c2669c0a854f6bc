"""The README stays true: every Python example runs (doctest-style, each ```python block
as it is, in a temporary folder that holds the runs and files the examples name), every
dotted `wavenet.` name it mentions exists, its commands exist with those options."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import click
import numpy as np
import pytest
import soundfile as sf

import wavenet
from wavenet.io.checkpoint import save_checkpoint
from wavenet_cli.main import main

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def fenced_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


PYTHON = fenced_blocks("python")


def _line_of(block: str) -> int:
    """The README line number of a block's first line, for tracebacks."""
    return README[: README.index(block)].count("\n")


@pytest.fixture
def readme_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What the examples read, made small: runs/piano (a tiny model), runs/voc (a tiny
    vocoder) and utterance.wav (a quarter of a second at 8 kHz)."""
    monkeypatch.chdir(tmp_path)
    for run, overrides in (
        ("piano", []),
        ("voc", ["model.local_channels=80", "model.upsample_scales=16,16"]),
    ):
        config = wavenet.load_config("tiny", overrides)
        model = wavenet.WaveNet(config.model)
        save_checkpoint(
            tmp_path / "runs" / run / "checkpoints" / "best.pt",
            config=config,
            model=model.state_dict(),
            step=100,
        )
    t = np.arange(2000) / 8000
    sf.write(tmp_path / "utterance.wav", 0.3 * np.sin(2 * np.pi * 220 * t), 8000)
    return tmp_path


def test_there_are_python_examples() -> None:
    assert len(PYTHON) >= 3


@pytest.mark.parametrize("index", range(len(PYTHON)))
def test_python_example_runs(index: int, readme_folder: Path) -> None:
    block = PYTHON[index]
    namespace: dict = {"__name__": "__readme__"}
    # Blank lines in front keep the README's line numbers in a traceback.
    exec(compile("\n" * _line_of(block) + block, "README.md", "exec"), namespace)
    if "CausalConv1d" in block:  # the first example: train a step, sample 0.1 s
        assert namespace["generated"].shape == (1, 800)
        assert float(namespace["audio"].abs().max()) <= 1.0
    if "audio" in namespace and hasattr(namespace["audio"], "abs"):
        assert float(namespace["audio"].abs().max()) <= 1.0


def test_every_dotted_name_exists() -> None:
    """`wavenet.coding.pcm16_samples` and the like name something importable (the README
    named `wavenet.checkpoint...`, which `import wavenet` never had)."""
    names = set(re.findall(r"`(wavenet(?:\.[A-Za-z_]\w*)+)", README))
    assert names
    for name in sorted(names):
        parts = name.split(".")
        obj: object = importlib.import_module(parts[0])
        for i, part in enumerate(parts[1:], start=1):
            if not hasattr(obj, part):  # a subpackage not imported yet
                importlib.import_module(".".join(parts[: i + 1]))
            assert hasattr(obj, part), f"README names {name}, which does not exist"
            obj = getattr(obj, part)


def test_every_command_is_documented() -> None:
    for name in main.list_commands(click.Context(main)):
        assert f"`wavenet {name}`" in README, f"README does not describe `wavenet {name}`"


def test_examples_use_real_options() -> None:
    lines = [
        line
        for block in fenced_blocks("bash")
        for line in block.splitlines()
        if line.startswith("wavenet ") or "-m wavenet_cli" in line
    ]
    assert lines
    for line in lines:
        words = (
            line.split("wavenet_cli", 1)[-1].split() if "wavenet_cli" in line else line.split()[1:]
        )
        name = words[0]
        command = main.get_command(click.Context(main), name)
        assert command is not None, f"README example uses unknown command {name!r}"
        options = {opt for param in command.params for opt in param.opts}
        for word in words[1:]:
            if word.startswith("--"):
                assert word.split("=")[0] in options, f"{name} has no option {word} ({line})"

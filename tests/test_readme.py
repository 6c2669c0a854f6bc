"""The README stays true: its Python example runs, its commands exist with those options."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from wavenet_cli.main import main

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def fenced_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (example,) = [b for b in fenced_blocks("python") if "wavenet.generate" in b]
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["generated"].shape == (1, 800)
    assert float(namespace["audio"].abs().max()) <= 1.0


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

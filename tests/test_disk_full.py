"""A full disk while training: at the run's first checkpoint (nothing to resume from, and
the message says so) and while a training sample is written (one warning, the run goes
on). The disk is simulated by writes that raise OSError(ENOSPC)."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import write_chord

import wavenet.eval.plots
import wavenet.io.checkpoint
import wavenet.util.files
from wavenet.errors import TrainError
from wavenet.train.checkpoints import Checkpoints
from wavenet_cli.main import main

FAST = [
    "train.log_every=1",
    "train.val_every=2",
    "train.checkpoint_every=2",
    "data.target_length=128",
    "train.warmup_steps=1",
    "train.batch_size=2",
]
FULL = os.strerror(errno.ENOSPC)


class FullDisk:
    """A file object on a full disk: every write fails; everything else is the file's."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, FULL)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


def fill_disk(monkeypatch: pytest.MonkeyPatch, *modules: Any) -> None:
    """Every atomic write made through `modules` meets a full disk."""
    real = wavenet.util.files.atomic_write_bytes
    for module in modules:
        monkeypatch.setattr(
            module,
            "atomic_write_bytes",
            lambda path, write: real(path, lambda h: write(FullDisk(h))),
        )


@pytest.fixture(scope="module")
def chords(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_chord(tmp_path_factory.mktemp("chords"), files=2, seconds=0.5)


def train(data: Path, run: Path, steps: int, *sets: str):
    args = [
        "train",
        "--data",
        str(data),
        "--out",
        str(run),
        "--steps",
        str(steps),
        "--cache-dir",
        str(data.parent / "cache"),
        "--config",
        "tiny",
    ]
    args += [a for item in (*FAST, *sets) for a in ("--set", item)]
    return CliRunner().invoke(main, args)


def test_full_disk_at_the_first_checkpoint_says_nothing_was_saved(
    chords: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said "the one saved before is kept ... continue with --resume" where no
    checkpoint had been saved, and --resume then refused: nothing to resume."""
    fill_disk(monkeypatch, wavenet.io.checkpoint)
    run = tmp_path / "run"
    result = train(chords, run, 2)
    assert result.exit_code == 1 and "Traceback" not in result.output
    line = result.stderr.strip().splitlines()[-1]
    assert line == (
        f"Error: cannot write checkpoint {run / 'checkpoints' / 'best.pt'} at step "
        f"2: {FULL}; no checkpoint was saved before this one, so the 2 step(s) "
        f"trained are lost: make room, then start the run again (without --resume)"
    )
    assert not list((run / "checkpoints").iterdir())
    monkeypatch.undo()
    again = train(chords, run, 2)  # the same command now works
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize("before", [(), ("best.pt",), ("last.pt",), ("last.pt", "best.pt")])
@pytest.mark.parametrize("name", ["last.pt", "best.pt"])
def test_full_disk_message_names_what_is_kept(
    tmp_path: Path, before: tuple[str, ...], name: str
) -> None:
    (tmp_path / "checkpoints").mkdir()
    for kept in before:
        (tmp_path / "checkpoints" / kept).write_bytes(b"an earlier checkpoint")

    def full(path: Path) -> None:
        raise OSError(errno.ENOSPC, FULL)

    checkpoints = Checkpoints(tmp_path, lambda: 0.0)
    with pytest.raises(TrainError) as caught:
        checkpoints.save(SimpleNamespace(step=7, save=full), name)  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith(
        f"cannot write checkpoint {tmp_path / 'checkpoints' / name} at step 7: {FULL}; "
    )
    assert "\n" not in message
    last = tmp_path / "checkpoints" / "last.pt"
    best = tmp_path / "checkpoints" / "best.pt"
    if "last.pt" in before:  # --resume continues from it
        assert message.endswith(
            f"{last} (saved before) is kept: make room, then continue with --resume"
        )
    elif "best.pt" in before:  # --resume refuses until best.pt is copied to last.pt
        assert message.endswith(
            f"no {last.name} was saved before, so --resume cannot "
            f"continue; {best} is kept: make room, then copy it to {last} "
            f"and --resume from it, or start again in another --out"
        )
    else:
        assert message.endswith(
            "no checkpoint was saved before this one, so the 7 step(s) "
            "trained are lost: make room, then start the run again "
            "(without --resume)"
        )


def test_full_disk_while_writing_a_sample_is_one_warning(
    chords: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """soundfile wrote the sample through cffi callbacks: a failed write printed
    "Exception ignored from cffi callback" and a traceback for each of its writes, then
    failed with an AssertionError. Now the sample is encoded in memory and its failed
    write is one warning line; the run goes on and checkpoints."""
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    fill_disk(monkeypatch, wavenet.util.files, wavenet.eval.plots)
    run = tmp_path / "run"
    result = train(chords, run, 2, "train.sample_every=1", "train.sample_seconds=0.05")
    assert result.exit_code == 0, result.output
    captured = capfd.readouterr()
    everything = result.output + captured.out + captured.err
    assert "Exception ignored" not in everything and "Traceback" not in everything
    assert not unraisable
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: no sample at step {step}: {FULL}" for step in (1, 2)]
    assert (run / "checkpoints" / "last.pt").is_file()
    assert not list((run / "samples").iterdir())  # no partial or temporary file left

"""Interrupted training: Ctrl-C saves and exits; kill -9 never leaves a broken checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from helpers import FAST, write_chord

from wavenet.io.checkpoint import load_checkpoint
from wavenet_cli.main import main


@pytest.fixture(scope="module")
def chord_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_chord(tmp_path_factory.mktemp("chord"))


def start(data: Path, run: Path, cache: Path, *extra: str) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "wavenet_cli",
        "train",
        "--data",
        str(data),
        "--out",
        str(run),
        "--steps",
        "100000",
        "--cache-dir",
        str(cache),
        *extra,
    ]
    if "--resume" not in extra:
        command += ["--config", "tiny"]
        for item in FAST + ["train.checkpoint_every=1"]:
            command += ["--set", item]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def wait_for_steps(run: Path, steps: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    metrics = run / "metrics.jsonl"
    while time.monotonic() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= steps:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"no {steps} steps within {timeout} s")


def test_ctrl_c_saves_and_exits(chord_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    process = start(chord_dir, run, tmp_path / "cache", "--set", "train.checkpoint_every=1000")
    wait_for_steps(run, 5, process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "--resume" in err
    saved = load_checkpoint(run / "checkpoints" / "last.pt")["step"]
    lines = (run / "metrics.jsonl").read_text().splitlines()
    logged = [json.loads(line)["step"] for line in lines]
    assert saved == logged[-1] >= 5


def test_kill_9_never_leaves_an_unreadable_checkpoint(chord_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cache = tmp_path / "cache"
    process = start(chord_dir, run, cache)
    steps_seen = 3
    for round_ in range(4):
        wait_for_steps(run, steps_seen, process)
        time.sleep(0.05 * round_)  # land at different moments of the step
        process.send_signal(signal.SIGKILL)
        process.wait()
        payload = load_checkpoint(run / "checkpoints" / "last.pt")
        lines = (run / "metrics.jsonl").read_text().splitlines()
        logged = [json.loads(line)["step"] for line in lines]
        # Checkpoints are written every step: at most the step in flight is lost.
        assert payload["step"] >= logged[-1] - 1
        steps_seen = payload["step"] + 3
        process = start(chord_dir, run, cache, "--resume")
    process.send_signal(signal.SIGKILL)
    process.wait()


# Runs the CLI with decoding stopped (every decode, whole or streamed, reads its blocks
# through _MonoBlocks): it touches $MARK and sleeps, so that a Ctrl-C lands while the data
# are being prepared, before any training step.
STALLED_RESAMPLING = """
import os, pathlib, sys, time
import wavenet.data.audio

def stalled_blocks(self):
    pathlib.Path(os.environ["MARK"]).touch()
    time.sleep(60)
    yield from ()

wavenet.data.audio._MonoBlocks.__iter__ = stalled_blocks
from wavenet_cli.main import main
main(sys.argv[1:], prog_name="wavenet")
"""


def test_ctrl_c_while_the_data_are_prepared_is_one_line_and_130(tmp_path: Path) -> None:
    """A Ctrl-C before training started ended in click's "Aborted!" and status 1; the CLI's
    status for an interrupt is 130, as for a training run stopped by Ctrl-C."""
    data = tmp_path / "data"
    data.mkdir()
    rate = 16000  # the tiny preset's 8 kHz: every file is resampled
    t = np.arange(rate) / rate
    sf.write(data / "a.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)
    run, mark = tmp_path / "run", tmp_path / "resampling"
    command = [
        sys.executable,
        "-c",
        STALLED_RESAMPLING,
        "train",
        "--data",
        str(data),
        "--out",
        str(run),
        "--config",
        "tiny",
        "--steps",
        "5",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, MARK=str(mark), OMP_NUM_THREADS="1"),
    )
    deadline = time.monotonic() + 120
    while not mark.exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.strip().splitlines() == ["interrupted"], err
    assert not (run / "checkpoints").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--data", "D", "--out", "R", "--config", "tiny", "--steps", "1"],
        ["eval", "R", "--data", "D"],
        ["info", "R"],
        ["generate", "R", "--out", "O.wav", "--samples", "4"],
        ["mel", "D", "--run", "R", "--out-dir", "O"],
        ["plot", "R"],
        ["demo", "--out", "R", "--minutes", "0.01", "--seconds", "0.01"],
    ],
)
def test_every_command_stopped_by_ctrl_c_is_one_line_and_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    # The first library call each command makes, wherever it is imported from.
    import wavenet.config
    import wavenet.eval.plots
    import wavenet.io.checkpoint

    monkeypatch.setattr(wavenet.config, "load_config", interrupt)
    monkeypatch.setattr(wavenet.io.checkpoint, "load_model", interrupt)
    monkeypatch.setattr(wavenet.io.checkpoint, "resolve_checkpoint", interrupt)
    monkeypatch.setattr(wavenet.eval.plots, "read_metrics", interrupt)
    paths = {
        "D": tmp_path / "data",
        "R": tmp_path / "run",
        "O.wav": tmp_path / "o.wav",
        "O": tmp_path / "out",
    }
    result = CliRunner().invoke(main, [str(paths.get(a, a)) for a in command])
    assert result.exit_code == 130, result.output
    assert result.stderr.strip().splitlines() == ["interrupted"]


@pytest.mark.parametrize(
    "signum, status, said",
    [
        (signal.SIGINT, 130, "interrupted at step"),
        (signal.SIGTERM, 143, "stopped by SIGTERM at step"),
    ],
)
def test_ctrl_c_in_the_demo_training_stops_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int, status: int, said: str
) -> None:
    """The first Ctrl-C makes training save a checkpoint and return; the demo then went on
    to generate and draw. It stops there now, with status 130 (a SIGTERM: 143; it said
    'interrupted' and 130 for both)."""
    import wavenet_cli.train

    update = wavenet_cli.train.ProgressBar.update
    sent: list[object] = []

    def update_then_ctrl_c(self, report) -> None:
        update(self, report)
        if not sent:  # one Ctrl-C, as a user would press it, after the first step
            sent.append(report)
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(wavenet_cli.train.ProgressBar, "update", update_then_ctrl_c)
    out = tmp_path / "demo"
    result = CliRunner().invoke(
        main, ["demo", "--out", str(out), "--minutes", "0.5", "--seconds", "0.1"]
    )
    assert result.exit_code == status, result.output
    assert said in result.stderr
    assert load_checkpoint(out / "run" / "checkpoints" / "last.pt")["step"] >= 1
    assert not (out / "generated.wav").exists()
    assert not (out / "spectrograms.png").exists()

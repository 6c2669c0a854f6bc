"""Interrupted training: Ctrl-C saves and exits; kill -9 never leaves a broken checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wavenet.checkpoint import load_checkpoint

from helpers import FAST, write_chord


@pytest.fixture(scope="module")
def chord_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_chord(tmp_path_factory.mktemp("chord"))


def start(data: Path, run: Path, cache: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "wavenet_cli", "train", "--data", str(data), "--out",
               str(run), "--steps", "100000", "--cache-dir", str(cache), *extra]
    if "--resume" not in extra:
        command += ["--config", "tiny"]
        for item in FAST + ["train.checkpoint_every=1"]:
            command += ["--set", item]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


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
    logged = [json.loads(l)["step"] for l in (run / "metrics.jsonl").read_text().splitlines()]
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
        logged = [json.loads(l)["step"] for l in (run / "metrics.jsonl").read_text().splitlines()]
        # Checkpoints are written every step: at most the step in flight is lost.
        assert payload["step"] >= logged[-1] - 1
        steps_seen = payload["step"] + 3
        process = start(chord_dir, run, cache, "--resume")
    process.send_signal(signal.SIGKILL)
    process.wait()

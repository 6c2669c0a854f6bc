"""Data-parallel training under torchrun on CPU (gloo): equivalences that must hold."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import FAST, write_chord

from wavenet.io.checkpoint import load_checkpoint

STEPS = 6


@pytest.fixture(scope="module")
def chord_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_chord(tmp_path_factory.mktemp("chord"))


def launch(
    nproc: int, data: Path, out: Path, cache: Path, steps: int, *sets: str, resume: bool = False
) -> subprocess.CompletedProcess:
    command = (
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "-m",
            "wavenet_cli",
        ]
        if nproc > 1
        else [sys.executable, "-m", "wavenet_cli"]
    )
    command += [
        "train",
        "--data",
        str(data),
        "--out",
        str(out),
        "--steps",
        str(steps),
        "--cache-dir",
        str(cache),
        "--device",
        "cpu",
    ]
    if resume:
        command.append("--resume")
    else:
        command += ["--config", "tiny"]
        sets = tuple(FAST) + sets
    for item in sets:
        command += ["--set", item]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def parameters(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoints" / "last.pt")["model"]


def assert_same_parameters(a: Path, b: Path) -> None:
    pa, pb = parameters(a), parameters(b)
    for key in pa:
        torch.testing.assert_close(pa[key], pb[key], rtol=1e-4, atol=1e-5, msg=key)


def test_two_processes_equal_one_with_double_batch(chord_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    result = launch(2, chord_dir, tmp_path / "ddp", cache, STEPS, "train.batch_size=4")
    assert "trained on 2 processes" in result.stdout
    launch(1, chord_dir, tmp_path / "single", cache, STEPS, "train.batch_size=8")
    assert_same_parameters(tmp_path / "ddp", tmp_path / "single")
    # Only rank 0 writes the log: one line per step, no duplicates.
    lines = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == STEPS


def test_two_process_run_resumes_on_one(chord_dir: Path, tmp_path: Path) -> None:
    """Stop a 2 x 4 run half-way, resume it on one process with batch 8 (the same global
    batch): the end state equals a run that went 1 x 8 all the way."""
    cache = tmp_path / "cache"
    moved = tmp_path / "moved"
    launch(2, chord_dir, moved, cache, STEPS // 2, "train.batch_size=4")
    assert load_checkpoint(moved / "checkpoints" / "last.pt")["extra"]["world_size"] == 2
    launch(1, chord_dir, moved, cache, STEPS, "train.batch_size=8", resume=True)
    launch(1, chord_dir, tmp_path / "single", cache, STEPS, "train.batch_size=8")
    assert load_checkpoint(moved / "checkpoints" / "last.pt")["step"] == STEPS
    assert_same_parameters(moved, tmp_path / "single")


def test_accumulation_equals_a_bigger_batch(chord_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    launch(
        1, chord_dir, tmp_path / "accum", cache, STEPS, "train.batch_size=4", "train.grad_accum=2"
    )
    launch(1, chord_dir, tmp_path / "big", cache, STEPS, "train.batch_size=8")
    assert_same_parameters(tmp_path / "accum", tmp_path / "big")

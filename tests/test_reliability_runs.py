"""Issue 17, the run-folder cases: one trainer per folder (2), checksummed cache entries
(3), a torn metrics line (4), broken checkpoints (5), a full disk (6), resuming with the
run's own --config (10), and a fuzz test of malformed checkpoints against the CLI."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import write_chord
from hypothesis import given
from hypothesis import strategies as st
from test_reliability import FUZZ, JSON_LIKE, one_line_error

import wavenet
import wavenet.io.checkpoint
from wavenet.data.cache import CACHE_VERSIONS, ArrayCache
from wavenet.data.prepare import load_encoded
from wavenet.io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, write_payload
from wavenet.train.metrics import truncate_metrics
from wavenet.train.runlock import RunLockedError, run_lock
from wavenet_cli.main import main

FAST = [
    "train.log_every=1",
    "train.val_every=2",
    "train.checkpoint_every=2",
    "data.target_length=128",
    "train.warmup_steps=1",
    "train.batch_size=2",
]


@pytest.fixture(scope="module")
def chords(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_chord(tmp_path_factory.mktemp("chords"), files=2, seconds=0.5)


def train(data: Path, run: Path, steps: int, *extra: str, config: bool = True):
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
    ]
    if config:
        args += ["--config", "tiny", *(a for item in FAST for a in ("--set", item))]
    return CliRunner().invoke(main, [*args, *extra])


@pytest.fixture(scope="module")
def run2(chords: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run checkpointed at step 2 (copied by the tests that change it)."""
    run = tmp_path_factory.mktemp("run2") / "run"
    result = train(chords, run, 2)
    assert result.exit_code == 0, result.output
    return run


def copy_run(run: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(run, to)
    return to


# -- case 2: one trainer per run folder ---------------------------------------------


def test_second_trainer_on_a_locked_folder_exits_at_once(chords: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    with run_lock(run):
        line = one_line_error(train(chords, run, 2))
        assert f"{run} is in use by another training run (pid {os.getpid()} on " in line
        assert "choose another --out" in line
        with pytest.raises(RunLockedError):
            with run_lock(run):
                pass
    assert not (run / "checkpoints").exists()
    with run_lock(run):  # released on leaving the block
        pass


def test_a_killed_holder_leaves_no_stale_lock(chords: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from wavenet.train.runlock import run_lock\n"
            f"with run_lock({str(run)!r}):\n print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=f"pid {holder.pid} on "):
            with run_lock(run):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    result = train(chords, run, 1)
    assert result.exit_code == 0, result.output


# -- case 3: cache entries carry a checksum -----------------------------------------


def corrupt(npy: Path, how: str) -> None:
    array = np.load(npy)
    if how == "garbage":  # a valid header, other data
        np.save(npy, np.random.default_rng(0).integers(0, 256, array.shape).astype(array.dtype))
    elif how == "dtype":
        np.save(npy, np.full(array.shape, 1e6))
    else:
        npy.write_bytes(b"")


@pytest.mark.parametrize("how", ["garbage", "dtype", "empty"])
def test_a_damaged_code_entry_is_reported_once_and_decoded_again(
    chords: Path, tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    first = [
        np.array(f.codes) for f in load_encoded(chords, sample_rate=8000, cache_dir=cache).files
    ]
    npy = sorted((cache / f"codes-v{CACHE_VERSIONS['codes']}").glob("*.npy"))[0]
    corrupt(npy, how)
    with caplog.at_level(logging.WARNING, logger="wavenet"):
        again = load_encoded(chords, sample_rate=8000, cache_dir=cache)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert f"cache entry {npy} is damaged" in warnings[0] and "decoding" in warnings[0]
    assert all(np.array_equal(a, b.codes) for a, b in zip(first, again.files))
    caplog.clear()
    load_encoded(chords, sample_rate=8000, cache_dir=cache)  # stored afresh: quiet
    assert not caplog.records


def test_a_damaged_mel_entry_is_computed_again(tmp_path: Path, caplog) -> None:
    cache = ArrayCache(tmp_path, "mel")
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    cache.load_or_compute({"k": 1}, lambda: array)
    corrupt(cache.path({"k": 1}), "garbage")
    with caplog.at_level(logging.WARNING, logger="wavenet"):
        assert np.array_equal(cache.load_or_compute({"k": 1}, lambda: array), array)
    assert "is damaged" in caplog.text and "computing it again" in caplog.text
    assert json.loads(cache.path({"k": 1}).with_suffix(".json").read_text())["sha256"]


# -- case 4: a torn last metrics line ------------------------------------------------


def test_a_torn_metrics_line_is_dropped_with_a_warning(tmp_path: Path, caplog) -> None:
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"step": 1}\n{"step": 2}\n\n{"step": 3}\n{"step": 4, "train_bi')
    with caplog.at_level(logging.WARNING, logger="wavenet"):
        truncate_metrics(log, 2)
    assert log.read_text() == '{"step": 1}\n{"step": 2}\n'
    assert "dropped 1 unreadable line(s)" in caplog.text


# -- case 5: broken checkpoints ------------------------------------------------------


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = wavenet.load_config("tiny")
    path = tmp_path_factory.mktemp("good") / "good.pt"
    save_checkpoint(path, config=config, model=wavenet.WaveNet(config.model).state_dict(), step=3)
    return path


def payload_of(good: Path) -> dict:
    return load_checkpoint(good)


def flipped(raw: bytes) -> bytes:
    data = bytearray(raw)
    for i in range(len(data) // 2, len(data) // 2 + 8):
        data[i] ^= 0x55
    return bytes(data)


def nan_weights(p: dict) -> dict:
    p["model"] = {
        k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
        for k, v in p["model"].items()
    }
    return p


BREAKS = {
    "empty": (lambda raw: b"", "is empty (0 bytes)"),
    "random": (lambda raw: np.random.default_rng(0).bytes(5000), "it is damaged, cut short"),
    "flipped": (flipped, "do not match their checksum"),
    "truncated": (lambda raw: raw[: len(raw) * 2 // 3], "it is damaged, cut short"),
}
PAYLOAD_BREAKS = {
    "no model": (lambda p: {k: v for k, v in p.items() if k != "model"}, "has no 'model'"),
    "misfit": (
        lambda p: {
            **p,
            "config": {**p["config"], "model": {**p["config"]["model"], "residual_channels": 12}},
        },
        "weights do not fit the config",
    ),
    "step": (lambda p: {**p, "step": "3"}, "'step' is not an int >= 0"),
    "config": (lambda p: {**p, "config": {"model": 3}}, "holds an invalid config"),
}


def write_broken(good: Path, path: Path, name: str) -> str:
    if name in BREAKS:
        damage, message = BREAKS[name]
        path.write_bytes(damage(good.read_bytes()))
    else:
        change, message = PAYLOAD_BREAKS[name]
        write_payload(path, change(payload_of(good)))
    return message


@pytest.mark.parametrize("name", [*BREAKS, *PAYLOAD_BREAKS])
def test_each_broken_checkpoint_is_one_line(good: Path, tmp_path: Path, name: str) -> None:
    path = tmp_path / "broken.pt"
    message = write_broken(good, path, name)
    with pytest.raises(CheckpointError, match=re.escape(message)) as info:
        load_checkpoint(path)
    text = str(info.value)
    assert "\n" not in text and "weights_only" not in text and "use another checkpoint" in text
    line = one_line_error(
        CliRunner().invoke(
            main, ["generate", str(path), "--out", str(tmp_path / "o.wav"), "--samples", "8"]
        )
    )
    assert message in line


def test_non_finite_weights_are_refused_by_generate_and_eval(
    good: Path, tmp_path: Path, chords: Path
) -> None:
    path = tmp_path / "nan.pt"
    write_payload(path, nan_weights(payload_of(good)))
    assert load_checkpoint(path)["step"] == 3  # readable: `info` still shows it
    for command in (
        ["generate", str(path), "--out", str(tmp_path / "o.wav"), "--samples", "8"],
        ["eval", str(path), "--data", str(chords)],
    ):
        line = one_line_error(CliRunner().invoke(main, command))
        assert "holds NaN or infinite weights" in line and "earlier checkpoint" in line
    assert not (tmp_path / "o.wav").exists()


def test_format_1_checkpoints_still_load(good: Path, tmp_path: Path) -> None:
    payload = {**payload_of(good), "format_version": 1}
    torch.save(payload, tmp_path / "v1.pt")
    assert load_checkpoint(tmp_path / "v1.pt")["step"] == 3
    raw = torch.load(good, weights_only=True)
    assert raw["format_version"] == 2 and len(raw["sha256"]) == 64


@FUZZ
@given(
    cut=st.one_of(st.none(), st.integers(0, 10_000)),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), max_size=4),
    key=st.sampled_from(
        [
            "format",
            "format_version",
            "config",
            "model",
            "ema",
            "step",
            "rng",
            "extra",
            "best_val_bits",
            "optimizer",
        ]
    ),
    value=st.one_of(JSON_LIKE, st.just("delete")),
    payload_level=st.booleans(),
    command=st.sampled_from(["generate", "eval"]),
)
def test_fuzz_checkpoints(
    good: Path,
    chords: Path,
    tmp_path: Path,
    cut,
    flips,
    key,
    value,
    payload_level: bool,
    command: str,
) -> None:
    """Malformed checkpoints (damaged bytes, or a payload with one key changed) are either
    refused in one line with exit 1, or (a harmless change) used."""
    path = tmp_path / "fuzz.pt"
    if payload_level:
        payload = payload_of(good)
        if value == "delete":
            del payload[key]
        else:
            payload[key] = value
        write_payload(path, payload)
    else:
        data = bytearray(good.read_bytes())
        for where, mask in flips:
            data[int(where * len(data))] ^= mask
        path.write_bytes(bytes(data[:cut]))
    args = (
        ["--out", str(tmp_path / "o.wav"), "--samples", "4", "--force"]
        if command == "generate"
        else ["--data", str(chords)]
    )
    result = CliRunner().invoke(main, [command, str(path), *args])
    if result.exit_code != 0:
        one_line_error(result)


# -- case 6: a full disk while checkpointing ----------------------------------------


def test_full_disk_keeps_the_old_checkpoint_in_one_line(
    run2: Path, chords: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = copy_run(run2, tmp_path / "run")
    real = wavenet.io.checkpoint.atomic_write_bytes

    class FullDisk:
        def __init__(self, handle) -> None:
            self.handle = handle

        def write(self, data) -> int:
            self.handle.write(bytes(data)[:100])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(
        wavenet.io.checkpoint,
        "atomic_write_bytes",
        lambda path, write: real(path, lambda h: write(FullDisk(h))),
    )
    line = one_line_error(train(chords, run, 4, "--resume", config=False))
    assert "cannot write checkpoint" in line and "No space left on device" in line
    assert "continue with --resume" in line
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 2
    assert not list((run / "checkpoints").glob(".*.tmp"))


# -- case 10: --resume with the run's own --config ----------------------------------


def test_resume_accepts_the_runs_own_config_and_names_what_differs(
    run2: Path, chords: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = copy_run(run2, tmp_path / "run")
    with (run / "metrics.jsonl").open("a") as log:
        log.write('{"step": 3, "train_b')  # torn by a crash (case 4)
    line = one_line_error(
        train(
            chords,
            run,
            4,
            "--resume",
            "--set",
            "model.residual_channels=12",
            "--set",
            "data.target_length=64",
        )
    )
    assert "model.residual_channels is 16, not 12; data.target_length is 128, not 64" in line
    assert "only train.* fields can change" in line
    line = one_line_error(train(chords, run, 4, "--resume", "--set", "mel.n_mels=40", config=False))
    assert "mel.n_mels is 80, not 40" in line
    import wavenet.util.hardware  # the memory check moved to the start of training (hardware.py)

    monkeypatch.setattr(wavenet.util.hardware, "memory_limit", lambda: 1000)
    assert "more than this process's" in one_line_error(train(chords, run, 4, "--resume"))
    monkeypatch.undo()
    result = train(chords, run, 4, "--resume")  # the command that made it, plus --resume
    assert result.exit_code == 0, result.output
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 4
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_stop_at_a_step_the_run_has_reached_trains_nothing(
    run2: Path, chords: Path, tmp_path: Path
) -> None:
    """--stop-at is checked after a step: a run at step 2 resumed with --stop-at 1 trained
    step 3 and said "stopped at step 3 as asked"; --stop-at 0 trained one step too."""
    run = copy_run(run2, tmp_path / "run")
    before = (run / "checkpoints" / "last.pt").read_bytes()
    result = train(chords, run, 4, "--resume", "--stop-at", "1", config=False)
    assert result.exit_code == 0, result.output
    assert f"{run} is already at step 2 (>= --stop-at 1); nothing to do" in result.output
    assert (run / "checkpoints" / "last.pt").read_bytes() == before
    for value in ("0", "-1"):
        line = one_line_error(train(chords, tmp_path / "new", 4, "--stop-at", value))
        assert line == f"Error: --stop-at must be >= 1, got {value}"
    assert not (tmp_path / "new").exists()
    result = train(chords, run, 4, "--resume", "--stop-at", "3", config=False)
    assert "stopped at step 3 as asked" in result.output
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 3


def test_an_out_that_cannot_be_a_run_folder_is_one_line_and_nothing_is_made(
    chords: Path, tmp_path: Path
) -> None:
    """--out naming a file said only "x.wav: File exists"; a --resume of a mistyped folder
    refused, but the run lock had made the folder (with a train.lock) first."""
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"RIFF")
    for out in (clip, clip / "run"):
        line = one_line_error(train(chords, out, 1))
        assert line == f"Error: --out {out} cannot be a run folder: {clip} is a file"
    typo = tmp_path / "rnu"
    line = one_line_error(train(chords, typo, 1, "--resume", config=False))
    assert line == f"Error: nothing to resume: {typo / 'checkpoints' / 'last.pt'} does not exist"
    assert not typo.exists() and clip.read_bytes() == b"RIFF"


def test_a_run_with_only_best_pt_says_how_to_resume_from_it(
    run2: Path, chords: Path, tmp_path: Path
) -> None:
    """With last.pt gone (deleted, or lost with a disk) and best.pt there, the refusal
    said only that last.pt does not exist."""
    run = copy_run(run2, tmp_path / "run")
    last = run / "checkpoints" / "last.pt"
    last.unlink()
    assert (run / "checkpoints" / "best.pt").is_file()
    line = one_line_error(train(chords, run, 4, "--resume", config=False))
    assert line == (
        f"Error: nothing to resume: {last} does not exist (copy "
        f"{last.with_name('best.pt')} to {last} to resume from the best checkpoint)"
    )


def test_an_edited_config_file_is_named_on_resume(run2: Path, chords: Path, tmp_path: Path) -> None:
    """config.json is a record of the checkpoint's config: an edit of it was silently
    ignored on --resume and overwritten."""
    run = copy_run(run2, tmp_path / "run")
    recorded = json.loads((run / "config.json").read_text())
    edited = {**recorded, "train": {**recorded["train"], "lr": 0.5}}
    (run / "config.json").write_text(json.dumps(edited))
    result = train(chords, run, 3, "--resume", config=False)
    assert result.exit_code == 0, result.output
    assert (
        f"warning: {run / 'config.json'} was changed (train.lr is 0.5 there, 0.01 in the "
        f"run): a run's config comes from its checkpoint"
    ) in result.stderr
    assert "--resume --set section.key=value" in result.stderr
    assert json.loads((run / "config.json").read_text()) == recorded
    result = train(chords, run, 4, "--resume", config=False)
    assert result.exit_code == 0 and "warning" not in result.stderr, result.output

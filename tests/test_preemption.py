"""Preemption: SIGTERM (what SLURM, Kubernetes and other schedulers send before they kill a
job) and SIGHUP stop a run like Ctrl-C: the step finishes, last.pt holds it, one line says
how to resume, and the exit status is 128 + the signal number."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import FAST, write_chord

from wavenet.io.checkpoint import load_checkpoint
from wavenet.train.loop import SignalStop, _stop_signals
from wavenet_cli.main import main


@pytest.fixture(scope="module")
def chord_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_chord(tmp_path_factory.mktemp("chord"))


def start_training(data: Path, run: Path, cache: Path) -> subprocess.Popen:
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
        "--config",
        "tiny",
    ]
    for item in FAST + ["train.checkpoint_every=1000"]:
        command += ["--set", item]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )


def wait_for_first_step(run: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    metrics = run / "metrics.jsonl"
    while not (metrics.exists() and metrics.read_text().strip()):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"no step within {timeout} s"
        time.sleep(0.05)


def test_sigterm_saves_the_step_reached_and_exits_143(chord_dir: Path, tmp_path: Path) -> None:
    """SIGTERM killed the run at once (exit 143, no message): every step since the last
    periodic checkpoint (here none: checkpoint_every 1000) was lost."""
    run, cache = tmp_path / "run dir", tmp_path / "cache"
    process = start_training(chord_dir, run, cache)
    wait_for_first_step(run, process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    saved = load_checkpoint(run / "checkpoints" / "last.pt")["step"]
    logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert saved == logged[-1] >= 1
    (line,) = [line for line in err.splitlines() if "Continue with: " in line]
    assert line.startswith(f"stopped by SIGTERM at step {saved}; checkpoint saved.")
    command = shlex.split(line.split("Continue with: ", 1)[1])
    assert command[:2] == ["wavenet", "train"] and command[-1] == "--resume"
    assert command[command.index("--out") + 1] == str(run)  # a space, quoted
    assert command[command.index("--cache-dir") + 1] == str(cache)
    # The command given resumes the run: one more step, then a stop asked for.
    result = CliRunner().invoke(main, command[1:] + ["--stop-at", str(saved + 1)])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == saved + 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_during_training_is_a_flag_and_a_repeat_does_not_abort(signum: int) -> None:
    """Under torchrun a worker gets SIGTERM twice (from the scheduler and from torchrun):
    the second must not abort the checkpoint the first asked for."""
    with _stop_signals() as stop:
        stop.training = True
        os.kill(os.getpid(), signum)
        os.kill(os.getpid(), signum)
        assert stop() and stop.signum == signum
        with pytest.raises(KeyboardInterrupt):  # a Ctrl-C after it still aborts
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signum) is signal.SIG_DFL


def test_a_stop_signal_before_training_raises_with_its_number() -> None:
    with pytest.raises(SignalStop) as raised, _stop_signals():
        os.kill(os.getpid(), signal.SIGTERM)
    assert raised.value.signum == signal.SIGTERM
    assert isinstance(raised.value, KeyboardInterrupt)  # every `except KeyboardInterrupt`


def test_sigterm_before_the_first_step_is_one_line_and_143(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wavenet.train.loop

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("the signal did not stop the set-up")

    monkeypatch.setattr(wavenet.train.loop, "prepare_data", terminated)
    data = write_chord(tmp_path / "data", files=1)
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "run"),
            "--config",
            "tiny",
            "--steps",
            "2",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert result.exit_code == 128 + signal.SIGTERM, result.output
    assert result.stderr.strip().splitlines() == [
        "stopped by SIGTERM before the first step; nothing to save"
    ]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def worker_pids(parent: int) -> list[int]:
    """The child processes of `parent` (torchrun's workers), from /proc."""
    children = Path(f"/proc/{parent}/task/{parent}/children")
    return [int(pid) for pid in children.read_text().split()]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("target", ["rank 1", "torchrun"])
def test_sigterm_under_torchrun_stops_every_rank_at_the_same_step(
    chord_dir: Path, tmp_path: Path, target: str
) -> None:
    """SIGTERM to one worker (rank 1), or to torchrun (which forwards it to every
    worker): both ranks stop after the same step, rank 0 saves it and names the signal."""
    run = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "wavenet_cli",
        "train",
        "--data",
        str(chord_dir),
        "--out",
        str(run),
        "--steps",
        "100000",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--device",
        "cpu",
        "--config",
        "tiny",
    ]
    for item in FAST + ["train.checkpoint_every=1000", "train.batch_size=2"]:
        command += ["--set", item]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    try:
        wait_for_first_step(run, process)
        if target == "torchrun":
            process.send_signal(signal.SIGTERM)
        else:
            ranks = {}
            for pid in worker_pids(process.pid):
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                ranks[pid] = next(v[5:].decode() for v in environ if v.startswith(b"RANK="))
            (rank_1,) = [pid for pid, rank in ranks.items() if rank == "1"]
            os.kill(rank_1, signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    saved = load_checkpoint(run / "checkpoints" / "last.pt")["step"]
    logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert saved == logged[-1] >= 1, err
    assert f"stopped by SIGTERM at step {saved}; checkpoint saved." in err, err


def test_a_stop_by_signal_is_saved_before_the_validation(
    chord_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scheduler kills the job a grace period after SIGTERM: the step must be on disk
    before the validation that closes the run, which may outlast the grace. Here the
    validation fails (as a kill would end it) once SIGTERM has arrived at step 3: last.pt
    holds step 3 (before, nothing was saved: validation came first)."""
    import wavenet.train.loop as train_module
    from wavenet.train.validation import Validation

    real_step, real_validate = train_module.train_step, Validation.validate
    signalled = []

    def step_then_signal(state, setup, lr):
        bits = real_step(state, setup, lr)
        if state.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)
            signalled.append(3)
        return bits

    def validate(self, state, checkpoints):
        if signalled:
            raise RuntimeError("killed during the validation")
        return real_validate(self, state, checkpoints)

    monkeypatch.setattr(train_module, "train_step", step_then_signal)
    monkeypatch.setattr(Validation, "validate", validate)
    run = tmp_path / "run"
    args = [
        "train",
        "--data",
        str(chord_dir),
        "--out",
        str(run),
        "--steps",
        "50",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--config",
        "tiny",
    ]
    for item in FAST + ["train.checkpoint_every=1000", "train.val_every=1000"]:
        args += ["--set", item]
    result = CliRunner().invoke(main, args)
    assert isinstance(result.exception, RuntimeError), result.output
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 3

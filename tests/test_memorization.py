"""A run that memorizes its data says so in one line at its end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import FAST, write_chord

from wavenet.train.memorization import detect_memorization, validations_in_log
from wavenet_cli.main import main


def test_detects_a_rise_after_the_best() -> None:
    history = [(50, 6.1), (100, 4.93), (150, 5.4), (200, 10.66)]
    found = detect_memorization(history, train_seconds=30.0)
    assert found is not None and (found.best_step, found.last_step) == (100, 200)
    line = found.line()
    assert "from 4.930 bits/sample at step 100 to 10.660 at step 200 (+5.73)" in line
    assert "30 s of training audio" in line and "best.pt" in line


@pytest.mark.parametrize(
    "history",
    [
        [(50, 6.0), (100, 5.0), (150, 4.8)],  # still falling
        [(50, 6.0), (100, 5.0), (150, 5.1)],  # a little noise
        [(50, 5.0)],  # one validation
        [(50, 5.0), (100, float("nan")), (150, 4.9)],  # a NaN is passed over
    ],
)
def test_no_line_without_a_rise(history: list[tuple[int, float]]) -> None:
    assert detect_memorization(history, train_seconds=None) is None


def test_reads_the_metrics_log(tmp_path: Path) -> None:
    log = tmp_path / "metrics.jsonl"
    log.write_text(
        "\n".join(
            [
                json.dumps({"step": 1, "train_bits": 7.0}),
                json.dumps({"step": 10, "val_bits": 6.5}),
                "{torn",
                json.dumps({"step": 20, "val_bits": 7.5}),
            ]
        )
        + "\n"
    )
    assert validations_in_log(log) == [(10, 6.5), (20, 7.5)]


def test_a_run_whose_validation_climbs_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The validation of a real run, replaced by a climbing one (a 30-second folder climbs
    from ~5 to ~11 bits in 15 minutes): the run ends with the line."""
    from wavenet.train.validation import Validation

    climbing = iter([6.0, 5.0, 5.5, 6.5])  # steps 10, 20, 30, 40

    def validate(self, state, checkpoints):
        bits = next(climbing)
        if state.best_val_bits is None or bits < state.best_val_bits:
            state.best_val_bits = bits
        return bits

    monkeypatch.setattr(Validation, "validate", validate)
    args = [
        "train",
        "--data",
        str(write_chord(tmp_path / "chord", files=2, seconds=0.5)),
        "--out",
        str(tmp_path / "run"),
        "--steps",
        "40",
        "--config",
        "tiny",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    for item in FAST:
        args += ["--set", item]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "validation rose from 5.000 bits/sample at step 20 to 6.500 at step 40" in result.stderr
    assert "s of training audio" in result.stderr


def _climbing_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, values: list[float], *extra: str
):
    from wavenet.train.validation import Validation

    climbing = iter(values)

    def validate(self, state, checkpoints):
        bits = next(climbing)
        if state.best_val_bits is None or bits < state.best_val_bits:
            state.best_val_bits, state.best_step = bits, state.step
            checkpoints.save(state, "best.pt")  # as the real validation does
        return bits

    monkeypatch.setattr(Validation, "validate", validate)
    args = [
        "train",
        "--data",
        str(write_chord(tmp_path / "chord", files=2, seconds=0.5)),
        "--out",
        str(tmp_path / "run"),
        "--config",
        "tiny",
        "--cache-dir",
        str(tmp_path / "cache"),
        *extra,
    ]
    for item in FAST:
        args += ["--set", item]
    return CliRunner().invoke(main, args)


def test_early_stopping_after_patience_validations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validations at steps 10, 20, 30, 40: the best at 20, then two worse: with a
    patience of 2 the run stops after step 41 (one step more, so every rank stops
    together), saved, best.pt kept; without it, it trained all 100 steps."""
    from wavenet.io.checkpoint import load_checkpoint

    result = _climbing_run(
        tmp_path,
        monkeypatch,
        [6.0, 5.0, 5.5, 6.5, 7.0],
        "--steps",
        "100",
        "--set",
        "train.early_stop_patience=2",
    )
    assert result.exit_code == 0, result.output
    assert "stopped early at step 41" in result.output
    assert "has not improved on 5.000 bits/sample (step 20, kept in best.pt) for 2" in result.stderr
    run = tmp_path / "run" / "checkpoints"
    assert load_checkpoint(run / "last.pt")["step"] == 41
    assert load_checkpoint(run / "best.pt")["step"] == 20


def test_a_budgeted_run_stops_early_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--minutes without train.early_stop_patience: EARLY_STOP_PATIENCE validations."""
    from clocks import FakeClock, timed_training

    from wavenet.config import EARLY_STOP_PATIENCE

    # A second a step on a fake clock: the 2 minutes hold more steps than early stopping
    # takes, however busy the machine.
    timed_training(monkeypatch, FakeClock(), step=1.0)
    values = [5.0] + [6.0 + i for i in range(EARLY_STOP_PATIENCE + 1)]
    result = _climbing_run(tmp_path, monkeypatch, values, "--minutes", "2", "--steps", "200")
    assert result.exit_code == 0, result.output
    assert f"stopped early at step {10 * (EARLY_STOP_PATIENCE + 1) + 1}" in result.output

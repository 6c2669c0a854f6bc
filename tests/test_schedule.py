"""Time-budgeted training (`--minutes`): a total fixed after calibration, stored, resumed."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from clocks import FakeClock, timed_training
from helpers import FAST, write_chord

import wavenet
from wavenet.io.checkpoint import load_checkpoint
from wavenet.train.loop import TrainOptions, train
from wavenet.train.schedule import Calibration, RunCosts, Schedule, budget_schedule, learning_rate
from wavenet_cli.main import main


@pytest.fixture(scope="module")
def chord_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_chord(tmp_path_factory.mktemp("chord"))


def test_an_unknown_total_warms_up_then_holds_the_peak() -> None:
    tc = wavenet.TrainConfig(lr=1e-3, warmup_steps=10, min_lr_ratio=0.1)
    assert learning_rate(4, None, tc) == pytest.approx(5e-4)
    assert learning_rate(50, None, tc) == 1e-3
    schedule = Schedule(total_steps=100, warmup_steps=2, budget_seconds=60.0)
    assert schedule.learning_rate(0, tc) == pytest.approx(5e-4)
    assert schedule.learning_rate(99, tc) == pytest.approx(1e-4, rel=0.01)
    assert Schedule.from_dict(schedule.to_dict()) == schedule


def test_budget_schedule_fits_the_rest_of_the_budget(caplog: pytest.LogCaptureFixture) -> None:
    # 4 steps done in 10 s of a 100 s budget at 2 s a step: 45 more fit.
    assert budget_schedule(4, 10.0, 2.0, 100.0, None, 0) == Schedule(49, 0, 100.0)
    assert budget_schedule(4, 10.0, 2.0, 100.0, 30, 0).total_steps == 30
    # Out of time: one more step, so that the run still ends with a checkpoint.
    assert budget_schedule(4, 200.0, 2.0, 100.0, None, 0).total_steps == 5
    assert budget_schedule(0, 0.0, 1.0, 1000.0, None, 50).warmup_steps == 50
    with caplog.at_level(logging.INFO, logger="wavenet.train.schedule"):
        assert budget_schedule(0, 0.0, 1.0, 100.0, None, 50).warmup_steps == 10
    assert "warming up over 10 steps" in caplog.text
    with pytest.raises(ValueError, match="seconds per step"):
        budget_schedule(0, 0.0, 0.0, 100.0, None, 0)


def test_run_costs_take_their_share_of_the_budget() -> None:
    tc = wavenet.TrainConfig(val_every=10, checkpoint_every=20)
    costs = RunCosts(validation=3.0, checkpoint=1.0)
    # A validation and its `best` checkpoint every 10 steps, a `last` one every 20.
    assert costs.per_step(tc) == pytest.approx(4.0 / 10 + 1.0 / 20)
    assert costs.at_end(tc) == pytest.approx(5.0)
    assert RunCosts(checkpoint=1.0).per_step(tc) == pytest.approx(1.0 / 20)
    assert RunCosts(checkpoint=1.0).at_end(tc) == pytest.approx(1.0)
    # A sample every sample_every steps; none when the run writes none.
    with_samples = wavenet.TrainConfig(val_every=10, checkpoint_every=20, sample_every=50)
    assert RunCosts(checkpoint=1.0, sample=5.0).per_step(with_samples) == pytest.approx(
        1.0 / 20 + 5.0 / 50
    )
    no_samples = wavenet.TrainConfig(val_every=10, checkpoint_every=20, sample_every=0)
    assert RunCosts(checkpoint=1.0, sample=5.0).per_step(no_samples) == pytest.approx(1.0 / 20)
    # 100 s left at 2 s a step, 1.5 s of it kept for the end: 49 steps, not 50.
    step_time = 2.0 + RunCosts(checkpoint=0.5).per_step(wavenet.TrainConfig(checkpoint_every=1000))
    assert budget_schedule(0, 0.0, step_time, 100.0, None, 0, reserve_seconds=1.5).total_steps == 49
    assert budget_schedule(0, 0.0, 2.0, 100.0, None, 0).total_steps == 50


def test_calibration_skips_the_first_step_then_times_enough() -> None:
    calibration = Calibration(budget_seconds=100.0)  # 5% of it: 5 s
    calibration.step_done(50.0)  # the untimed first step (a compile, say)
    assert calibration.seconds_per_step is None
    for now in (51.0, 52.0, 53.0, 54.0):
        calibration.step_done(now)
    assert not calibration.ready  # 4 steps but only 4 s
    calibration.step_done(55.0)
    assert calibration.ready and calibration.seconds_per_step == pytest.approx(1.0)


def test_minutes_stops_near_the_budget_with_a_stored_schedule(
    chord_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a fake clock: a step takes 0.25 s, a validation 0.5 s (the CLI's run reads it).
    timed_training(monkeypatch, FakeClock(), step=0.25, validation=0.5)
    run = tmp_path / "run"
    args = [
        "train",
        "--data",
        str(chord_dir),
        "--out",
        str(run),
        "--config",
        "tiny",
        "--minutes",
        "0.1",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    for item in FAST:
        args += ["--set", item]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    payload = load_checkpoint(run / "checkpoints" / "last.pt")
    schedule = Schedule.from_dict(payload["extra"]["schedule"])
    assert schedule.budget_seconds == 6.0 and schedule.total_steps >= 4
    # It ends at the estimated total or at the budget, whichever comes first: near 6 s,
    # and never long after it (the last step, validation and checkpoint).
    assert 2.5 < payload["extra"]["wall_time"] < 6.0 + 5.0
    assert payload["step"] <= schedule.total_steps


def nine_second_run(
    data: Path, tmp_path: Path, sets: list[str], clock: FakeClock
) -> tuple[Path, int]:
    """A `tiny` run of a 9-second budget on `clock` with `sets`; checks that it reached 0.6
    of its estimated total within the budget (and the end's work); -> (run folder, last
    step)."""
    run = tmp_path / "run"
    budget_run(data, run, tmp_path / "cache", *sets, budget=9.0, clock=clock)
    payload = load_checkpoint(run / "checkpoints" / "last.pt")
    schedule = Schedule.from_dict(payload["extra"]["schedule"])
    assert payload["step"] >= 0.6 * schedule.total_steps, (payload["step"], schedule)
    assert payload["extra"]["wall_time"] < 9.0 + 5.0
    return run, payload["step"]


def test_a_budget_makes_room_for_validation(
    chord_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Validation every 8 steps, over many crops: it costs several steps' time (here 6 on
    # the fake clock), and the calibration (its first 6 steps) sees none. Counted, the run
    # reaches its estimated total within the budget instead of being cut by the clock
    # part-way through the schedule (uncounted, under 0.6 of it here).
    clock = FakeClock()
    timed_training(monkeypatch, clock, step=0.1, validation=0.6)
    nine_second_run(chord_dir, tmp_path, ["train.val_every=8", "train.val_batches=80"], clock)


def test_a_budget_makes_room_for_samples(
    chord_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 2-second sample every 8 steps costs several steps' time (here 8 on the fake
    # clock, most of this run's), and the calibration sees none: counted
    # (`SampleWriter.estimate_seconds`), the run reaches its estimated total within the
    # budget; uncounted, about a third of it.
    clock = FakeClock()
    timed_training(monkeypatch, clock, step=0.1, sample=0.8)
    run, step = nine_second_run(
        chord_dir,
        tmp_path,
        ["train.val_every=1000", "train.sample_every=8", "train.sample_seconds=2"],
        clock,
    )
    assert len(list((run / "samples").glob("step-*.wav"))) == step // 8


def budget_run(
    data: Path,
    out: Path,
    cache: Path,
    *sets: str,
    clock: FakeClock | None = None,
    **options: Any,
) -> None:
    """Train a `tiny` run with `sets` and TrainOptions `options`, on `clock` if given."""
    config = wavenet.load_config("tiny", FAST + list(sets))
    run = TrainOptions(data=data, out=out, steps=None, cache_dir=cache, **options)
    if clock is None:
        train(config, run)
    else:
        train(config, run, clock=clock)


def test_a_stopped_and_resumed_budget_run_equals_an_uninterrupted_one(
    chord_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    # 30 s a step in 6 minutes: 12 steps, the warm-up of 5 cut to 10% of them (1).
    fixed: dict[str, Any] = {"budget": 360.0, "seconds_per_step": 30.0}
    budget_run(chord_dir, tmp_path / "whole", cache, **fixed)
    budget_run(chord_dir, tmp_path / "split", cache, stop_at=5, **fixed)
    stopped = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert stopped["step"] == 5
    assert stopped["extra"]["schedule"] == {
        "total_steps": 12,
        "warmup_steps": 1,
        "budget_seconds": 360.0,
    }
    # The resume is given neither steps nor a budget: it reads the stored total.
    config = wavenet.load_config("tiny", FAST)
    train(
        config,
        TrainOptions(
            data=chord_dir, out=tmp_path / "split", steps=None, cache_dir=cache, resume=True
        ),
    )
    whole = load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.pt")
    split = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert whole["step"] == split["step"] == 12
    for key, value in whole["model"].items():
        assert torch.equal(value, split["model"][key]), key


def test_a_budget_run_stopped_before_its_steps_were_timed_keeps_its_budget(
    chord_dir: Path, tmp_path: Path
) -> None:
    """Stopped (Ctrl-C, --stop-at) during the calibration, a run stored no schedule and
    nothing of its budget: `--resume` alone, as the README says, then trained 1000 steps
    with no time limit."""
    cache, run = tmp_path / "cache", tmp_path / "run"
    budget_run(chord_dir, run, cache, budget=360.0, stop_at=2)  # calibration needs 18 s
    stopped = load_checkpoint(run / "checkpoints" / "last.pt")
    assert stopped["step"] == 2 and stopped["extra"]["schedule"] is None
    assert stopped["extra"]["budget"] == 360.0
    # Neither steps nor a budget on resume; 30 s a step fixes the total without timing.
    summary = train(
        None,
        TrainOptions(
            data=chord_dir,
            out=run,
            steps=None,
            cache_dir=cache,
            resume=True,
            seconds_per_step=30.0,
            stop_at=3,
        ),
    )
    assert summary.total_steps == 2 + int((360.0 - stopped["extra"]["wall_time"]) // 30.0)
    resumed = load_checkpoint(run / "checkpoints" / "last.pt")
    assert resumed["step"] == 3 and resumed["extra"]["budget"] == 360.0
    assert resumed["extra"]["schedule"]["budget_seconds"] == 360.0


def test_resume_alone_of_a_budget_run_stopped_in_calibration_cli(
    chord_dir: Path, tmp_path: Path
) -> None:
    """The command line: its progress bar has no total while the steps are timed again."""
    args = [
        "train",
        "--data",
        str(chord_dir),
        "--out",
        str(tmp_path / "run"),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    first = CliRunner().invoke(
        main, args + ["--config", "tiny", "--minutes", "5", "--stop-at", "2"]
    )
    assert first.exit_code == 0 and "stopped at step 2 as asked" in first.output, first.output
    again = CliRunner().invoke(main, args + ["--resume", "--stop-at", "3"])
    assert again.exit_code == 0, again.output
    assert "stopped at step 3 as asked" in again.output
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["extra"]["budget"] == 300.0


def test_validations_scaled_to_the_run() -> None:
    from wavenet.config import MIN_VAL_EVERY, VALIDATIONS_PER_RUN
    from wavenet.train.schedule import validation_interval

    scaled = wavenet.TrainConfig(checkpoint_every=20)
    assert scaled.val_every is None
    # About VALIDATIONS_PER_RUN validations, whatever the run's length.
    assert validation_interval(scaled, 4000) == 4000 // VALIDATIONS_PER_RUN
    assert validation_interval(scaled, 100_000) == 100_000 // VALIDATIONS_PER_RUN
    assert validation_interval(scaled, 4001) == 4001 // VALIDATIONS_PER_RUN + 1
    assert validation_interval(scaled, 50) == MIN_VAL_EVERY
    assert validation_interval(scaled, None) is None  # a budget still timing its steps
    assert validation_interval(wavenet.TrainConfig(val_every=500), 4000) == 500
    # Scaled validations are a count kept back at the end, not a share of each step.
    costs = RunCosts(validation=3.0, checkpoint=1.0)
    assert costs.per_step(scaled) == pytest.approx(1.0 / 20)
    assert costs.at_end(scaled) == pytest.approx(5.0 + VALIDATIONS_PER_RUN * 4.0)
    # At most a tenth of the budget: a checkpoint write timed on a busy disk is not
    # counted forty times over.
    assert costs.at_end(scaled, budget_seconds=300.0) == pytest.approx(5.0 + 30.0)
    assert costs.at_end(scaled, budget_seconds=9000.0) == pytest.approx(5.0 + 160.0)
    with pytest.raises(wavenet.ConfigError, match="val_every"):
        wavenet.TrainConfig(val_every=0)

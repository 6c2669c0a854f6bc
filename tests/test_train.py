"""Training end to end on a chord of sines: loss falls, resume is exact, eval improves."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner
from helpers import FAST, SAMPLE_RATE, write_chord

import wavenet
from wavenet.data.crops import CropSampler, item_length
from wavenet.data.prepare import EncodedFile, encode_waveform, load_encoded
from wavenet.eval.bits import evaluate_codes
from wavenet.io.checkpoint import load_checkpoint, load_model
from wavenet.train.loop import StepSetup, ema_update, ema_weight, train_step
from wavenet.train.schedule import learning_rate
from wavenet.train.state import TrainState
from wavenet_cli.main import main


@pytest.fixture(scope="module")
def chord_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_chord(tmp_path_factory.mktemp("chord"))


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def run_train(data: Path, out: Path, steps: int, cache: Path, *extra: str) -> None:
    args = [
        "train",
        "--data",
        str(data),
        "--out",
        str(out),
        "--config",
        "tiny",
        "--steps",
        str(steps),
        "--cache-dir",
        str(cache),
    ]
    for item in FAST:
        args += ["--set", item]
    result = CliRunner().invoke(main, args + list(extra))
    assert result.exit_code == 0, result.output


def test_learning_rate_schedule() -> None:
    tc = wavenet.TrainConfig(lr=1e-3, warmup_steps=10, min_lr_ratio=0.1)
    assert learning_rate(0, 100, tc) == pytest.approx(1e-4)
    assert learning_rate(9, 100, tc) == pytest.approx(1e-3)
    assert learning_rate(99, 100, tc) == pytest.approx(1e-4, rel=0.01)
    assert learning_rate(55, 100, tc) == pytest.approx(0.55e-3, rel=0.01)


def tiny_state(sgd: bool = False, **train: object) -> tuple[TrainState, StepSetup]:
    """A tiny model with its optimizer and a sampler over one chord, stepped in-process."""
    config = wavenet.load_config("tiny")
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, **train))  # type: ignore[arg-type]
    torch.manual_seed(config.train.seed)
    model = wavenet.WaveNet(config.model)
    optimizer = (
        torch.optim.SGD(model.parameters(), lr=config.train.lr)
        if sgd
        else torch.optim.AdamW(model.parameters(), lr=config.train.lr)
    )
    ema = (
        {k: v.detach().clone() for k, v in model.state_dict().items()}
        if config.train.ema_decay is not None
        else None
    )
    state = TrainState(config, model, optimizer, torch.Generator().manual_seed(0), ema)
    t = np.arange(4000) / SAMPLE_RATE
    chord = 0.25 * np.sum([np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)], axis=0)
    files = [EncodedFile(Path("chord.wav"), encode_waveform(chord.astype(np.float32), 256))]
    sampler = CropSampler(files, item_length(0, 64), state.crop_generator)
    return state, StepSetup(model, sampler, config.train, context=0)


def test_train_step_lowers_the_loss_and_moves_the_parameters() -> None:
    state, setup = tiny_state(ema_decay=0.5)
    before = {k: v.clone() for k, v in state.model.state_dict().items()}
    losses = [train_step(state, setup, lr=1e-2) for _ in range(40)]
    assert state.step == 40
    assert losses[0] > 7.5  # near log2(256) = 8 bits untrained
    assert np.mean(losses[-5:]) < losses[0] - 1.5, losses  # measured: 8.0 -> 5.8
    after = state.model.state_dict()
    weight = "head_out.weight"
    assert not torch.equal(before[weight], after[weight])
    # The EMA lies between the start and the current weights, nearer the current ones.
    assert state.ema is not None
    ema = state.ema[weight]
    assert not torch.equal(ema, after[weight]) and not torch.equal(ema, before[weight])
    assert (ema - after[weight]).norm() < (before[weight] - after[weight]).norm()


def test_ema_is_bias_corrected_from_the_first_update() -> None:
    # At decay 0.995 a plain average still holds 55% of the initial weights after 118
    # steps (a short demo run validated at 7.5 bits); corrected, it holds none of them.
    decay = 0.9
    model = torch.nn.Linear(1, 1, bias=False)
    ema = {"weight": torch.full((1, 1), 100.0)}  # the initial weights, to be forgotten
    weights = [3.0, -1.0, 5.0, 2.0]
    for step, w in enumerate(weights, start=1):
        model.weight.data.fill_(w)
        ema_update(ema, model, decay, step)
        if step == 1:
            assert ema["weight"].item() == w
    n = len(weights)
    expected = sum((1 - decay) * decay ** (n - k) * w for k, w in enumerate(weights, 1)) / (
        1 - decay**n
    )  # 2.2214
    assert ema["weight"].item() == pytest.approx(expected, rel=1e-6)
    # Late in a run the correction vanishes: the plain decay.
    assert ema_weight(0.995, 5000) == pytest.approx(0.005, rel=1e-6)
    assert ema_weight(0.995, 1) == 1.0


def test_train_step_with_accumulation_equals_a_bigger_batch() -> None:
    # SGD, whose step is linear in the gradient: Adam's first step turns the rounding
    # noise of a gradient that is zero in exact arithmetic (dead skip channels) into +-lr.
    big, big_setup = tiny_state(sgd=True, batch_size=8)
    accumulated, accumulated_setup = tiny_state(sgd=True, batch_size=4, grad_accum=2)
    for _ in range(3):
        a = train_step(big, big_setup, lr=0.1)
        b = train_step(accumulated, accumulated_setup, lr=0.1)
        assert a == pytest.approx(b, rel=1e-6)
    for key, value in big.model.state_dict().items():
        torch.testing.assert_close(
            accumulated.model.state_dict()[key], value, rtol=1e-4, atol=1e-6, msg=key
        )


def test_loss_falls_on_a_chord(chord_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_train(chord_dir, run, 60, tmp_path / "cache")
    log = metrics(run)
    first = np.mean([r["train_bits"] for r in log[:3]])
    last = np.mean([r["train_bits"] for r in log[-3:]])
    assert first > 6.0  # an untrained model is near log2(256) = 8 bits
    assert last < first - 1.5, (first, last)
    val = [r["val_bits"] for r in log if "val_bits" in r]
    assert len(val) == 6 and val[-1] < val[0] - 1.0
    assert (run / "checkpoints" / "last.pt").is_file()
    assert (run / "checkpoints" / "best.pt").is_file()
    payload = load_checkpoint(run / "checkpoints" / "last.pt")
    assert payload["step"] == 60
    assert payload["best_val_bits"] == pytest.approx(min(val))
    assert json.loads((run / "config.json").read_text())["model"]["layers_per_stack"] == 4
    for key in ("step", "train_bits", "lr", "samples_per_s", "wall_time"):
        assert key in log[-1]


@pytest.mark.parametrize("steps_again", [["--steps", "20"], []], ids=["steps", "alone"])
def test_resume_reproduces_an_uninterrupted_run(
    chord_dir: Path, tmp_path: Path, steps_again: list[str]
) -> None:
    # --resume alone continues the --steps the run was started with (it once fell back
    # to the default 1000 steps, and so to another learning-rate schedule).
    cache = tmp_path / "cache"
    straight, split = tmp_path / "straight", tmp_path / "split"
    run_train(chord_dir, straight, 20, cache, "--set", "train.ema_decay=0.9")
    run_train(chord_dir, split, 20, cache, "--set", "train.ema_decay=0.9", "--stop-at", "10")
    assert load_checkpoint(split / "checkpoints" / "last.pt")["step"] == 10
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            str(chord_dir),
            "--out",
            str(split),
            *steps_again,
            "--resume",
            "--cache-dir",
            str(cache),
        ],
    )
    assert result.exit_code == 0, result.output
    a, b = metrics(straight), metrics(split)
    assert [r["step"] for r in a] == [r["step"] for r in b]
    assert [r["train_bits"] for r in a] == [r["train_bits"] for r in b]
    assert [r.get("val_bits") for r in a] == [r.get("val_bits") for r in b]
    end_a = load_checkpoint(straight / "checkpoints" / "last.pt")
    end_b = load_checkpoint(split / "checkpoints" / "last.pt")
    for key, value in end_a["model"].items():
        assert torch.equal(value, end_b["model"][key]), key
    for key, value in end_a["ema"].items():
        assert torch.equal(value, end_b["ema"][key]), key


def test_ema_turned_on_at_resume_starts_from_the_resumed_weights(
    chord_dir: Path, tmp_path: Path
) -> None:
    """train.ema_decay set on --resume of a run without EMA: the average was seeded from a
    fresh model's weights with the bias correction of the resumed step, so after one step
    it was still 90% the initial weights (validation, best.pt and load_model(use_ema=True)
    near random). Now it counts its own updates: the first copies the weights."""
    cache, run = tmp_path / "cache", tmp_path / "run"
    run_train(chord_dir, run, 10, cache)
    assert load_checkpoint(run / "checkpoints" / "last.pt")["ema"] is None
    for steps in (11, 12):
        result = CliRunner().invoke(
            main,
            [
                "train",
                "--data",
                str(chord_dir),
                "--out",
                str(run),
                "--steps",
                str(steps),
                "--resume",
                "--cache-dir",
                str(cache),
                "--set",
                "train.ema_decay=0.99",
            ],
        )
        assert result.exit_code == 0, result.output
        payload = load_checkpoint(run / "checkpoints" / "last.pt")
        if steps == 11:
            after_one = payload["model"]
            for key, value in payload["model"].items():  # update 1 of the average copies
                torch.testing.assert_close(payload["ema"][key], value, msg=key)
    # Update 2 (a second resume, the average kept): weight ema_weight(0.99, 2), not (.., 12).
    weight = ema_weight(0.99, 2)
    for key, value in payload["model"].items():
        if value.is_floating_point():
            expected = after_one[key] + weight * (value - after_one[key])
            torch.testing.assert_close(payload["ema"][key], expected, msg=key)
    model, _, _ = load_model(run, use_ema=True)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, payload["ema"][key], msg=key)


def test_a_run_inside_its_data_folder_does_not_train_on_its_own_samples(
    chord_dir: Path, tmp_path: Path
) -> None:
    """`--data audio --out audio/run`: the resume read the run's samples/step-N.wav as
    training data (5 files instead of 2) and the held-out split moved."""
    import shutil

    data = shutil.copytree(chord_dir, tmp_path / "audio")
    run, cache = data / "run", tmp_path / "cache"
    run_train(
        data, run, 2, cache, "--set", "train.sample_every=1", "--set", "train.sample_seconds=0.05"
    )
    assert len(list((run / "samples").glob("*.wav"))) == 2
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            str(data),
            "--out",
            str(run),
            "--steps",
            "3",
            "--resume",
            "--cache-dir",
            str(cache),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "trained 2 file(s) to step 3" in result.output
    result = CliRunner().invoke(
        main, ["eval", str(run), "--data", str(data), "--cache-dir", str(cache)]
    )
    assert result.exit_code == 0 and " in 3 file(s)" in result.output, result.output
    from wavenet.data.prepare import find_audio_files

    assert find_audio_files(data, exclude=[run]) == sorted(data.glob("*.wav"))


def test_eval_falls_after_training(chord_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    run = tmp_path / "run"
    run_train(chord_dir, run, 1, cache)
    before = CliRunner().invoke(
        main,
        [
            "eval",
            str(run / "checkpoints" / "last.pt"),
            "--data",
            str(chord_dir),
            "--json",
            "--cache-dir",
            str(cache),
        ],
    )
    assert before.exit_code == 0, before.output
    result_before = json.loads(before.output)
    CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            str(chord_dir),
            "--out",
            str(run),
            "--steps",
            "40",
            "--resume",
            "--cache-dir",
            str(cache),
        ],
    )
    after = json.loads(
        CliRunner()
        .invoke(
            main, ["eval", str(run), "--data", str(chord_dir), "--json", "--cache-dir", str(cache)]
        )
        .output
    )
    assert math.isfinite(result_before["bits_per_sample"]) and math.isfinite(
        after["bits_per_sample"]
    )
    assert after["bits_per_sample"] < result_before["bits_per_sample"] - 1.0
    rf = wavenet.load_config("tiny").model.receptive_field
    assert after["files"] == 3
    assert after["samples"] == 3 * (int(1.5 * SAMPLE_RATE) - rf)


def test_eval_does_not_depend_on_chunking(chord_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_train(chord_dir, run, 5, tmp_path / "cache")
    model, config, _ = load_model(run)
    encoded = load_encoded(
        chord_dir,
        sample_rate=config.data.sample_rate,
        quantization_channels=256,
        min_length=32,
        cache_dir=tmp_path / "cache",
    )
    codes = [f.codes for f in encoded.files]
    whole = evaluate_codes(model.double(), codes, chunk=100_000)
    pieces = evaluate_codes(model, codes, chunk=333, batch_size=3)
    assert whole.samples == pieces.samples
    assert whole.bits_per_sample == pytest.approx(pieces.bits_per_sample, abs=1e-9)


def test_info_reports_the_run(chord_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_train(chord_dir, run, 10, tmp_path / "cache")
    result = CliRunner().invoke(main, ["info", str(run), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    model = wavenet.WaveNet(wavenet.load_config("tiny").model)
    assert info["step"] == 10
    assert info["parameters"] == wavenet.parameter_count(model)
    assert info["receptive_field"] == 31
    assert info["best_val_bits"] is not None
    text = CliRunner().invoke(main, ["info", str(run)]).output
    assert "receptive field  31 samples" in text


def test_training_is_reproducible(chord_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    run_train(chord_dir, tmp_path / "a", 8, cache)
    run_train(chord_dir, tmp_path / "b", 8, cache)
    assert [r["train_bits"] for r in metrics(tmp_path / "a")] == [
        r["train_bits"] for r in metrics(tmp_path / "b")
    ]


def test_refuses_to_overwrite_a_run(chord_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_train(chord_dir, run, 2, tmp_path / "cache")
    result = CliRunner().invoke(
        main,
        ["train", "--data", str(chord_dir), "--out", str(run), "--config", "tiny", "--steps", "2"],
    )
    assert result.exit_code == 1
    assert "--resume" in result.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["--set", "model.residual_chanels=3"], "allowed keys in model"),
        (["--set", "train.lr=fast"], "train.lr: expected float"),
        (["--config", "nosuchpreset"], "unknown preset"),
        (["--steps", "0"], "--steps must be >= 1"),
    ],
)
def test_bad_arguments_fail_with_one_line(
    chord_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(
        main, ["train", "--data", str(chord_dir), "--out", str(tmp_path / "run")] + args
    )
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_missing_and_empty_data_folders(tmp_path: Path) -> None:
    for folder in (tmp_path / "missing", tmp_path):
        result = CliRunner().invoke(
            main,
            [
                "train",
                "--data",
                str(folder),
                "--out",
                str(tmp_path / "run"),
                "--config",
                "tiny",
                "--cache-dir",
                str(tmp_path / "cache"),
            ],
        )
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert str(folder) in result.output


def test_bad_files_are_skipped_and_counted(chord_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "mixed"
    write_chord(data, files=2)
    (data / "empty.wav").write_bytes(b"")
    (data / "notes.wav").write_text("this is not audio")
    good = (data / "chord 0.wav").read_bytes()
    (data / "truncated.wav").write_bytes(good[:30])
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    stereo = np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], 1) * 0.3
    sf.write(data / "stereo.flac", stereo, 16000)
    sf.write(data / "low.wav", np.sin(2 * np.pi * 220 * t[:4000]) * 0.3, 4000, subtype="PCM_U8")
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
        ]
        + sum((["--set", s] for s in FAST), []),
    )
    assert result.exit_code == 0, result.output
    for name in ("empty.wav", "notes.wav", "truncated.wav"):
        assert name in result.output
    assert "skipped 3 file(s)" in result.output
    assert "Traceback" not in result.output


def test_tensorboard_flag(chord_dir: Path, tmp_path: Path) -> None:
    """Scalars when tensorboard is installed; one clear line when it is not."""
    args = [
        "train",
        "--data",
        str(chord_dir),
        "--out",
        str(tmp_path / "run"),
        "--config",
        "tiny",
        "--steps",
        "2",
        "--tensorboard",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    result = CliRunner().invoke(main, args)
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        assert result.exit_code == 1
        assert "pip install tensorboard" in result.output
        assert len(result.output.strip().splitlines()) == 1
    else:
        assert result.exit_code == 0, result.output
        assert list((tmp_path / "run" / "tensorboard").glob("events.*"))


@pytest.mark.slow
def test_compiled_training_matches_eager(chord_dir: Path, tmp_path: Path) -> None:
    """train.compile=true (torch.compile, ~1 min to compile on a CPU) trains the same model."""
    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    run_train(chord_dir, eager, 10, tmp_path / "cache")
    run_train(chord_dir, compiled, 10, tmp_path / "cache", "--set", "train.compile=true")
    for a, b in zip(metrics(eager), metrics(compiled), strict=True):
        assert a["train_bits"] == pytest.approx(b["train_bits"], rel=1e-4)
    # The checkpoint holds the plain module's state dict, loadable without compiling.
    plain, _, _ = load_model(eager)
    from_compiled, _, _ = load_model(compiled)
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(from_compiled.state_dict()[key], value, rtol=1e-3, atol=1e-4)

"""Audio samples while training: at the configured steps, of the configured length, not
silent, timed in the metrics log, and without any effect on the training itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner
from clocks import FakeClock, timed_training
from helpers import FAST, SAMPLE_RATE, write_chord

import wavenet
from wavenet.data.prepare import prepare_data
from wavenet.io.checkpoint import load_checkpoint
from wavenet.train.samples import sample_writer
from wavenet_cli.main import main

VOCODER = [
    "mel.n_mels=20",
    "mel.n_fft=256",
    "mel.hop_length=64",
    "mel.win_length=256",
    "model.local_channels=20",
    "model.upsample_scales=8,8",
]


@pytest.fixture(scope="module")
def chord_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_chord(tmp_path_factory.mktemp("chord"), files=4)


def run_train(data: Path, out: Path, steps: int, cache: Path, *sets: str) -> list[dict]:
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
    # Small batches: the steps only need to exist, and this CPU is shared.
    for item in FAST + ["train.batch_size=2", "data.target_length=128", *sets]:
        args += ["--set", item]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio))))


def test_samples_at_the_configured_steps(
    chord_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a fake clock, so that the seconds logged do not depend on the machine's load.
    timed_training(monkeypatch, FakeClock(), step=0.1, sample=0.5)
    run = tmp_path / "run"
    records = run_train(
        chord_dir,
        run,
        4,
        tmp_path / "cache",
        "train.sample_every=2",
        "train.sample_seconds=0.1",
        "train.log_every=100",
        "train.ema_decay=0.9",
    )
    names = sorted(p.name for p in (run / "samples").iterdir())
    assert names == ["step-0000002.png", "step-0000002.wav", "step-0000004.png", "step-0000004.wav"]
    for step in (2, 4):
        audio, rate = sf.read(run / "samples" / f"step-{step:07d}.wav")
        assert rate == SAMPLE_RATE and audio.shape == (800,)
        assert rms(audio) > 0.01  # not silence
    # The seconds each sample took are in that step's line of the metrics log.
    timed = {r["step"]: r["sample_time_s"] for r in records if "sample_time_s" in r}
    assert sorted(timed) == [2, 4] and all(0 < t < 60 for t in timed.values())


def test_sampling_does_not_change_training(chord_dir: Path, tmp_path: Path) -> None:
    weights = []
    for every in (0, 1):
        run = tmp_path / f"every-{every}"
        run_train(
            chord_dir,
            run,
            2,
            tmp_path / "cache",
            f"train.sample_every={every}",
            "train.sample_seconds=0.02",
        )
        weights.append(load_checkpoint(run / "checkpoints" / "last.pt")["model"])
        assert (run / "samples").exists() == bool(every)
    for key, value in weights[0].items():
        assert torch.equal(value, weights[1][key]), key


def test_vocoder_sample_resynthesizes_a_held_out_clip(chord_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "vocoder"
    run_train(
        chord_dir,
        run,
        3,
        tmp_path / "cache",
        *VOCODER,
        "train.sample_every=3",
        "train.sample_seconds=0.5",
    )
    frames = int(0.5 * SAMPLE_RATE) // 64
    sample, rate = sf.read(run / "samples" / "step-0000003.wav")
    original, _ = sf.read(run / "samples" / "original.wav")
    assert rate == SAMPLE_RATE and sample.shape == original.shape == (frames * 64,)
    assert rms(sample) > 0.01 and rms(original) > 0.1
    assert (run / "samples" / "step-0000003.png").is_file()


@pytest.mark.parametrize("vocoder", [False, True])
def test_a_sample_estimate_writes_nothing(chord_dir: Path, tmp_path: Path, vocoder: bool) -> None:
    # What a budget's calibration asks before the run's first sample: a time, no files.
    config = wavenet.load_config(
        "tiny",
        FAST + (VOCODER if vocoder else []) + ["train.sample_every=5", "train.sample_seconds=1"],
    )
    data = prepare_data(config, chord_dir, cache_dir=tmp_path / "cache")
    # A clock that moves half a second at each reading: the time is the write's.
    writer = sample_writer(config, data, tmp_path / "run", clock=FakeClock(tick=0.5))
    assert writer is not None
    seconds = writer.estimate_seconds(wavenet.WaveNet(config.model).eval())
    assert 0 < seconds < 60
    assert not (tmp_path / "run").exists()


class FakeWriter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int, tuple[int, ...]]] = []

    def add_audio(self, tag, audio, step, sample_rate):  # noqa: ANN001 - TensorBoard's API
        self.calls.append(("audio", tag, step, tuple(audio.shape)))
        assert sample_rate == SAMPLE_RATE

    def add_image(self, tag, image, step, dataformats):  # noqa: ANN001
        assert dataformats == "HWC" and image.shape[2] == 3
        self.calls.append(("image", tag, step, tuple(image.shape[2:])))


def test_samples_go_to_tensorboard(chord_dir: Path, tmp_path: Path) -> None:
    config = wavenet.load_config("tiny", VOCODER + ["train.sample_seconds=0.1"])
    data = prepare_data(config, chord_dir, cache_dir=tmp_path / "cache")
    writer = FakeWriter()
    samples = sample_writer(config, data, tmp_path / "run", writer, FakeClock(tick=0.5))
    assert samples is not None and samples.clip is not None
    model = wavenet.WaveNet(config.model)
    seconds = samples.write(model, 7)
    assert seconds > 0
    assert writer.calls == [
        ("audio", "original", 7, (1, 768)),
        ("audio", "sample", 7, (1, 768)),
        ("image", "spectrogram", 7, (3,)),
    ]
    # A fixed seed: the same weights give the same sample.
    first = sf.read(tmp_path / "run" / "samples" / "step-0000007.wav")[0]
    samples.write(model, 8)
    assert np.array_equal(first, sf.read(tmp_path / "run" / "samples" / "step-0000008.wav")[0])

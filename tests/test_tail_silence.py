"""Training files lose their trailing silence past data.tail_silence_ms; eval keeps it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import SAMPLE_RATE

import wavenet
from wavenet.data.prepare import last_loud_code, prepare_data


def write_tone_then_silence(folder: Path, files: int = 4) -> Path:
    """0.5 s of a tone, then 0.5 s of digital silence, in each file."""
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
    for i in range(files):
        tone = 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t)
        audio = np.concatenate([tone, np.zeros(SAMPLE_RATE // 2)]).astype(np.float32)
        sf.write(folder / f"f{i}.wav", audio, SAMPLE_RATE, subtype="PCM_16")
    return folder


def test_last_loud_code_reads_from_the_end() -> None:
    loud = np.zeros(256, dtype=bool)
    loud[200:] = True
    codes = np.full(300_000, 128, dtype=np.uint8)
    assert last_loud_code(codes, loud, block=1000) == -1
    codes[123_456] = 250
    codes[5] = 250
    assert last_loud_code(codes, loud, block=1000) == 123_456
    assert last_loud_code(codes, loud) == 123_456


@pytest.mark.parametrize("margin_ms", [50.0, 0.0, None])
def test_training_files_are_cut_after_their_last_loud_sample(
    tmp_path: Path, margin_ms: float | None
) -> None:
    data = write_tone_then_silence(tmp_path / "data")
    value = "none" if margin_ms is None else str(margin_ms)
    config = wavenet.load_config(
        "tiny", ["data.val_fraction=0.25", f"data.tail_silence_ms={value}"]
    )
    prepared = prepare_data(config, data, cache_dir=tmp_path / "cache")
    lengths = [len(f) for f in prepared.train.files]
    assert len(lengths) == 3 and len(prepared.val.files) == 1
    if margin_ms is None:
        assert lengths == [SAMPLE_RATE] * 3
    else:
        # The tone's last loud sample is within a period of 0.5 s; the margin follows it.
        expected = SAMPLE_RATE // 2 + round(margin_ms * SAMPLE_RATE / 1000)
        assert all(expected - 50 <= n <= expected for n in lengths), lengths
    # Validation and eval score files whole.
    assert len(prepared.val.files[0]) == SAMPLE_RATE
    scored = prepare_data(config, data, cache_dir=tmp_path / "cache", purpose="eval")
    assert [len(f) for f in scored.val.files] == [SAMPLE_RATE] * 4


def test_a_cut_never_leaves_a_file_too_short(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    click = np.zeros(SAMPLE_RATE, dtype=np.float32)
    click[:8] = 0.5  # one loud millisecond, then a second of silence
    for i in range(2):
        sf.write(folder / f"c{i}.wav", click, SAMPLE_RATE, subtype="PCM_16")
    config = wavenet.load_config("tiny", ["data.val_fraction=0", "data.tail_silence_ms=0"])
    prepared = prepare_data(config, folder, cache_dir=tmp_path / "cache")
    shortest = config.model.receptive_field + 1  # what a training file needs
    assert shortest > 8
    assert [len(f) for f in prepared.train.files] == [shortest, shortest]


def test_tail_silence_ms_is_checked() -> None:
    with pytest.raises(wavenet.ConfigError, match="tail_silence_ms"):
        wavenet.DataConfig(tail_silence_ms=-1.0)
    assert wavenet.DataConfig().tail_silence_ms == 50.0

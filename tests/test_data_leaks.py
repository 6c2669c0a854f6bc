"""Data that must not be trained on, and folders that must not vanish without a word:
validation files inside the training folder, other runs' output inside it, hidden folders,
speaker names in another Unicode normal form, a run folder that is the data folder."""

from __future__ import annotations

import errno
import logging
import os
import unicodedata
from pathlib import Path

import pytest
from audio_fixtures import make_audio_folder
from click.testing import CliRunner
from helpers import write_chord

import wavenet.train.loop
from wavenet.config import load_config
from wavenet.data.prepare import DataError, load_encoded, prepare_data
from wavenet.util.files import atomic_write_bytes
from wavenet_cli.main import main


def names(files) -> list[str]:
    return sorted(f.path.name for f in files)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def chords(folder: Path, *stems: str) -> None:
    """One chord file per stem, `folder/<stem>.wav`."""
    for i, stem in enumerate(stems):
        write_chord(folder / "tmp", files=1, seed=i)
        target = folder / f"{stem}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        (folder / "tmp" / "chord 0.wav").rename(target)
    (folder / "tmp").rmdir()


# ------------------------------------------------------------- --val-data and --data


def test_val_data_equal_to_data_is_refused(tmp_path: Path) -> None:
    """--val-data = --data trained on every validation file (the bits were no held-out
    figure at all)."""
    chords(tmp_path / "data", "a", "b", "c")
    config = load_config("tiny")
    for val in (tmp_path / "data", tmp_path / "data" / ".." / "data"):
        with pytest.raises(
            DataError,
            match=r"^--val-data .* is --data .*: every validation "
            r"file would be trained on",
        ):
            prepare_data(config, tmp_path / "data", val_data=val, cache_dir=tmp_path / "cache")
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            str(tmp_path / "data"),
            "--val-data",
            str(tmp_path / "data"),
            "--out",
            str(tmp_path / "run"),
            "--config",
            "tiny",
            "--steps",
            "1",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_data_inside_val_data_is_refused(tmp_path: Path) -> None:
    chords(tmp_path / "all", "a", "b")
    chords(tmp_path / "all" / "train", "c", "d")
    with pytest.raises(DataError, match=r"^--data .* lies inside --val-data"):
        prepare_data(
            load_config("tiny"),
            tmp_path / "all" / "train",
            val_data=tmp_path / "all",
            cache_dir=tmp_path / "cache",
        )


def test_val_data_inside_data_is_left_out_of_training(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """data/ holding data/val/: the validation files were trained on too."""
    chords(tmp_path / "data", "a", "b")
    chords(tmp_path / "data" / "val", "c")
    with caplog.at_level(logging.WARNING, logger="wavenet"):
        prepared = prepare_data(
            load_config("tiny"),
            tmp_path / "data",
            val_data=tmp_path / "data" / "val",
            cache_dir=tmp_path / "cache",
        )
    assert names(prepared.train.files) == ["a.wav", "b.wav"]
    assert names(prepared.val.files) == ["c.wav"]
    assert warnings(caplog) == [
        (
            f"--val-data {tmp_path / 'data' / 'val'} lies inside --data "
            f"{tmp_path / 'data'}: its files are held out of training"
        )
    ]


# --------------------------------------------------------------- other runs' output


def fake_run_folder(run: Path) -> None:
    """What a run folder holds: config.json, checkpoints/, samples/*.wav (model output)."""
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (run / "checkpoints" / "last.pt").write_bytes(b"")
    make_audio_folder(run / "samples", count=2)


def test_other_run_folders_inside_data_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An old run inside --data: its samples (model output) became training data."""
    make_audio_folder(tmp_path / "data", count=2)
    fake_run_folder(tmp_path / "data" / "runs" / "old")
    (tmp_path / "data" / "notes").mkdir()
    (tmp_path / "data" / "notes" / "config.json").write_text("{}")  # not a run: no checkpoints/
    make_audio_folder(tmp_path / "data" / "notes", count=1)
    with caplog.at_level(logging.WARNING, logger="wavenet"):
        encoded = load_encoded(tmp_path / "data", sample_rate=8000, cache_dir=tmp_path / "cache")
    run = tmp_path / "data" / "runs" / "old"
    assert sorted(f.path.relative_to(tmp_path / "data").as_posix() for f in encoded) == [
        "clip00.wav",
        "clip01.wav",
        "notes/clip00.wav",
    ]
    assert warnings(caplog) == [
        (
            f"skipping {run}: a wavenet run folder (config.json and "
            f"checkpoints/); its audio is model output, not data"
        )
    ]
    # The run's own folder (--out inside --data) is left out without a warning.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="wavenet"):
        load_encoded(
            tmp_path / "data", sample_rate=8000, cache_dir=tmp_path / "cache", exclude=[run]
        )
    assert warnings(caplog) == []


# ---------------------------------------------------------------- hidden, Unicode


def test_hidden_folders_with_audio_are_named_in_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`.speaker/` folders were dropped without a word."""
    make_audio_folder(tmp_path / "data" / "anna", count=1)
    make_audio_folder(tmp_path / "data" / ".bert", count=1)
    (tmp_path / "data" / ".git").mkdir()  # no audio: nothing to say
    (tmp_path / "data" / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    with caplog.at_level(logging.WARNING, logger="wavenet"):
        encoded = load_encoded(tmp_path / "data", sample_rate=8000, cache_dir=tmp_path / "cache")
    assert [f.path.parent.name for f in encoded] == ["anna"]
    assert warnings(caplog) == [
        (
            f"{tmp_path / 'data' / '.bert'} holds audio but is not "
            f"read: folders whose name starts with '.' are hidden"
        )
    ]


def test_speaker_names_compare_in_nfc(tmp_path: Path) -> None:
    """macOS writes `é` as e + combining accent (NFD): the checkpoint's `é` (NFC, as typed)
    was an unknown speaker folder."""
    nfc, nfd = "Ren\u00e9e", unicodedata.normalize("NFD", "Ren\u00e9e")
    assert nfc != nfd
    make_audio_folder(tmp_path / "data" / nfd, count=2, seconds=1.0)
    make_audio_folder(tmp_path / "data" / "zoe", count=2, seconds=1.0)
    config = load_config("tiny")
    prepared = prepare_data(
        config, tmp_path / "data", speakers=["zoe", nfc], cache_dir=tmp_path / "cache"
    )
    assert prepared.speakers == ["zoe", nfc]
    assert prepared.train.global_ids is not None and prepared.val.global_ids is not None
    ids = prepared.train.global_ids + prepared.val.global_ids
    files = prepared.train.files + prepared.val.files
    assert {f.path.parent.name: i for f, i in zip(files, ids)} == {nfd: 1, "zoe": 0}
    # A new run's names are stored in NFC, so that a name typed later matches.
    prepared = prepare_data(
        config, tmp_path / "data", speakers_from_folders=True, cache_dir=tmp_path / "cache"
    )
    assert prepared.speakers == [nfc, "zoe"]


# ------------------------------------------------------------------- --out, full disk


@pytest.mark.parametrize("out", [".", "../data"])
def test_out_equal_to_data_is_refused_creating_nothing(tmp_path: Path, out: str) -> None:
    """--out = --data said "no audio files" and left train.lock in the data folder."""
    data = tmp_path / "data"
    make_audio_folder(data, count=2)
    before = sorted(p.name for p in data.iterdir())
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            str(data),
            "--out",
            str(data / out),
            "--config",
            "tiny",
            "--steps",
            "1",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "--data" in line and "--out" in line and "no audio" not in line
    assert sorted(p.name for p in data.iterdir()) == before


class FullDisk:
    def __init__(self, handle) -> None:
        self._handle = handle

    def write(self, data) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str):
        return getattr(self._handle, name)


@pytest.mark.parametrize("where", ["config.json", "train.lock"])
def test_a_full_disk_at_start_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """The line was `[Errno 28] No space left on device`, naming no path."""
    if where == "config.json":
        monkeypatch.setattr(
            wavenet.train.loop,
            "atomic_write_bytes",
            lambda path, write: atomic_write_bytes(path, lambda h: write(FullDisk(h))),
        )
    else:

        def pwrite(fd: int, data: bytes, offset: int) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "pwrite", pwrite)  # what runlock writes its holder with
    data = write_chord(tmp_path / "data", files=2)
    run = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            str(data),
            "--out",
            str(run),
            "--config",
            "tiny",
            "--steps",
            "1",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines() == [
        f"Error: cannot write {run / where}: {os.strerror(errno.ENOSPC)}"
    ]

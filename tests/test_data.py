"""Data pipeline: finding, decoding, skipping bad files, caching, splitting, cropping."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import soundfile as sf
import torch
from audio_fixtures import make_audio_folder, sine, write_audio, write_text_as, write_truncated

import wavenet.data.cache as cache
import wavenet.data.prepare as data
from wavenet import mu_law_encode
from wavenet.data.audio import trim_silent_edges
from wavenet.data.crops import Batch, CropSampler, inputs_and_targets, item_length
from wavenet.data.prepare import (
    AudioDecodeError,
    DataError,
    EncodedFile,
    EncodedSet,
    decode_audio,
    find_audio_files,
    load_encoded,
    silence_code,
    split_by_file,
)

HAS_MP3 = "MP3" in sf.available_formats()


def load(source: Path | list[Path], cache: Path, **kwargs: object) -> EncodedSet:
    options: dict[str, object] = {"sample_rate": 8000, "cache_dir": cache}
    options.update(kwargs)
    return load_encoded(source, **options)  # type: ignore[arg-type]


def encoded_set(*arrays: np.ndarray, q: int = 256) -> EncodedSet:
    files = tuple(
        EncodedFile(Path(f"f{i}.wav"), a, quantization_channels=q) for i, a in enumerate(arrays)
    )
    return EncodedSet(files=files, sample_rate=8000, quantization_channels=q, root=Path("."))


def as_files(files: EncodedSet | Sequence[EncodedFile]) -> Sequence[EncodedFile]:
    """The same object, typed as what CropSampler's `files` is annotated to take: it
    documents (and accepts) an EncodedSet, which is no Sequence subclass."""
    return cast(Sequence[EncodedFile], files)


# ----------------------------------------------------------------------------- find


def test_find_is_recursive_sorted_case_blind_and_skips_hidden(tmp_path: Path) -> None:
    tone = sine(440, 0.01, 8000)
    names = [
        "b.wav",
        "A with space.WAV",
        "sub dir/c.Flac",
        "sub dir/deeper/d.ogg",
        "z/e.AIFF",
        "z/f.aif",
        "z/g.au",
        "z/h.caf",
        "z/i.w64",
        "z/j.oga",
    ]
    formats = {".ogg": "OGG", ".oga": "OGG", ".aif": "AIFF", ".w64": "W64"}
    for name in names:
        suffix = Path(name).suffix.lower()
        write_audio(tmp_path / name, tone, 8000, format=formats.get(suffix))
    write_audio(tmp_path / ".hidden.wav", tone, 8000)
    write_audio(tmp_path / "._b.wav", tone, 8000)
    write_audio(tmp_path / ".git" / "k.wav", tone, 8000)
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / "folder.wav").mkdir()

    found = find_audio_files(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "A with space.WAV",
        "b.wav",
        "sub dir/c.Flac",
        "sub dir/deeper/d.ogg",
        "z/e.AIFF",
        "z/f.aif",
        "z/g.au",
        "z/h.caf",
        "z/i.w64",
        "z/j.oga",
    ]
    assert found == find_audio_files(str(tmp_path))
    assert all(len(decode_audio(p, 8000)) == len(tone) for p in found)


def test_find_missing_folder_and_single_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        find_audio_files(tmp_path / "nope")
    clip = write_audio(tmp_path / "x.wav", sine(440, 0.01, 8000), 8000)
    assert find_audio_files(clip) == [clip]
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataError, match="not a folder or an audio file"):
        find_audio_files(tmp_path / "x.txt")


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_find_survives_a_symlink_loop(tmp_path: Path) -> None:
    write_audio(tmp_path / "a" / "x.wav", sine(440, 0.01, 8000), 8000)
    try:
        os.symlink(tmp_path, tmp_path / "a" / "loop")
    except OSError:
        pytest.skip("cannot make symlinks here")
    assert [p.name for p in find_audio_files(tmp_path)] == ["x.wav"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_file_linked_twice_is_found_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A symlink or hard link to a file of the folder listed the same audio twice: trained
    on twice as often, and as likely as not split into training and validation both."""
    clips = make_audio_folder(tmp_path / "data", count=2)
    try:
        os.symlink(clips[0], tmp_path / "data" / "z link.wav")
        os.link(clips[1], tmp_path / "data" / "hard.wav")
    except OSError:
        pytest.skip("cannot make links here")
    with caplog.at_level(logging.WARNING, logger="wavenet"):
        found = find_audio_files(tmp_path / "data")
    assert [p.name for p in found] == ["clip00.wav", "clip01.wav"]
    assert "clip01.wav is a second name of" not in caplog.text
    assert f"{tmp_path / 'data' / 'z link.wav'} is a second name of {clips[0]}" in caplog.text
    assert f"{tmp_path / 'data' / 'hard.wav'} is a second name of {clips[1]}" in caplog.text
    encoded = load(tmp_path / "data", tmp_path / "cache", min_length=100)
    assert len(encoded) == 2 and encoded.skipped == ()


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_broken_link_is_named_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A link to a moved or deleted file was passed over without a word."""
    make_audio_folder(tmp_path / "data", count=1)
    try:
        os.symlink(tmp_path / "gone.wav", tmp_path / "data" / "moved.wav")
    except OSError:
        pytest.skip("cannot make symlinks here")
    with caplog.at_level(logging.WARNING, logger="wavenet"):
        found = find_audio_files(tmp_path / "data")
    assert [p.name for p in found] == ["clip00.wav"]
    assert (
        f"{tmp_path / 'data' / 'moved.wav'} is not a readable file (a broken link?); skipped"
        in caplog.text
    )


# --------------------------------------------------------------------------- decode

# (format, subtype, extension, largest allowed sample error)
LOSSLESS = [
    ("WAV", "PCM_U8", "wav", 1 / 128 + 1e-6),
    ("WAV", "PCM_16", "wav", 1 / 32768 + 1e-6),
    ("WAV", "PCM_24", "wav", 1e-6),
    ("WAV", "FLOAT", "wav", 0.0),
    ("FLAC", "PCM_16", "flac", 1 / 32768 + 1e-6),
    ("FLAC", "PCM_24", "flac", 1e-6),
    ("AIFF", "PCM_16", "aiff", 1 / 32768 + 1e-6),
    ("AU", "PCM_16", "au", 1 / 32768 + 1e-6),
    ("CAF", "PCM_24", "caf", 1e-6),
    ("W64", "PCM_16", "w64", 1 / 32768 + 1e-6),
]


@pytest.mark.parametrize(
    "fmt, subtype, ext, tolerance", LOSSLESS, ids=[f"{f}-{s}" for f, s, _, _ in LOSSLESS]
)
def test_lossless_formats_decode_to_what_was_written(
    tmp_path: Path, fmt: str, subtype: str, ext: str, tolerance: float
) -> None:
    tone = sine(440, 0.25, 16000, amplitude=0.7)
    path = write_audio(tmp_path / f"x.{ext}", tone, 16000, subtype, fmt)
    decoded = decode_audio(path, 16000)
    assert decoded.dtype == np.float32 and decoded.shape == tone.shape
    assert np.abs(decoded - tone).max() <= tolerance


def test_unsigned_8_bit_is_centred_on_zero(tmp_path: Path) -> None:
    values = np.array([0.0, 0.5, -0.5, 0.0], dtype=np.float32).repeat(100)
    decoded = decode_audio(write_audio(tmp_path / "u8.wav", values, 8000, "PCM_U8"), 8000)
    assert np.abs(decoded - values).max() <= 1 / 128


@pytest.mark.parametrize(
    "fmt, subtype, ext",
    [
        ("OGG", "VORBIS", "ogg"),
        pytest.param(
            "MP3",
            "MPEG_LAYER_III",
            "mp3",
            marks=pytest.mark.skipif(not HAS_MP3, reason="libsndfile without mp3"),
        ),
    ],
)
def test_lossy_formats_decode_close_to_what_was_written(
    tmp_path: Path, fmt: str, subtype: str, ext: str
) -> None:
    tone = sine(440, 0.5, 16000)
    decoded = decode_audio(write_audio(tmp_path / f"x.{ext}", tone, 16000, subtype, fmt), 16000)
    assert abs(len(decoded) - len(tone)) <= 1200  # codec padding, if any
    n = min(len(decoded), len(tone))
    assert np.corrcoef(decoded[:n], tone[:n])[0, 1] > 0.99


def test_stereo_is_mixed_to_mono(tmp_path: Path) -> None:
    left, right = sine(440, 0.1, 8000, 0.6), sine(660, 0.1, 8000, 0.2)
    path = write_audio(tmp_path / "s.wav", np.stack([left, right], axis=1), 8000, "FLOAT")
    np.testing.assert_allclose(decode_audio(path, 8000), (left + right) / 2, atol=1e-7)


def test_upsampling_keeps_length_ratio_and_pitch(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "8k.wav", sine(440, 1.0, 8000), 8000, "PCM_16")
    decoded = decode_audio(path, 16000)
    assert len(decoded) == 16000
    spectrum = np.abs(np.fft.rfft(decoded))
    assert np.argmax(spectrum) * 16000 / len(decoded) == pytest.approx(440, abs=1)
    assert np.abs(decoded).max() == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("rate", [11025, 22050, 44100, 48000, 12345])
def test_any_sample_rate_resamples_to_the_right_length(tmp_path: Path, rate: int) -> None:
    tone = sine(300, 0.5, rate)
    path = write_audio(tmp_path / "x.wav", tone, rate, "PCM_16")
    decoded = decode_audio(path, 16000)
    assert len(decoded) == round(len(tone) * 16000 / rate)  # 7999 for 5512 at 11025 Hz
    spectrum = np.abs(np.fft.rfft(decoded))
    assert np.argmax(spectrum) * 16000 / len(decoded) == pytest.approx(300, abs=2)


def test_nearly_coprime_rates_resample_exactly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """torchaudio's polyphase kernel grew with the product of two nearly coprime rates (96001
    -> 16000 Hz needed 6 GB, so such files were read at a rate moved by up to 0.1%); libsoxr
    resamples them exactly, with no warning, the tone at its own pitch."""
    path = write_audio(tmp_path / "odd.wav", sine(300, 0.5, 96001), 96001, "PCM_16")
    with caplog.at_level(logging.WARNING, logger="wavenet"):
        decoded = decode_audio(path, 16000)
    assert len(decoded) == round(48000 * 16000 / 96001) == 8000
    spectrum = np.abs(np.fft.rfft(decoded * np.hanning(len(decoded)), 16 * len(decoded)))
    assert np.argmax(spectrum) * 16000 / (16 * len(decoded)) == pytest.approx(300, abs=0.5)
    assert caplog.text == ""


def test_resampling_removes_what_the_new_rate_cannot_hold() -> None:
    """44.1 -> 16 kHz: a 7 kHz tone (inside the new band) keeps its level; a 10 kHz tone
    (above 8 kHz, the new Nyquist frequency) is filtered out, not aliased."""
    from wavenet.data.audio import resample

    t = np.arange(44100) / 44100
    kept = resample((0.5 * np.sin(2 * np.pi * 7000 * t)).astype(np.float32), 44100, 16000)
    gone = resample((0.5 * np.sin(2 * np.pi * 10000 * t)).astype(np.float32), 44100, 16000)
    assert kept.dtype == np.float32 and len(kept) == 16000

    def rms(x: np.ndarray) -> float:
        return float(np.sqrt(np.mean(x[1000:-1000].astype(np.float64) ** 2)))

    assert rms(kept) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)
    assert 20 * np.log10(rms(gone) / (0.5 / np.sqrt(2))) < -80


def test_decode_reasons(tmp_path: Path) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioDecodeError, match="empty") as caught:
        decode_audio(tmp_path / "empty.wav", 8000)
    assert caught.value.path == tmp_path / "empty.wav"
    with pytest.raises(AudioDecodeError, match="cannot decode"):
        decode_audio(write_text_as(tmp_path / "text.wav"), 8000)
    with pytest.raises(AudioDecodeError, match="cannot read"):
        decode_audio(tmp_path / "missing.wav", 8000)
    bad = np.array([0.1, np.nan, 0.2], dtype=np.float32)
    with pytest.raises(AudioDecodeError, match="NaN"):
        decode_audio(write_audio(tmp_path / "nan.wav", bad, 8000, "FLOAT"), 8000)


def test_float_files_beyond_full_scale(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Integer sample values written as floats (peaks in the thousands) used to be clipped
    to a full-scale square wave and trained on without a word; a file a little over full
    scale is still used, with a warning."""
    tone = sine(220, 0.25, 8000)
    unscaled = write_audio(tmp_path / "unscaled.wav", tone * 32767, 8000, "FLOAT")
    with pytest.raises(
        AudioDecodeError,
        match=r"unscaled.wav: samples reach 1\.638e\+04, "
        r"far beyond full scale",
    ):
        decode_audio(unscaled, 8000)
    hot = write_audio(tmp_path / "hot.wav", tone * 2.5, 8000, "FLOAT")  # peak 1.25
    with caplog.at_level(logging.WARNING, logger="wavenet"):
        np.testing.assert_array_equal(decode_audio(hot, 8000), tone * 2.5)
    assert "hot.wav peaks at 1.250, 1.9 dB over full scale" in caplog.text
    encoded = load(tmp_path, tmp_path / "cache")
    assert [f.path.name for f in encoded.files] == ["hot.wav"]
    assert [(p.name, "far beyond full scale" in why) for p, why in encoded.skipped] == [
        ("unscaled.wav", True)
    ]


def test_wav_cut_in_the_middle_reads_the_frames_that_are_there(tmp_path: Path) -> None:
    tone = sine(440, 0.5, 8000)
    full = write_audio(tmp_path / "full.wav", tone, 8000, "PCM_16")
    cut = write_truncated(full, tmp_path / "cut.wav", 44 + 2 * 1000)  # header + 1000 frames
    np.testing.assert_allclose(decode_audio(cut, 8000), tone[:1000], atol=1 / 32768 + 1e-6)


@pytest.mark.skipif(not HAS_MP3, reason="libsndfile without mp3")
def test_mp3_cut_in_the_middle_reads_the_frames_there_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    full = write_audio(tmp_path / "full.mp3", sine(440, 1.0, 16000), 16000, "MPEG_LAYER_III")
    cut = write_truncated(full, tmp_path / "cut.mp3", 0.5)
    with caplog.at_level(logging.WARNING, logger="wavenet"):
        decoded = decode_audio(cut, 16000)
    assert 0 < len(decoded) < 16000
    assert "cut.mp3" in caplog.text and "shorter than its header" in caplog.text


# ------------------------------------------------------------------- load and skip


def test_bad_files_are_skipped_with_a_warning_naming_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "audio"
    good = make_audio_folder(folder, count=2)
    (folder / "zero.wav").write_bytes(b"")
    write_text_as(folder / "text.wav")
    write_truncated(good[0], folder / "header cut.wav", 20)
    flac = write_audio(tmp_path / "x.flac", sine(440, 1.0, 8000), 8000, "PCM_16")
    write_truncated(flac, folder / "cut.flac", 0.5)
    write_audio(folder / "short.wav", sine(440, 0.001, 8000), 8000, "PCM_16")  # 8 samples

    calls: list[tuple[int, int]] = []
    with caplog.at_level(logging.WARNING, logger="wavenet"):
        encoded = load(
            folder,
            tmp_path / "cache",
            min_length=100,
            progress=lambda done, total: calls.append((done, total)),
        )
    assert [f.path for f in encoded.files] == good
    reasons = {path.name: reason for path, reason in encoded.skipped}
    assert set(reasons) == {"zero.wav", "text.wav", "header cut.wav", "cut.flac", "short.wav"}
    assert "empty" in reasons["zero.wav"]
    assert "too short: 8 samples" in reasons["short.wav"]
    for name in reasons:
        assert any(name in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert calls == [(i, 7) for i in range(1, 8)]
    assert encoded.total_samples == 2 * 4000
    assert encoded.duration == pytest.approx(1.0)


@pytest.mark.parametrize("coding", ["mu-law", "pcm16"])
def test_silent_and_constant_files_are_skipped(tmp_path: Path, coding: str) -> None:
    """A file of digital silence (or of one constant value) was trained on and, held out,
    scored near 0 bits, pulling the validation figure down; it is now skipped with its
    reason, from the cache too, and from a cache entry written before the check."""
    folder = tmp_path / "audio"
    good = make_audio_folder(folder, count=1)
    write_audio(folder / "silence.wav", np.zeros(4000, np.float32), 8000, "PCM_16")
    write_audio(folder / "dc.wav", np.full(4000, 0.25, np.float32), 8000, "PCM_16")
    for attempt in ("decoded", "cached", "old cache entry"):
        if attempt == "old cache entry":
            for meta in (tmp_path / "cache").glob("*/*.json"):
                entry = json.loads(meta.read_text())
                del entry["constant_code"]
                meta.write_text(json.dumps(entry))
        encoded = load(folder, tmp_path / "cache", min_length=100, coding=coding)
        assert [f.path for f in encoded.files] == good, attempt
        reasons = {path.name: reason for path, reason in encoded.skipped}
        assert reasons["silence.wav"] == "silent: every sample codes to silence, nothing to learn"
        assert reasons["dc.wav"].startswith("constant: every sample is code ")
    with pytest.raises(DataError, match="no usable audio"):
        load([folder / "silence.wav"], tmp_path / "cache")


def test_all_bad_missing_or_empty_folder_raises(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    (folder).mkdir()
    (folder / "zero.wav").write_bytes(b"")
    write_text_as(folder / "text.wav")
    with pytest.raises(DataError, match=r"no usable audio in .*bad \(2 files skipped"):
        load(folder, tmp_path / "cache")
    with pytest.raises(DataError, match="not found"):
        load(tmp_path / "missing", tmp_path / "cache")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no audio files in"):
        load(tmp_path / "empty", tmp_path / "cache")
    with pytest.raises(DataError, match="no audio files given"):
        load([], tmp_path / "cache")


def test_list_of_paths_missing_one_is_skipped(tmp_path: Path) -> None:
    clips = make_audio_folder(tmp_path / "a", count=2)
    encoded = load([*clips, tmp_path / "gone.wav"], tmp_path / "cache")
    assert [f.path for f in encoded.files] == clips
    assert encoded.skipped[0][0].name == "gone.wav" and "cannot read" in encoded.skipped[0][1]
    assert encoded.root == (tmp_path / "a").resolve()


@pytest.mark.parametrize("q, dtype", [(256, np.uint8), (1024, np.uint16), (16, np.uint8)])
def test_codes_are_mu_law_of_the_audio_in_a_small_dtype(
    tmp_path: Path, q: int, dtype: type
) -> None:
    tone = sine(440, 0.1, 8000, amplitude=0.9)
    path = write_audio(tmp_path / "a" / "x.wav", tone, 8000, "PCM_24")
    codes = load(tmp_path / "a", tmp_path / "cache", quantization_channels=q).files[0].codes
    assert codes.dtype == dtype
    expected = mu_law_encode(torch.from_numpy(tone), q).numpy()
    assert np.abs(codes.astype(np.int64) - expected).max() <= 1
    assert path.exists()


# ---------------------------------------------------------------------------- cache


def counting_decoder(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Count the files the data pipeline decodes (it streams them: `stream_audio`)."""
    calls: list[Path] = []
    real = data.stream_audio

    def counted(path: Path, sample_rate: int) -> Iterator[np.ndarray]:
        calls.append(Path(path))
        return real(path, sample_rate)

    monkeypatch.setattr(data, "stream_audio", counted)
    return calls


def test_second_load_comes_from_the_cache_without_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_audio_folder(tmp_path / "a", count=3)
    first = load(tmp_path / "a", tmp_path / "cache")

    def fail(path: Path, sample_rate: int) -> Iterator[np.ndarray]:
        raise AssertionError(f"decoded {path} despite the cache")

    monkeypatch.setattr(data, "stream_audio", fail)
    second = load(tmp_path / "a", tmp_path / "cache")
    assert [f.path for f in second.files] == [f.path for f in first.files]
    for a, b in zip(first.files, second.files):
        assert isinstance(b.codes, np.memmap) and not b.codes.flags.writeable
        np.testing.assert_array_equal(a.codes, b.codes)
    leftovers = [p.name for p in (tmp_path / "cache").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_cache_misses_when_the_file_or_a_setting_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clips = make_audio_folder(tmp_path / "a", count=2)
    cache = tmp_path / "cache"
    load(tmp_path / "a", cache)
    calls = counting_decoder(monkeypatch)

    write_audio(clips[0], sine(1000, 0.5, 8000), 8000, "PCM_16")  # same size, new content
    stamp = clips[0].stat().st_mtime_ns + 5 * 10**9
    os.utime(clips[0], ns=(stamp, stamp))
    changed = load(tmp_path / "a", cache)
    assert calls == [clips[0]]
    expected = mu_law_encode(torch.from_numpy(decode_audio(clips[0], 8000))).numpy()
    np.testing.assert_array_equal(changed.files[0].codes, expected)

    calls.clear()
    assert len(load(tmp_path / "a", cache, sample_rate=16000).files[0]) == 8000
    assert calls == clips
    calls.clear()
    load(tmp_path / "a", cache, quantization_channels=512)
    assert calls == clips
    calls.clear()
    load(tmp_path / "a", cache, trim_silence=True)
    assert calls == clips
    calls.clear()
    load(tmp_path / "a", cache, trim_silence=True, silence_threshold_db=-30.0)
    assert calls == clips
    calls.clear()
    load(tmp_path / "a", cache, min_length=50)  # not part of the key
    assert calls == []


def test_cache_misses_a_file_replaced_with_the_same_size_and_mtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cp -p`, `rsync -t` and `tar` give a replaced file its old mtime: with the same size
    the key (path, size, mtime) was the same and the stale codes were trained on."""
    clips = make_audio_folder(tmp_path / "a", count=2)
    cache = tmp_path / "cache"
    before = np.array(load(tmp_path / "a", cache).files[0].codes)
    stat = clips[0].stat()
    calls = counting_decoder(monkeypatch)
    write_audio(clips[0], sine(1000, 0.5, 8000), 8000, "PCM_16")  # same size, new content
    os.utime(clips[0], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (clips[0].stat().st_size, clips[0].stat().st_mtime_ns) == (
        stat.st_size,
        stat.st_mtime_ns,
    )
    changed = load(tmp_path / "a", cache)
    assert calls == [clips[0]]
    expected = mu_law_encode(torch.from_numpy(decode_audio(clips[0], 8000))).numpy()
    assert not np.array_equal(before, expected)
    np.testing.assert_array_equal(changed.files[0].codes, expected)


def test_hifigan_mel_cache_misses_a_file_replaced_with_the_same_size_and_mtime(
    tmp_path: Path,
) -> None:
    from wavenet.config import MelConfig
    from wavenet.data.features import hifigan_log_mel

    mel = MelConfig(
        n_mels=20, n_fft=256, hop_length=64, win_length=256, f_max=4000.0, format="hifigan"
    )
    (clip,) = make_audio_folder(tmp_path / "a", count=1)
    cache = tmp_path / "cache"

    def features() -> np.ndarray:
        files = load(tmp_path / "a", cache).files
        return data.mel_features(files, sample_rate=8000, mel=mel, cache_dir=cache)[0]

    before = features()
    stat = clip.stat()
    write_audio(clip, sine(1000, 0.5, 8000), 8000, "PCM_16")
    os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    expected = hifigan_log_mel(torch.from_numpy(decode_audio(clip, 8000)), 8000, mel).numpy()
    assert not np.allclose(before, expected)
    np.testing.assert_array_equal(features(), expected)


def test_damaged_cache_entry_is_decoded_again(tmp_path: Path) -> None:
    make_audio_folder(tmp_path / "a", count=1)
    cache = tmp_path / "cache"
    expected = np.array(load(tmp_path / "a", cache).files[0].codes)
    (npy,) = list(cache.rglob("*.npy"))
    npy.unlink()  # never rewrite a mapped file in place: its maps would fault (SIGBUS)
    npy.write_bytes(b"garbage")
    again = load(tmp_path / "a", cache)
    np.testing.assert_array_equal(again.files[0].codes, expected)


def test_unwritable_cache_warns_and_keeps_codes_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_audio_folder(tmp_path / "a", count=2)
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should go")
    with caplog.at_level(logging.WARNING, logger="wavenet"):
        encoded = load(tmp_path / "a", blocker)
    assert len(encoded.files) == 2 and not isinstance(encoded.files[0].codes, np.memmap)
    assert sum("cannot write the audio cache" in r.getMessage() for r in caplog.records) == 1


def test_default_cache_dir_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WAVENET_CACHE_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache.default_cache_dir() == tmp_path / "w"
    monkeypatch.delenv("WAVENET_CACHE_DIR")
    assert cache.default_cache_dir() == tmp_path / "x" / "wavenet"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.default_cache_dir() == tmp_path / "home" / ".cache" / "wavenet"
    monkeypatch.setenv("WAVENET_CACHE_DIR", str(tmp_path / "w"))
    make_audio_folder(tmp_path / "a", count=1)
    load_encoded(tmp_path / "a", sample_rate=8000)
    assert list((tmp_path / "w").rglob("*.npy"))


def test_many_files_beyond_the_map_budget_are_read_into_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i, seconds in enumerate([0.1, 0.3, 0.2]):
        write_audio(tmp_path / "a" / f"{i}.wav", sine(440, seconds, 8000), 8000, "PCM_16")
    monkeypatch.setattr(cache, "_open_budget", lambda: 1)
    encoded = load(tmp_path / "a", tmp_path / "cache")
    assert [isinstance(f.codes, np.memmap) for f in encoded.files] == [False, True, False]
    assert [len(f) for f in encoded.files] == [800, 2400, 1600]


# ------------------------------------------------------------------------- trimming


def test_trim_silent_edges() -> None:
    x = np.array([0.0, 0.001, 0.5, 0.0, -0.2, 0.002, 0.0], dtype=np.float32)
    np.testing.assert_array_equal(trim_silent_edges(x, -40.0), x[2:5])  # threshold 0.01
    np.testing.assert_array_equal(trim_silent_edges(x, -10.0), x[2:3])  # threshold 0.32
    assert len(trim_silent_edges(np.zeros(10, np.float32), -50.0)) == 0


def test_trimming_when_loading(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    silence = np.zeros(4000, dtype=np.float32)
    tone = sine(440, 0.25, 8000, phase=np.pi / 2)  # starts and ends loud
    write_audio(
        tmp_path / "a" / "padded.wav",
        np.concatenate([silence, tone, silence[:2000]]),
        8000,
        "FLOAT",
    )
    write_audio(tmp_path / "a" / "quiet.wav", sine(440, 0.5, 8000, amplitude=0.001), 8000, "FLOAT")
    cache = tmp_path / "cache"
    untrimmed = load(tmp_path / "a", cache, min_length=100)
    assert [len(f) for f in untrimmed.files] == [8000, 4000]
    with caplog.at_level(logging.WARNING, logger="wavenet"):
        trimmed = load(tmp_path / "a", cache, min_length=100, trim_silence=True)
    (padded,) = trimmed.files
    assert abs(len(padded) - len(tone)) <= 2
    assert trimmed.skipped[0][0].name == "quiet.wav"
    assert "after trimming silence" in trimmed.skipped[0][1]
    assert any(
        "quiet.wav" in r.getMessage() and "trimming" in r.getMessage() for r in caplog.records
    )


# ---------------------------------------------------------------------------- split


def test_split_by_file_is_deterministic_disjoint_and_order_free(tmp_path: Path) -> None:
    files = tuple(
        EncodedFile(tmp_path / f"{i:02d}.wav", np.zeros(10 + i, np.uint8)) for i in range(20)
    )
    encoded = EncodedSet(files, 8000, 256, root=tmp_path)
    train, val = split_by_file(encoded, 0.2, seed=3)
    assert len(val) == 4 and len(train) == 16
    names = lambda s: [f.path.name for f in s.files]  # noqa: E731
    assert set(names(train)).isdisjoint(names(val))
    assert sorted(names(train) + names(val)) == names(encoded)
    assert names(train) == sorted(names(train))  # original order kept
    again = split_by_file(encoded, 0.2, seed=3)
    assert names(again[1]) == names(val)
    shuffled = EncodedSet(files[::-1], 8000, 256, root=tmp_path)
    assert sorted(names(split_by_file(shuffled, 0.2, seed=3)[1])) == names(val)
    others = {tuple(names(split_by_file(encoded, 0.2, seed=s)[1])) for s in range(5)}
    assert len(others) > 1


def test_split_keeps_one_file_on_each_side(tmp_path: Path) -> None:
    pair = encoded_set(np.zeros(10, np.uint8), np.ones(10, np.uint8))
    for fraction in (0.01, 0.5, 0.99):
        train, val = split_by_file(pair, fraction, seed=0)
        assert len(train) == 1 and len(val) == 1
    train, val = split_by_file(pair, 0.0, seed=0)
    assert len(train) == 2 and len(val) == 0 and not val
    assert [f.path.name for f in train] == ["f0.wav", "f1.wav"] and train[1] is pair.files[1]
    with pytest.raises(ValueError):
        split_by_file(pair, 1.0, seed=0)


def test_split_of_a_single_file_is_in_time() -> None:
    codes = np.arange(100, dtype=np.uint8)
    only = EncodedSet((EncodedFile(Path("a.wav"), codes),), 8000, 256, min_length=10)
    train, val = split_by_file(only, 0.25, seed=0)
    np.testing.assert_array_equal(train.files[0].codes, codes[:75])
    np.testing.assert_array_equal(val.files[0].codes, codes[75:])
    assert val.files[0].start == 75
    with pytest.raises(DataError, match="only one usable file"):
        split_by_file(only, 0.05, seed=0)  # 5 validation samples < min_length 10


# ---------------------------------------------------------------------------- crops


def test_item_layout() -> None:
    assert item_length(context=4, target_length=3) == 8
    items = torch.arange(16).reshape(2, 8)
    inputs, targets = inputs_and_targets(items, context=4)
    assert inputs.tolist() == [list(range(7)), list(range(8, 15))]
    assert targets.tolist() == [[5, 6, 7], [13, 14, 15]]
    # position t of the input predicts code t + 1; the first scored position is C
    assert inputs[:, 4:].shape == targets.shape
    assert torch.equal(inputs[:, 4:] + 1, targets)
    with pytest.raises(ValueError):
        inputs_and_targets(items, context=7)


def test_item_layout_every_position_scored() -> None:
    assert item_length(context=0, target_length=3) == 4
    items = torch.arange(8).reshape(2, 4)
    inputs, targets = inputs_and_targets(items, context=0)
    assert torch.equal(inputs + 1, targets)
    assert targets.tolist() == [[1, 2, 3], [5, 6, 7]]


def test_crops_are_windows_of_the_files_reproducible_and_in_range() -> None:
    ramp = (np.arange(3000) % 251).astype(np.uint8)
    encoded = encoded_set(ramp, (np.arange(500) % 3 + 252).astype(np.uint8))
    sampler = CropSampler(as_files(encoded), 64, torch.Generator().manual_seed(1))
    batch = sampler.batch(16)
    assert isinstance(batch, Batch) and batch.global_ids is None and batch.mel is None
    assert batch.codes.shape == (16, 64) and batch.codes.dtype == torch.long
    assert 0 <= batch.codes.min().item() and batch.codes.max().item() < 256
    for row in batch.codes.numpy():
        source = ramp if row[0] < 251 else encoded.files[1].codes
        windows = np.lib.stride_tricks.sliding_window_view(source, 64)
        assert (windows == row).all(axis=1).any()

    torch.manual_seed(123)  # the global RNG plays no part
    again = CropSampler(as_files(encoded), 64, torch.Generator().manual_seed(1)).batch(16)
    assert torch.equal(again.codes, batch.codes)
    other = CropSampler(as_files(encoded), 64, torch.Generator().manual_seed(2)).batch(16)
    assert not torch.equal(other.codes, batch.codes)


def test_files_are_drawn_in_proportion_to_their_windows() -> None:
    # 991 and 2991 windows of 10 codes: a share of 2991 / 3982 = 0.751 for the second.
    encoded = encoded_set(np.zeros(1000, np.uint8), np.ones(3000, np.uint8))
    batch = CropSampler(as_files(encoded), 10, torch.Generator().manual_seed(0)).batch(8000)
    share = (batch.codes[:, 0] == 1).float().mean().item()
    assert share == pytest.approx(2991 / 3982, abs=0.02)


def test_every_window_is_equally_likely_whatever_its_file() -> None:
    """One weighting rule (issue 12): a file's weight is its number of windows, a file
    shorter than an item has one; by length, the 20-code file would get 20 / 225 of the
    draws (0.089) instead of 11 / 203 (0.054)."""
    files = encoded_set(np.zeros(20, np.uint8), np.ones(200, np.uint8), np.full(5, 2, np.uint8))
    sampler = CropSampler(as_files(files), 10, torch.Generator().manual_seed(0))
    assert sampler.windows.tolist() == [11, 191, 1]
    draws = 40000
    counts = np.bincount(sampler.batch(draws).codes[:, -1].numpy(), minlength=3)
    expected = draws * np.array([11, 191, 1]) / 203
    assert (np.abs(counts - expected) < 4 * np.sqrt(expected)).all(), (counts, expected)
    # Within a file every start is drawn about equally often (a ramp shows the start).
    ramp = encoded_set(np.zeros(20, np.uint8), np.arange(200, dtype=np.uint8))
    rows = CropSampler(as_files(ramp), 10, torch.Generator().manual_seed(1)).batch(40000).codes
    counts = np.bincount(rows[rows[:, -1] > 0, 0].numpy(), minlength=191)
    assert len(counts) == 191 and counts.min() > 0.7 * counts.mean()


def test_the_rule_is_the_same_with_conditioning() -> None:
    plain = encoded_set(np.zeros(20, np.uint8), np.ones(200, np.uint8), np.full(5, 2, np.uint8))
    with_ids = CropSampler(
        as_files(plain), 10, torch.Generator().manual_seed(0), global_ids=[4, 5, 6]
    )
    assert with_ids.windows.tolist() == [11, 191, 1]
    a = with_ids.batch(64)
    b = CropSampler(as_files(plain), 10, torch.Generator().manual_seed(0)).batch(64)
    assert torch.equal(a.codes, b.codes)  # the ids change no draw
    assert a.global_ids is not None
    assert a.global_ids.tolist() == [4 + int(row[-1]) for row in a.codes]


def test_every_window_can_be_drawn() -> None:
    codes = np.arange(20, dtype=np.uint8)
    files = as_files(encoded_set(codes))
    batch = CropSampler(files, 5, torch.Generator().manual_seed(0)).batch(2000)
    assert sorted(set(batch.codes[:, 0].tolist())) == list(range(16))


def test_short_files_are_left_padded_with_silence() -> None:
    short = np.array([1, 2, 3], dtype=np.uint16)
    encoded = encoded_set(short, q=1024)
    assert encoded.silence_code == 512
    for files in (encoded, list(encoded)):  # a set or a plain list of its files
        batch = CropSampler(as_files(files), 8, torch.Generator().manual_seed(0)).batch(2)
        assert batch.codes.tolist() == [[512] * 5 + [1, 2, 3]] * 2


@pytest.mark.parametrize("q", [2, 3, 16, 255, 256, 257, 1024, 65536])
def test_silence_code_is_the_code_of_zero(q: int) -> None:
    assert silence_code(q) == int(mu_law_encode(torch.zeros(1), q).item())


def test_sampler_rejects_empty_sets_and_bad_sizes() -> None:
    empty = EncodedSet((), 8000, 256)
    with pytest.raises(DataError, match="empty"):
        CropSampler(as_files(empty), 8, torch.Generator())
    sampler = CropSampler(as_files(encoded_set(np.zeros(10, np.uint8))), 8, torch.Generator())
    with pytest.raises(ValueError):
        sampler.batch(0)
    mixed = [*encoded_set(np.zeros(10, np.uint8)), *encoded_set(np.zeros(10, np.uint16), q=1024)]
    with pytest.raises(ValueError, match="mix"):
        CropSampler(mixed, 8, torch.Generator())
    with pytest.raises(ValueError):
        CropSampler(as_files(encoded_set(np.zeros(10, np.uint8))), 1, torch.Generator())


def test_end_to_end_folder_to_batches(tmp_path: Path) -> None:
    make_audio_folder(tmp_path / "a", count=4, seconds=0.5)
    encoded = load(tmp_path / "a", tmp_path / "cache", min_length=31 + 1)
    train, val = split_by_file(encoded, 0.25, seed=0)
    assert (len(train), len(val)) == (3, 1)
    length = item_length(30, 100)
    items = CropSampler(as_files(train), length, torch.Generator().manual_seed(0)).batch(4)
    inputs, targets = inputs_and_targets(items.codes, 30)
    assert inputs.shape == (4, 130) and targets.shape == (4, 100)


def test_a_text_file_named_npy_is_not_a_npy_array_file(tmp_path: Path) -> None:
    """A mel `.npy` that is text got numpy's advice to pass allow_pickle=True (which would
    run whatever a pickle holds); it is now said to be no .npy array file."""
    from wavenet.data.melfiles import read_mel_file
    from wavenet.errors import ConditioningError

    path = tmp_path / "a.npy"
    path.write_text("0.1 0.2 0.3\n0.4 0.5 0.6\n")
    with pytest.raises(ConditioningError) as raised:
        read_mel_file(path)
    message = str(raised.value)
    assert message == (
        f"mel file {path} is not a .npy array file (no numpy header); write it with numpy.save"
    )
    assert "pickle" not in message
    np.save(path, np.ones((3, 4), dtype=np.float32))  # a real one still reads
    assert read_mel_file(path).shape == (3, 4)

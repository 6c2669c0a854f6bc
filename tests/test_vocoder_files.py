"""Mel files in and out of a vocoder: `wavenet mel`, `generate --mel-dir` (exact lengths,
bad files skipped with one line each) and `train --mel-dir` (paired, length checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner
from helpers import SAMPLE_RATE, write_chord

import wavenet
from wavenet.data.conditioning import mel_of_audio
from wavenet.data.melfiles import aligned_slice, orient_mel
from wavenet.data.prepare import mel_statistics
from wavenet.errors import ConditioningError
from wavenet.generation.vocoder import length_groups, vocode
from wavenet.io.checkpoint import load_model
from wavenet_cli.main import main

VOCODER = [
    "mel.n_mels=20",
    "mel.n_fft=256",
    "mel.hop_length=64",
    "mel.win_length=256",
    "model.local_channels=20",
    "model.upsample_scales=8,8",
    "train.sample_every=0",
    "data.target_length=256",
    "data.val_fraction=0",
]


def sets(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


@pytest.fixture(scope="module")
def chords(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_chord(tmp_path_factory.mktemp("chords"), files=3, seconds=1.0)


@pytest.fixture(scope="module")
def run(chords: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "vocoder"
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            str(chords),
            "--out",
            str(out),
            "--config",
            "tiny",
            "--steps",
            "2",
            "--cache-dir",
            str(out.parent / "cache"),
            *sets(*VOCODER),
        ],
    )
    assert result.exit_code == 0, result.output
    return out


def one_error_line(result) -> str:
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_orient_mel_tells_the_layouts_apart() -> None:
    mel = torch.randn(20, 7)
    assert torch.equal(orient_mel(mel, 20), mel)
    assert torch.equal(orient_mel(mel.T.contiguous(), 20), mel)
    square = torch.randn(20, 20)
    assert torch.equal(orient_mel(square, 20), square)  # read as (n_mels, frames)
    with pytest.raises(ConditioningError, match=r"neither side of \(19, 7\) is 20 bands"):
        orient_mel(torch.randn(19, 7), 20)
    with pytest.raises(ConditioningError, match="must be 2-D"):
        orient_mel(torch.randn(1, 20, 7), 20)


def test_aligned_slice_keeps_whole_hops() -> None:
    assert aligned_slice(0, 1000, 15, 64) == (0, 0, 15)  # 1000 // 64 = 15 frames
    assert aligned_slice(0, 1000, 20, 64) == (0, 0, 15)  # the mel longer than the audio
    assert aligned_slice(0, 1000, 12, 64) == (0, 0, 12)  # the audio longer than the mel
    assert aligned_slice(100, 900, 15, 64) == (2, 28, 13)  # from sample 128 = frame 2


def test_length_groups_sort_longest_first() -> None:
    assert length_groups([5, 9, 1, 9, 3], 2) == [[1, 3], [0, 4], [2]]


def test_mel_command_writes_n_mels_by_frames(chords: Path, run: Path, tmp_path: Path) -> None:
    out = tmp_path / "mels"
    result = CliRunner().invoke(
        main, ["mel", str(chords), "--run", str(run), "--out-dir", str(out)]
    )
    assert result.exit_code == 0, result.output
    _, config, _ = load_model(run)
    for wav in sorted(chords.glob("*.wav")):
        mel = np.load(out / f"{wav.stem}.npy")
        assert mel.shape == (20, SAMPLE_RATE // 64) and mel.dtype == np.float32
        np.testing.assert_array_equal(mel, mel_of_audio(wav, config).numpy())
    again = CliRunner().invoke(main, ["mel", str(chords), "--run", str(run), "--out-dir", str(out)])
    assert "exists; pass --force" in one_error_line(again)


def test_generate_mel_dir_writes_exact_lengths_and_skips_bad_files(
    run: Path, tmp_path: Path
) -> None:
    mels = tmp_path / "mels"
    mels.mkdir()
    rng = np.random.default_rng(0)
    good = {"a": 30, "b": 45, "c": 7}
    np.save(mels / "a.npy", rng.uniform(0, 1, (20, 30)).astype(np.float32))
    torch.save(torch.rand(45, 20), mels / "b.pt")  # (frames, n_mels)
    np.save(mels / "c.npy", rng.uniform(0, 1, (20, 7)))
    nan = rng.uniform(0, 1, (20, 30))
    nan[3, 4] = np.nan
    np.save(mels / "nan.npy", nan)
    np.save(mels / "bands.npy", rng.uniform(0, 1, (19, 30)))
    np.save(mels / "layout.npy", rng.uniform(0, 1, (2, 20, 30)))
    torch.save({"mel": torch.rand(20, 5)}, mels / "dict.pt")
    (mels / "notes.txt").write_text("not a mel")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "generate",
            str(run),
            "--mel-dir",
            str(mels),
            "--out-dir",
            str(out),
            "--seed",
            "0",
            "--batch",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipping")]
    assert len(skipped) == 4, result.stderr
    reasons = {line.split(":")[0][len("skipping ") :]: line for line in skipped}
    assert "NaN" in reasons["nan.npy"] and "is 20 bands" in reasons["bands.npy"]
    assert "2-D" in reasons["layout.npy"] and "no tensor" in reasons["dict.pt"]
    assert sorted(p.name for p in out.iterdir()) == ["a.wav", "b.wav", "c.wav"]
    for name, frames in good.items():
        audio, rate = sf.read(out / f"{name}.wav")
        assert rate == SAMPLE_RATE and audio.shape == (frames * 64,)
    assert "vocoded 3 mel(s)" in result.output and "skipped 4" in result.output


def test_vocode_batches_equal_lengths_per_stream(run: Path) -> None:
    model, _, _ = load_model(run)
    mels = [torch.rand(20, n) for n in (3, 11, 6)]
    audio = vocode(model, mels, batch_size=2, generator=torch.Generator().manual_seed(0))
    assert [len(a) for a in audio] == [192, 704, 384]
    # A batch of one mel equals generating from it directly (same uniforms).
    alone = vocode(model, mels[1:2], generator=torch.Generator().manual_seed(1))[0]
    codes = wavenet.generate(
        model, 704, mel=mels[1][None], generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(alone, wavenet.mu_law_decode(codes[0]).float())


def test_train_mel_dir_uses_the_given_mels(chords: Path, run: Path, tmp_path: Path) -> None:
    _, config, _ = load_model(run)
    mels = tmp_path / "mels"
    mels.mkdir()
    computed = []
    for wav in sorted(chords.glob("*.wav")):
        mel = mel_of_audio(wav, config)
        computed.append(mel.numpy())
        np.save(mels / f"{wav.stem}.npy", (mel.T + 1.0).numpy())  # (frames, n_mels), shifted
    out = tmp_path / "paired"
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            str(chords),
            "--out",
            str(out),
            "--config",
            "tiny",
            "--steps",
            "1",
            "--mel-dir",
            str(mels),
            "--cache-dir",
            str(tmp_path / "cache"),
            *sets(*VOCODER),
        ],
    )
    assert result.exit_code == 0, result.output
    model, _, _ = load_model(out)
    mean, std = mel_statistics(computed)
    torch.testing.assert_close(model.mel_mean, mean + 1.0)
    torch.testing.assert_close(model.mel_std, std)


def test_train_mel_dir_refuses_a_length_mismatch_in_one_line(chords: Path, tmp_path: Path) -> None:
    mels = tmp_path / "mels"
    mels.mkdir()
    for i, wav in enumerate(sorted(chords.glob("*.wav"))):
        frames = SAMPLE_RATE // 64 - (3 if i == 1 else 0)  # the second is 3 hops short
        np.save(mels / f"{wav.stem}.npy", np.zeros((20, frames), np.float32))
    args = [
        "train",
        "--data",
        str(chords),
        "--out",
        str(tmp_path / "r"),
        "--config",
        "tiny",
        "--steps",
        "1",
        "--mel-dir",
        str(mels),
        "--cache-dir",
        str(tmp_path / "cache"),
        *sets(*VOCODER),
    ]
    line = one_error_line(CliRunner().invoke(main, args))
    assert "chord 1.npy has 122 frames x hop 64 = 7808 samples but chord 1.wav has 8000" in line
    assert "within 2 hops" in line
    (mels / "chord 1.npy").unlink()
    line = one_error_line(CliRunner().invoke(main, args))
    assert "no mel for chord 1.wav" in line


def test_eval_reports_copy_synthesis_beside_griffin_lim(chords: Path, run: Path) -> None:
    result = CliRunner().invoke(
        main, ["eval", str(run), "--data", str(chords), "--json", "--resynth-seconds", "0.25"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    copy = report["copy_synthesis"]
    assert [f["file"] for f in copy["files"]] == ["chord 0.wav", "chord 1.wav", "chord 2.wav"]
    assert all(f["seconds"] == 31 * 64 / SAMPLE_RATE for f in copy["files"])
    # Two steps of training: the vocoder is still noise, Griffin-Lim already close.
    assert copy["griffin_lim_db"] < 10.0 < copy["vocoder_db"] < 80.0
    assert copy["vocoder_db"] == pytest.approx(np.mean([f["vocoder_db"] for f in copy["files"]]))
    plain = CliRunner().invoke(
        main, ["eval", str(run), "--data", str(chords), "--resynth-seconds", "0.1"]
    )
    assert plain.exit_code == 0 and "Griffin-Lim" in plain.output
    skipped = CliRunner().invoke(
        main, ["eval", str(run), "--data", str(chords), "--json", "--resynth-seconds", "0"]
    )
    assert "copy_synthesis" not in json.loads(skipped.stdout.strip().splitlines()[-1])


def test_copy_synthesis_of_a_few_hops(chords: Path, run: Path, tmp_path: Path) -> None:
    """Griffin-Lim's centred STFT needs n_fft // 2 samples to pad: --resynth-seconds 0.001
    (one hop) raised torch's RuntimeError traceback, and so did files of 1-3 hops; now the
    clip is at least 4 hops (n_fft 256, hop 64), and shorter files are left out."""
    result = CliRunner().invoke(
        main, ["eval", str(run), "--data", str(chords), "--json", "--resynth-seconds", "0.001"]
    )
    assert result.exit_code == 0, result.output
    copy = json.loads(result.stdout.strip().splitlines()[-1])["copy_synthesis"]
    assert [f["seconds"] for f in copy["files"]] == [4 * 64 / SAMPLE_RATE] * 3
    short = tmp_path / "short"
    short.mkdir()
    sf.write(short / "a.wav", 0.3 * np.sin(np.arange(250) / 3.0), SAMPLE_RATE)  # 3 hops
    for args in ([], ["--json"]):
        # It exited 1 with only the error: the bits/sample computed before were lost.
        partial = CliRunner().invoke(main, ["eval", str(run), "--data", str(short), *args])
        assert partial.exit_code == 0 and "Traceback" not in partial.output, partial.output
        why = (
            "no file holds the 4 whole hops (256 samples) with their mel that copy "
            "synthesis needs (--resynth-seconds 0 skips it)"
        )
        assert partial.stderr.strip().splitlines()[-1] == f"no copy synthesis: {why}"
        scored = 3 * 64 - 31  # the 3 whole hops with a mel frame, less the receptive field
        if args:
            report = json.loads(partial.stdout)
            assert (report["samples"], report["files"]) == (scored, 1)
            assert report["copy_synthesis_error"] == why and "copy_synthesis" not in report
        else:
            assert partial.stdout.splitlines()[-1].endswith(
                f"bits/sample over {scored} samples in 1 file(s)"
            )
    sf.write(short / "b.wav", 0.3 * np.sin(np.arange(300) / 3.0), SAMPLE_RATE)  # 4 hops
    result = CliRunner().invoke(main, ["eval", str(run), "--data", str(short), "--json"])
    assert result.exit_code == 0, result.output
    copy = json.loads(result.stdout.strip().splitlines()[-1])["copy_synthesis"]
    assert [f["file"] for f in copy["files"]] == ["b.wav"]


def test_eval_interrupted_in_copy_synthesis_reports_the_bits_first(
    chords: Path, run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wavenet.eval.copysynth

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(wavenet.eval.copysynth, "copy_synthesis", interrupt)
    result = CliRunner().invoke(main, ["eval", str(run), "--data", str(chords), "--json"])
    assert result.exit_code == 130, result.output
    report = json.loads(result.stdout)
    assert report["files"] == 3 and report["copy_synthesis_error"] == "interrupted"
    assert 0 < report["bits_per_sample"] < 16
    assert result.stderr.strip().splitlines()[-1] == "no copy synthesis: interrupted"


def test_generate_mel_dir_refuses_wrong_combinations(run: Path, tmp_path: Path) -> None:
    base = ["generate", str(run)]
    alone = CliRunner().invoke(main, base + ["--mel-dir", str(tmp_path)])
    assert "--mel-dir and --out-dir go together" in one_error_line(alone)
    both = CliRunner().invoke(
        main,
        base + ["--mel-dir", str(tmp_path), "--out-dir", str(tmp_path / "o"), "--seconds", "1"],
    )
    assert "drop --seconds" in one_error_line(both)
    empty = CliRunner().invoke(
        main, base + ["--mel-dir", str(tmp_path), "--out-dir", str(tmp_path / "o")]
    )
    assert "no .npy or .pt files in" in one_error_line(empty)
    nothing = CliRunner().invoke(main, base)
    assert "give --out FILE.wav" in one_error_line(nothing)


def test_mel_command_skips_audio_shorter_than_one_hop(
    chords: Path, run: Path, tmp_path: Path
) -> None:
    """It wrote a (20, 0) .npy for a file shorter than one hop, which every reader of a
    mel then refuses ("the mel has no frames")."""
    source = tmp_path / "audio"
    source.mkdir()
    sf.write(source / "long.wav", np.sin(np.arange(640) / 5.0) * 0.3, SAMPLE_RATE)
    sf.write(source / "short.wav", np.full(63, 0.1), SAMPLE_RATE)
    out = tmp_path / "mels"
    result = CliRunner().invoke(
        main, ["mel", str(source), "--run", str(run), "--out-dir", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert (
        f"skipping {source / 'short.wav'}: shorter than one hop (64 samples at 8000 Hz), "
        f"so no mel frames"
    ) in result.stderr
    assert [p.name for p in out.iterdir()] == ["long.npy"]
    assert np.load(out / "long.npy").shape == (20, 10)
    alone = CliRunner().invoke(
        main,
        ["mel", str(source / "short.wav"), "--run", str(run), "--out-dir", str(tmp_path / "m2")],
    )
    assert alone.exit_code == 1 and "Traceback" not in alone.output
    assert alone.stderr.strip().splitlines()[-1] == (
        f"Error: no mel could be made from the audio in {source / 'short.wav'}"
    )


def test_mel_command_gives_inputs_that_share_a_name_their_own_files(
    run: Path, tmp_path: Path
) -> None:
    """a.wav and a.flac in one folder were both written to a.npy (one mel lost) and the
    count said 3 mels where 2 files were left. A stem shared in a folder now keeps the
    extension (a.wav.npy, a.flac.npy); a stem of its own stays NAME.npy."""
    source = tmp_path / "audio"
    (source / "sub").mkdir(parents=True)
    t = np.arange(1280) / SAMPLE_RATE
    for name, frequency in [
        ("a.wav", 220.0),
        ("a.flac", 330.0),
        ("b.wav", 440.0),
        ("sub/a.wav", 550.0),
    ]:
        sf.write(source / name, 0.3 * np.sin(2 * np.pi * frequency * t), SAMPLE_RATE)
    out = tmp_path / "mels"
    result = CliRunner().invoke(
        main, ["mel", str(source), "--run", str(run), "--out-dir", str(out)]
    )
    assert result.exit_code == 0, result.output
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.npy"))
    assert written == ["a.flac.npy", "a.wav.npy", "b.npy", "sub/a.npy"]
    assert "wrote 4 mel(s)" in result.output
    _, config, _ = load_model(run)
    for audio, mel in [
        ("a.wav", "a.wav.npy"),
        ("a.flac", "a.flac.npy"),
        ("sub/a.wav", "sub/a.npy"),
    ]:
        np.testing.assert_array_equal(
            np.load(out / mel), mel_of_audio(source / audio, config).numpy()
        )


def test_mel_file_names_are_distinct() -> None:
    from wavenet.data.melfiles import mel_file_names

    assert mel_file_names(["a.wav", "b.wav"]) == ["a.npy", "b.npy"]
    assert mel_file_names(["a.wav", "A.flac", "b.wav"]) == ["a.wav.npy", "A.flac.npy", "b.npy"]
    # a kept extension that meets another file's stem: every name keeps its extension
    assert mel_file_names(["a.wav", "a.flac", "a.wav.ogg"]) == [
        "a.wav.npy",
        "a.flac.npy",
        "a.wav.ogg.npy",
    ]


def test_train_mel_dir_pairs_a_mel_named_with_the_extension(tmp_path: Path) -> None:
    from wavenet.data.melfiles import paired_mel

    mels = tmp_path / "mels"
    mels.mkdir()
    np.save(mels / "a.npy", np.zeros((20, 10), np.float32))
    np.save(mels / "a.flac.npy", np.ones((20, 10), np.float32))
    assert paired_mel(Path("x/a.flac"), 640, mels, 20, 64).max() == 1.0  # its own first
    assert paired_mel(Path("x/a.wav"), 640, mels, 20, 64).max() == 0.0


def test_generate_mel_dir_prints_its_seed_and_repeats_with_it(run: Path, tmp_path: Path) -> None:
    """An unseeded --mel-dir run never said its seed (and drew on the model's device, so a
    seed meant other audio on a GPU): it prints it now, and that seed repeats the audio."""
    mels = tmp_path / "mels"
    mels.mkdir()
    np.save(mels / "a.npy", np.random.default_rng(0).uniform(0, 1, (20, 12)).astype(np.float32))
    first = CliRunner().invoke(
        main, ["generate", str(run), "--mel-dir", str(mels), "--out-dir", str(tmp_path / "one")]
    )
    assert first.exit_code == 0, first.output
    seed = first.output.split("pass --seed ")[1].split(" ")[0].rstrip(")")
    again = CliRunner().invoke(
        main,
        [
            "generate",
            str(run),
            "--mel-dir",
            str(mels),
            "--out-dir",
            str(tmp_path / "two"),
            "--seed",
            seed,
        ],
    )
    assert again.exit_code == 0, again.output
    assert np.array_equal(
        sf.read(tmp_path / "one" / "a.wav")[0], sf.read(tmp_path / "two" / "a.wav")[0]
    )


def test_a_vocoded_mel_streams_to_stdout_as_its_file(run: Path, tmp_path: Path) -> None:
    """`generate --mel FILE --out -` streams the WAV that `--out FILE.wav` writes for the
    same seed, byte for byte, with the real-time factor on stderr."""
    mel = tmp_path / "m.npy"
    np.save(mel, np.random.default_rng(0).uniform(0, 1, (20, 40)).astype(np.float32))
    command = [sys.executable, "-m", "wavenet_cli", "generate", str(run), "--mel", str(mel)]
    streamed = subprocess.run([*command, "--out", "-", "--seed", "3"], capture_output=True)
    assert streamed.returncode == 0, streamed.stderr.decode()
    written = subprocess.run(
        [*command, "--out", str(tmp_path / "m.wav"), "--seed", "3"], capture_output=True
    )
    assert written.returncode == 0, written.stderr.decode()
    assert streamed.stdout == (tmp_path / "m.wav").read_bytes()
    assert sf.info(str(tmp_path / "m.wav")).frames == 40 * 64
    assert "x real time" in streamed.stderr.decode()

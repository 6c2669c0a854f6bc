"""`wavenet generate --out -`: a WAV streamed to stdout as it is made, byte for byte the
file `--out FILE.wav` writes for the same seed; messages on stderr; a closed pipe is one line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

import wavenet
from wavenet.errors import InvalidArgumentError
from wavenet.io.checkpoint import save_checkpoint
from wavenet.io.wavstream import WavStream, wav_header
from wavenet_cli.main import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = wavenet.load_config("tiny")
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, config=config, model=wavenet.WaveNet(config.model).state_dict(), step=0)
    return path


def cli(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "wavenet_cli", *map(str, args)]
    return subprocess.run(command, capture_output=True, env=env, **kwargs)  # type: ignore[call-overload]


def test_the_stream_is_the_file_byte_for_byte(checkpoint: Path, tmp_path: Path) -> None:
    streamed = cli("generate", checkpoint, "--out", "-", "--samples", "3000", "--seed", "4")
    assert streamed.returncode == 0, streamed.stderr.decode()
    written = cli(
        "generate", checkpoint, "--out", tmp_path / "x.wav", "--samples", "3000", "--seed", "4"
    )
    assert written.returncode == 0, written.stderr.decode()
    assert streamed.stdout == (tmp_path / "x.wav").read_bytes()
    info = sf.info(io.BytesIO(streamed.stdout))
    assert (info.frames, info.samplerate, info.channels, info.subtype) == (3000, 8000, 1, "PCM_16")
    # Everything else is on stderr: the seed, and the speed with the real-time factor.
    text = streamed.stderr.decode()
    assert "seed 4" in text and "x real time" in text and "streamed 3000 samples" in text


def test_json_report_goes_to_stderr_when_streaming(checkpoint: Path) -> None:
    result = cli("generate", checkpoint, "--out", "-", "--samples", "500", "--json")
    assert result.returncode == 0
    assert result.stdout[:4] == b"RIFF" and len(result.stdout) == 44 + 2 * 500
    assert '"real_time_factor"' in result.stderr.decode()


def test_a_closed_pipe_is_one_line_and_a_failure(checkpoint: Path) -> None:
    command = [sys.executable, "-m", "wavenet_cli", "generate", str(checkpoint), "--out", "-"]
    process = subprocess.Popen(
        [*command, "--samples", "2000000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.read(44)[:4] == b"RIFF"  # the header comes before any sample
    process.stdout.close()
    error = process.stderr.read().decode()
    assert process.wait(timeout=120) != 0
    assert "Error: the output pipe was closed before the audio was complete" in error
    assert "Traceback" not in error


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--batch", "2"], "drop --batch"), (["--spectrogram"], "drop --spectrogram")],
)
def test_what_a_stream_cannot_do_is_refused(
    checkpoint: Path, extra: list[str], message: str
) -> None:
    result = CliRunner().invoke(main, ["generate", str(checkpoint), "--out", "-", *extra])
    assert result.exit_code != 0 and message in result.output


def test_wav_stream_writes_its_header_first_and_refuses_more_than_promised() -> None:
    handle = io.BytesIO()
    stream = WavStream(handle, 16000, 5)
    assert handle.getvalue() == wav_header(5, 16000) and len(handle.getvalue()) == 44
    stream.write(np.array([0.0, 0.5, -0.5], np.float32))
    assert not stream.complete
    stream.write(np.array([1.0, -1.0], np.float32))
    assert stream.complete
    audio, rate = sf.read(io.BytesIO(handle.getvalue()), dtype="int16")
    assert rate == 16000 and audio.tolist() == [0, 16384, -16384, 32767, -32768]
    with pytest.raises(InvalidArgumentError, match="promised 5 samples"):
        stream.write(np.zeros(1, np.float32))
    with pytest.raises(InvalidArgumentError, match="at most"):
        wav_header(2**31, 16000)


def test_weights_option_reaches_generate(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--weights int8 is handed to generate (whose reduced model the kernel tests check);
    without --weights, "auto" as `resolve_weights` resolves it on this CPU."""
    import wavenet.generation.driver
    from wavenet.generation.fastpath import dot_supported

    real = wavenet.generation.driver.generate
    seen: list[str] = []

    def spy(*args: object, **kwargs: object) -> torch.Tensor:
        seen.append(str(kwargs.get("weights")))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(wavenet.generation.driver, "generate", spy)
    for weights in ("int8", None, "float32"):
        out = tmp_path / f"{weights}.wav"
        extra = [] if weights is None else ["--weights", weights]
        result = CliRunner().invoke(
            main, ["generate", str(checkpoint), "--out", str(out), "--samples", "300", *extra]
        )
        assert result.exit_code == 0, result.output
        assert sf.info(out).frames == 300
    assert seen == ["int8", "int8-dot" if dot_supported("int8-dot") else "float32", "float32"]

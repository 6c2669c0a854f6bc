"""`wavenet generate`: files of exactly the asked length, refusals as one line."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

import wavenet
from wavenet.io.checkpoint import save_checkpoint
from wavenet_cli.main import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = wavenet.load_config("tiny")
    model = wavenet.WaveNet(config.model)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, config=config, model=model.state_dict(), step=0)
    return path


def invoke(*args: str):
    return CliRunner().invoke(main, ["generate", *args])


def test_writes_exactly_the_asked_samples(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "clip.wav"
    result = invoke(str(checkpoint), "--out", str(out), "--samples", "1234", "--seed", "1")
    assert result.exit_code == 0, result.output
    audio, rate = sf.read(out)
    assert rate == 8000 and audio.shape == (1234,)
    assert "samples/s" in result.output and "real time" in result.output


def test_seconds_and_batch(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "many.wav"
    result = invoke(
        str(checkpoint), "--out", str(out), "--seconds", "0.1", "--batch", "3", "--seed", "2"
    )
    assert result.exit_code == 0, result.output
    clips = [sf.read(tmp_path / f"many_{i}.wav")[0] for i in range(3)]
    assert all(c.shape == (800,) for c in clips)
    assert not np.array_equal(clips[0], clips[1])  # independent streams
    assert not out.exists()


def test_seed_reproduces(checkpoint: Path, tmp_path: Path) -> None:
    for name in ("a.wav", "b.wav"):
        assert (
            invoke(
                str(checkpoint), "--out", str(tmp_path / name), "--samples", "300", "--seed", "7"
            ).exit_code
            == 0
        )
    assert np.array_equal(sf.read(tmp_path / "a.wav")[0], sf.read(tmp_path / "b.wav")[0])


def test_prime_is_not_included(checkpoint: Path, tmp_path: Path) -> None:
    prime = tmp_path / "prime.wav"
    sf.write(prime, 0.3 * np.sin(np.arange(4000) / 8000 * 2 * np.pi * 220), 16000)
    out = tmp_path / "primed.wav"
    result = invoke(
        str(checkpoint), "--out", str(out), "--samples", "500", "--prime", str(prime), "--seed", "3"
    )
    assert result.exit_code == 0, result.output
    assert sf.read(out)[0].shape == (500,)


def test_refuses_to_overwrite_without_force(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.wav"
    out.write_bytes(b"keep me")
    result = invoke(str(checkpoint), "--out", str(out), "--samples", "10")
    assert result.exit_code == 1 and "--force" in result.output
    assert out.read_bytes() == b"keep me"
    assert invoke(str(checkpoint), "--out", str(out), "--samples", "10", "--force").exit_code == 0
    assert sf.read(out)[0].shape == (10,)


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
@pytest.mark.parametrize("broken", ["audio", "picture"])
def test_force_keeps_the_old_file_until_the_new_one_is_whole(
    checkpoint: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    broken: str,
    failure: BaseException,
) -> None:
    """--force wrote over the old file in place: a writer that failed (a full disk,
    Ctrl-C) after starting left a torn file and no old one. Now each file is written
    beside its target and renamed over it; the failed one's old file is intact and no
    temporary file is left."""
    import matplotlib.figure
    import soundfile

    out = tmp_path / "x.wav"
    old = {out: b"RIFF old audio", out.with_suffix(".png"): b"old picture"}
    for path, content in old.items():
        path.write_bytes(content)
    real = {"audio": soundfile.write, "picture": matplotlib.figure.Figure.savefig}[broken]

    def start_then_fail(first, second, *args, **kwargs):
        target = second if broken == "picture" else first  # savefig(self, fname, ...)
        real(first, second, *args, **kwargs)
        if isinstance(target, (str, Path)):
            with open(target, "r+b") as handle:
                handle.truncate(10)
        else:
            target.truncate(10)
        raise failure

    if broken == "audio":
        monkeypatch.setattr(soundfile, "write", start_then_fail)
    else:
        monkeypatch.setattr(matplotlib.figure.Figure, "savefig", start_then_fail)
    result = invoke(
        str(checkpoint), "--out", str(out), "--samples", "300", "--spectrogram", "--force"
    )
    assert result.exit_code != 0 and "Traceback" not in result.output
    failed = out if broken == "audio" else out.with_suffix(".png")
    assert failed.read_bytes() == old[failed]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png", "x.wav"]
    if broken == "picture":  # the audio was complete before the picture failed
        assert sf.read(out)[0].shape == (300,)


def test_force_keeps_the_mode_and_new_files_get_the_umasks(
    checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "x.wav"
    assert invoke(str(checkpoint), "--out", str(out), "--samples", "10").exit_code == 0
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # as a plain open() makes it
    out.chmod(0o640)
    assert invoke(str(checkpoint), "--out", str(out), "--samples", "20", "--force").exit_code == 0
    assert out.stat().st_mode & 0o777 == 0o640 and sf.read(out)[0].shape == (20,)


def test_force_through_a_symbolic_link_replaces_the_file_it_points_to(
    checkpoint: Path, tmp_path: Path
) -> None:
    target, link = tmp_path / "kept" / "x.wav", tmp_path / "x.wav"
    assert invoke(str(checkpoint), "--out", str(target), "--samples", "10").exit_code == 0
    link.symlink_to(target)
    assert invoke(str(checkpoint), "--out", str(link), "--samples", "20", "--force").exit_code == 0
    assert link.is_symlink() and sf.read(target)[0].shape == (20,)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--samples", "0"], "at least one sample"),
        (["--seconds", "-1"], "at least one sample"),
        (["--prime", "PRIME"], "cannot use --prime"),
        (["--prime", "EMPTY"], "empty.wav: no audio frames"),  # a model never sees 0 codes
        (["--temperature", "-0.5"], "--temperature"),
        (["--batch", "0"], "--batch"),
    ],
)
def test_bad_arguments_are_one_line(
    checkpoint: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    bad_prime = tmp_path / "prime.wav"
    bad_prime.write_text("not audio")
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 8000)
    files = {"PRIME": bad_prime, "EMPTY": tmp_path / "empty.wav"}
    args = [str(files.get(a, a)) for a in args]
    result = invoke(str(checkpoint), "--out", str(tmp_path / "o.wav"), *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_missing_run_is_one_line(tmp_path: Path) -> None:
    result = invoke(str(tmp_path / "nope"), "--out", str(tmp_path / "o.wav"))
    assert result.exit_code == 1
    assert "no run folder or checkpoint" in result.output


def test_spectrogram_beside_each_file(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "pic.wav"
    result = invoke(
        str(checkpoint),
        "--out",
        str(out),
        "--samples",
        "2000",
        "--batch",
        "2",
        "--spectrogram",
        "--seed",
        "0",
    )
    assert result.exit_code == 0, result.output
    for i in range(2):
        assert (tmp_path / f"pic_{i}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("samples", [1, 40, 256, 257])
def test_a_clip_of_one_fft_window_or_less_gets_a_note_not_a_spectrogram(
    checkpoint: Path, tmp_path: Path, samples: int
) -> None:
    """matplotlib padded a clip of at most NFFT samples to one frame with a UserWarning
    (and a RuntimeWarning, divide by zero in log10, for one sample), printed by every
    command that draws one; such a clip's panel now says it is too short, in one logged
    line. 257 samples (tiny's 8 kHz: a 256-point FFT) draw a spectrogram, quietly."""
    out = tmp_path / "short.wav"
    result = invoke(
        str(checkpoint),
        "--out",
        str(out),
        "--samples",
        str(samples),
        "--spectrogram",
        "--seed",
        "0",
    )
    assert result.exit_code == 0, result.output
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    notes = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    if samples <= 256:
        assert notes == [
            f"warning: {out.with_suffix('.png')}: short.wav has {samples} samples, "
            f"too few for a spectrogram (more than 256 needed); its panel says so"
        ]
    else:
        assert notes == []


@pytest.mark.filterwarnings("error")
def test_a_silent_clip_draws_quietly(tmp_path: Path) -> None:
    """Digital silence: matplotlib raised a ValueError (the top of the colour scale below
    its -120 dB floor) after log10 of zero bins warned (the demo's short run printed that
    warning for a nearly constant clip). Now it draws, quietly."""
    from wavenet.eval.plots import plot_spectrograms

    out = plot_spectrograms([("silence", np.zeros(4000, np.float32))], 8000, tmp_path / "s.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "name,shown",
    [
        ("clip", "a file without an extension"),
        ("clip.mp3", "a .mp3 file"),
        ("clip.txt", "a .txt file"),
        ("clip.ogg", "a .ogg file"),
    ],
)
def test_out_names_a_format_that_cannot_be_written(
    checkpoint: Path, tmp_path: Path, name: str, shown: str
) -> None:
    """It generated every sample, then soundfile raised a traceback at the write."""
    result = invoke(str(checkpoint), "--out", str(tmp_path / name), "--samples", "10")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip() == (
        f"Error: cannot write 16-bit audio to {shown} "
        f"({tmp_path / name}); name --out FILE.wav (or .flac, .aiff)"
    )
    assert "generating" not in result.output and not list(tmp_path.iterdir())


def test_out_may_be_flac(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "clip.FLAC"
    assert invoke(str(checkpoint), "--out", str(out), "--samples", "10").exit_code == 0
    assert sf.info(out).format == "FLAC" and sf.info(out).frames == 10


# -- issue 27, item 12: the CPU kernel by default, a seed that means the same codes ----


def spy_generate(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Record what `wavenet generate` hands the library: the model's device, the
    generator's device and the codes drawn."""
    import wavenet.generation.driver

    calls: list[dict] = []
    real = wavenet.generation.driver.generate

    def spy(model, n, **kwargs):
        codes = real(model, n, **kwargs)
        calls.append(
            {
                "model": next(model.parameters()).device.type,
                "generator": kwargs["generator"].device.type,
                "codes": codes,
            }
        )
        return codes

    monkeypatch.setattr(wavenet.generation.driver, "generate", spy)
    return calls


def test_a_gpu_host_still_generates_with_the_cpu_kernel(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a GPU present, generate moved the model to CUDA and ran the per-op PyTorch
    loop (never measured, far slower at batch 1); here the CPU host pretends to have one
    (before: the load to cuda failed)."""
    calls = spy_generate(monkeypatch)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    result = invoke(
        str(checkpoint), "--out", str(tmp_path / "a.wav"), "--samples", "50", "--seed", "3"
    )
    assert result.exit_code == 0, result.output
    assert [(c["model"], c["generator"]) for c in calls] == [("cpu", "cpu")]


def test_the_seed_is_printed_and_repeats_the_run(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = spy_generate(monkeypatch)
    first = invoke(str(checkpoint), "--out", str(tmp_path / "a.wav"), "--samples", "200")
    assert first.exit_code == 0, first.output
    line = next(line for line in first.output.splitlines() if line.startswith("seed "))
    seed = int(line.split()[1])
    assert line == f"seed {seed} (pass --seed {seed} to repeat)"
    again = invoke(
        str(checkpoint),
        "--out",
        str(tmp_path / "b.wav"),
        "--samples",
        "200",
        "--seed",
        str(seed),
        "--device",
        "cpu",
    )
    assert again.exit_code == 0, again.output
    assert f"seed {seed} (pass --seed {seed} to repeat)" in again.output
    assert torch.equal(calls[0]["codes"], calls[1]["codes"])
    assert np.array_equal(sf.read(tmp_path / "a.wav")[0], sf.read(tmp_path / "b.wav")[0])


def test_a_seed_draws_the_same_numbers_from_a_cpu_generator_on_any_device() -> None:
    """The uniforms of a seed come from a CPU torch.Generator, so the codes do not depend
    on the device the model runs on (a CUDA generator draws other numbers)."""
    from wavenet.generation.sampling import uniform_chunks

    torch.manual_seed(0)
    model = wavenet.WaveNet(wavenet.load_config("tiny").model).double().eval()
    codes = [
        wavenet.generate(
            model, 64, batch_size=2, method=method, generator=torch.Generator().manual_seed(11)
        )
        for method in ("fast-numba", "fast-torch", "naive")
    ]
    assert torch.equal(codes[0], codes[1]) and torch.equal(codes[0], codes[2])
    chunk = next(iter(uniform_chunks(8, 2, 1.0, torch.Generator().manual_seed(11))))[2]
    assert chunk is not None and chunk.device.type == "cpu"


# -- issue 27, item 13: memory limits of the process, and MemoryError as one line ------


def test_memory_limit_reads_rlimits_and_cgroups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import resource

    from wavenet.util import hardware

    nowhere = {"proc_cgroup": tmp_path / "none", "cgroup_root": tmp_path / "no-cgroup"}
    ram = hardware.physical_memory()
    assert ram is not None
    found = hardware.memory_limit(**nowhere)
    assert found is not None and found <= ram
    limits = {
        resource.RLIMIT_AS: (1 << 30, resource.RLIM_INFINITY),
        resource.RLIMIT_DATA: (resource.RLIM_INFINITY, resource.RLIM_INFINITY),
    }
    monkeypatch.setattr(
        resource,
        "getrlimit",
        lambda which: limits.get(which, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)),
    )
    assert hardware.memory_limit(**nowhere) == min(ram, 1 << 30)  # ulimit -v 1048576
    # cgroup v2: the least memory.max from the process's cgroup up to the root.
    root = tmp_path / "cgroup"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "memory.max").write_text("max\n")
    (root / "a" / "memory.max").write_text("5000000\n")
    (tmp_path / "self-v2").write_text("0::/a/b\n")
    assert hardware.memory_limit(proc_cgroup=tmp_path / "self-v2", cgroup_root=root) == 5000000
    # cgroup v1: the memory controller's memory.limit_in_bytes.
    (root / "memory" / "job").mkdir(parents=True)
    (root / "memory" / "job" / "memory.limit_in_bytes").write_text("4000000\n")
    (tmp_path / "self-v1").write_text("5:cpu:/job\n4:memory:/job\n")
    assert hardware.memory_limit(proc_cgroup=tmp_path / "self-v1", cgroup_root=root) == 4000000


@pytest.mark.parametrize(
    "args", [["--batch", "100000000", "--samples", "1"], ["--samples", "2000000000"]]
)
def test_a_memory_limit_is_one_line_before_any_work(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """Under `ulimit -v` (or a container's limit) these ended in MemoryError tracebacks:
    the check read the machine's RAM, not the process's limit."""
    import wavenet.util.hardware

    monkeypatch.setattr(wavenet.util.hardware, "memory_limit", lambda: 1 << 30)
    result = invoke(str(checkpoint), "--out", str(tmp_path / "a.wav"), *args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "more than the 1.0 GiB this process may use" in lines[0], lines


def test_a_memory_error_while_generating_is_one_line(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wavenet.generation.driver

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(wavenet.generation.driver, "generate", out_of_memory)
    result = invoke(
        str(checkpoint), "--out", str(tmp_path / "a.wav"), "--samples", "300", "--batch", "2"
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        "Error: out of memory generating 2 x 300 samples: lower --batch or the length"
    ]
    assert not (tmp_path / "a_0.wav").exists()


def test_the_library_refuses_codes_beyond_the_memory_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import wavenet.generation.driver
    from wavenet.errors import InvalidArgumentError

    monkeypatch.setattr(wavenet.generation.driver, "memory_limit", lambda: 1 << 20)
    model = wavenet.WaveNet(wavenet.load_config("tiny").model)
    with pytest.raises(
        InvalidArgumentError,
        match=r"1 x 100,000 codes need about 0.0 GiB, more "
        r"than the 0.0 GiB this process may use",
    ):
        wavenet.generate(model, 100_000)


def test_almost_silent_output_is_said(checkpoint: Path, tmp_path: Path) -> None:
    """A model that only ever predicts the silence code wrote silence without a word."""
    from wavenet.io.checkpoint import load_checkpoint

    state = load_checkpoint(checkpoint)["model"]
    state = {k: v.clone() for k, v in state.items()}
    state["head_out.weight"].zero_()
    state["head_out.bias"].fill_(-100.0)
    state["head_out.bias"][128] = 100.0  # mu-law 128 decodes to 0.0
    silent = tmp_path / "silent.pt"
    save_checkpoint(silent, config=wavenet.load_config("tiny"), model=state, step=0)
    result = invoke(
        str(silent), "--out", str(tmp_path / "s.wav"), "--samples", "800", "--seed", "1"
    )
    assert result.exit_code == 0, result.output
    assert "almost all silence (0.0% of its 20 ms frames" in result.stderr
    loud = invoke(
        str(checkpoint), "--out", str(tmp_path / "l.wav"), "--samples", "800", "--seed", "1"
    )
    assert loud.exit_code == 0 and "silence" not in loud.stderr


def test_active_share() -> None:
    from wavenet.data.features import active_share

    t = np.arange(8000) / 8000
    tone = 0.1 * np.sin(2 * np.pi * 440 * t)
    assert active_share(tone, 8000) == 1.0
    half = np.concatenate([tone[:4000], np.zeros(4000)])
    assert active_share(half, 8000) == 0.5
    assert active_share(0.001 * tone, 8000) == 0.0  # -66 dBFS

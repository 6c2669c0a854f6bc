"""Issue 17: every input checked before work, one line for every mistake.

Cases 1 and 8 (config ranges and sizes), 7 (generate arguments), 9 (truncated audio),
and a fuzz test of configs and audio headers against the CLI.
"""

from __future__ import annotations

import json
import logging
import string
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wavenet
from wavenet.config import (
    MAX_BYTES,
    ConfigError,
    check_fits,
    load_config,
    model_parameters,
    training_memory,
)
from wavenet.data.audio import AudioDecodeError, declared_wav_frames, read_mono
from wavenet.io.checkpoint import save_checkpoint
from wavenet_cli.main import main


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


# -- cases 1 and 8: config ranges and sizes -------------------------------------------


@pytest.mark.parametrize(
    "override,match",
    [
        ("train.grad_clip=-1.0", "grad_clip must be > 0 or none"),
        ("train.grad_clip=0", "grad_clip must be > 0 or none"),
        ("train.min_lr_ratio=-5", r"min_lr_ratio must be in \[0, 1\]"),
        ("train.min_lr_ratio=1.5", r"min_lr_ratio must be in \[0, 1\]"),
        ("train.betas=2,-1", r"betas must be two numbers in \[0, 1\)"),
        ("train.betas=0.9,1.0", r"betas must be two numbers in \[0, 1\)"),
        ("train.weight_decay=-100", "weight_decay must be >= 0"),
        ("train.lr=0", "lr must be a finite number > 0"),
        ("train.lr=inf", "expected float"),
        ("train.lr=nan", "expected float"),
        ("train.warmup_steps=-1", "warmup_steps must be >= 0"),
        ("train.seed=-1", "seed must be in"),
        ("train.seed=9223372036854775807", "seed must be in"),
        ("data.sample_rate=1000000000", r"sample_rate must be in \[1, 768000\]"),
        ("data.silence_threshold_db=3", "silence_threshold_db must be <= 0"),
        ("model.global_channels=0", "global_channels must be >= 1"),
        ("mel.f_min=-1", "f_min must be >= 0"),
        ("mel.n_fft=100000", "n_fft must be <="),
    ],
)
def test_config_ranges(override: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config("tiny", [override])


@pytest.mark.parametrize(
    "override,match",
    [
        ("model.residual_channels=1000000000", "887,000,014,112 parameters need 3,304.3 GiB"),
        ("data.target_length=1000000000", r"training needs about 51,975.3 GiB \(28,304 parameters"),
        ("train.batch_size=10000000", "training needs about 33,264.2 GiB"),
    ],
)
def test_sizes_that_cannot_fit_are_refused_with_the_estimate(override: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config("tiny", [override])


@pytest.mark.parametrize("name", wavenet.preset_names())
def test_parameter_estimate_is_exact(name: str) -> None:
    for extra in ([], ["model.global_classes=3"]):
        config = load_config(name, extra)
        assert model_parameters(config.model) == wavenet.parameter_count(
            wavenet.WaveNet(config.model)
        )


def test_memory_estimate_grows_with_the_batch_and_checks_this_machine() -> None:
    config = load_config("tiny")
    small, big = (
        training_memory(config),
        training_memory(load_config("tiny", ["train.batch_size=16"])),
    )
    assert big.activation_bytes == 2 * small.activation_bytes
    assert big.parameter_bytes == small.parameter_bytes == 16 * small.parameters
    assert 0 < small.total_bytes < MAX_BYTES
    check_fits(config, small.total_bytes)  # exactly enough
    with pytest.raises(ConfigError, match="more than this machine's"):
        check_fits(config, small.total_bytes - 1)


def test_malformed_config_files_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "section.json").write_text('{"model": [1]}')
    (tmp_path / "latin1.toml").write_bytes(b"[model]\nresidual_channels = 16 # caf\xe9\n")
    for name, match in (
        ("list.json", "must hold a table of sections, got a list"),
        ("section.json", "section 'model' must be a table"),
        ("latin1.toml", "is not UTF-8 text"),
    ):
        with pytest.raises(ConfigError, match=match):
            load_config(tmp_path / name)
        result = CliRunner().invoke(
            main,
            [
                "train",
                "--data",
                str(tmp_path),
                "--out",
                str(tmp_path / "run"),
                "--config",
                str(tmp_path / name),
            ],
        )
        assert match.split(" ")[0] in one_line_error(result)


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--data", "D", "--out", "R"],
        ["train", "--data", "D", "--out", "R", "--resume"],
        ["demo", "--out", "R"],
    ],
)
def test_an_empty_config_name_is_one_line(tmp_path: Path, monkeypatch, command: list[str]) -> None:
    """`--config ""` trained the default preset (resumed the run's own config with
    --resume; demo said "config file not found: ."): an empty name is now refused."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="the config name is empty: give a preset"):
        load_config("")
    result = CliRunner().invoke(main, [*command, "--config", ""])
    assert one_line_error(result).startswith("Error: the config name is empty: give a preset (")
    assert list(tmp_path.iterdir()) == []


# -- case 7: generate checks every argument before any work ---------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = wavenet.load_config("tiny")
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, config=config, model=wavenet.WaveNet(config.model).state_dict(), step=0)
    return path


VOCODER = [
    "model.local_channels=8",
    "model.upsample_scales=4,4",
    "mel.n_mels=8",
    "mel.hop_length=16",
    "mel.n_fft=64",
    "mel.win_length=64",
]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--seconds", "nan"], "--seconds must be a finite number"),
        (["--seconds", "inf"], "--seconds must be a finite number"),
        (["--seconds", "1e300"], "--seconds must be a finite number"),
        (["--seconds", "1e6"], "a WAV file's limit"),
        (["--temperature", "nan"], "--temperature must be a finite number >= 0"),
        (["--temperature", "inf"], "--temperature must be a finite number >= 0"),
        (["--samples", "1000000000000"], "--samples must be <= 2,147,483,647"),
        (["--samples", "10", "--seed", str(2**70)], "--seed must be in [0, 2**63 - 1)"),
        (["--samples", "10", "--seed", "-1"], "--seed must be in"),
        (["--samples", "1000000", "--batch", "100000"], "this process may use"),
    ],
)
def test_generate_refuses_bad_arguments(
    checkpoint: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "o.wav"
    result = CliRunner().invoke(main, ["generate", str(checkpoint), "--out", str(out), *args])
    assert message in one_line_error(result)
    assert not out.exists()


@pytest.mark.parametrize("device", ["foo", "GPU", "mps", "meta"])
@pytest.mark.parametrize(
    "command",
    [
        ["train", "--data", "D", "--out", "R", "--config", "tiny"],
        ["generate", "C", "--out", "O.wav", "--samples", "4"],
        ["eval", "C", "--data", "D"],
    ],
)
def test_a_device_that_is_not_cpu_or_cuda_is_one_line(
    checkpoint: Path, tmp_path: Path, command: list[str], device: str
) -> None:
    """--device foo raised torch's RuntimeError traceback, --device mps (a torch without
    it) another after the data were read."""
    paths = {
        "D": str(tmp_path / "data"),
        "R": str(tmp_path / "run"),
        "C": str(checkpoint),
        "O.wav": str(tmp_path / "o.wav"),
    }
    result = CliRunner().invoke(main, [paths.get(a, a) for a in command] + ["--device", device])
    assert (
        one_line_error(result)
        == f"Error: --device {device}: give cpu or cuda (cuda:N for the N-th GPU)"
    )
    assert not list(tmp_path.iterdir())


def test_a_gpu_index_beyond_the_machine_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import click

    from wavenet_cli.common import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == "cuda:1" and resolve_device("cuda") == "cuda"
    with pytest.raises(
        click.ClickException,
        match=r"^--device cuda:2: this machine has 2 "
        r"CUDA device\(s\), cuda:0 to cuda:1$",
    ):
        resolve_device("cuda:2")


def test_generate_refuses_before_loading(tmp_path: Path) -> None:
    """A bad argument is reported even when RUN does not exist: nothing was loaded."""
    result = CliRunner().invoke(
        main,
        [
            "generate",
            str(tmp_path / "missing"),
            "--out",
            str(tmp_path / "o.wav"),
            "--temperature",
            "nan",
        ],
    )
    assert "--temperature" in one_line_error(result)


def test_generate_checks_out_is_writable_first(tmp_path: Path, monkeypatch) -> None:
    import wavenet.io.checkpoint

    loaded = []
    monkeypatch.setattr(wavenet.io.checkpoint, "load_model", lambda *a, **k: loaded.append(1))
    blocker = tmp_path / "a file"
    blocker.write_text("x")
    result = CliRunner().invoke(
        main, ["generate", str(tmp_path), "--out", str(blocker / "clip.wav"), "--samples", "10"]
    )
    assert "cannot write" in one_line_error(result) and not loaded


@pytest.mark.parametrize(
    "mel,message",
    [
        (np.full((8, 10), np.nan, dtype=np.float32), "80 NaN or infinite value(s) out of 80"),
        (np.ones((8, 10), dtype=np.complex64), "the mel must be real"),
    ],
)
def test_generate_refuses_non_finite_or_complex_mel(
    tmp_path: Path, mel: np.ndarray, message: str
) -> None:
    config = wavenet.load_config("tiny", VOCODER)
    vocoder = tmp_path / "vocoder.pt"
    save_checkpoint(
        vocoder, config=config, model=wavenet.WaveNet(config.model).state_dict(), step=0
    )
    np.save(tmp_path / "mel.npy", mel)
    result = CliRunner().invoke(
        main,
        [
            "generate",
            str(vocoder),
            "--out",
            str(tmp_path / "o.wav"),
            "--mel",
            str(tmp_path / "mel.npy"),
        ],
    )
    assert message in one_line_error(result)
    assert not (tmp_path / "o.wav").exists()


# -- case 9: a truncated WAV is used for what it holds, with a warning ----------------


def write_truncated(path: Path, frames: int = 8000, keep: float = 0.5) -> None:
    full = path.with_name("full-" + path.name)
    sf.write(full, 0.5 * np.sin(np.arange(frames) / 5.0), 8000, subtype="PCM_16")
    data = full.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    full.unlink()


def test_truncated_wav_is_used_with_a_warning(tmp_path: Path, caplog) -> None:
    path = tmp_path / "half.wav"
    write_truncated(path)
    assert declared_wav_frames(path) == 8000
    with caplog.at_level(logging.WARNING, logger="wavenet.data.audio"):
        mono, rate = read_mono(path)
    assert rate == 8000 and 3900 < len(mono) < 4100
    assert (
        f"{path} is shorter than its header says (read {len(mono)} of 8000 frames)" in caplog.text
    )


def test_complete_wav_gives_no_warning(tmp_path: Path, caplog) -> None:
    path = tmp_path / "whole.wav"
    sf.write(path, np.zeros(100), 8000)
    with caplog.at_level(logging.WARNING, logger="wavenet.data.audio"):
        assert len(read_mono(path)[0]) == 100
    assert caplog.text == "" and declared_wav_frames(path) == 100


# -- fuzz: malformed configs, overrides and audio headers against the CLI -------------

FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
KEYS = [
    "model.residual_channels",
    "model.gate_channels",
    "model.stacks",
    "model.kernel_size",
    "model.layers_per_stack",
    "model.upsample_scales",
    "data.sample_rate",
    "data.target_length",
    "data.val_fraction",
    "train.batch_size",
    "train.lr",
    "train.betas",
    "train.grad_clip",
    "train.min_lr_ratio",
    "train.seed",
    "mel.f_max",
    "nope.key",
    "model.nope",
    "model",
]
VALUES = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats().map(str),
    st.sampled_from(["", "none", "1e9", "1,2", "[2,-1]", "true", "0x10", "=="]),
    st.text(string.printable, max_size=12),
)
JSON_LIKE = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                ["model", "data", "train", "mel", "residual_channels", "lr", "betas", "stacks", "x"]
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)


def run_train_config(tmp_path: Path, *args: str):
    return CliRunner().invoke(
        main, ["train", "--data", str(tmp_path / "no data"), "--out", str(tmp_path / "run"), *args]
    )


@FUZZ
@given(key=st.sampled_from(KEYS), value=VALUES)
def test_fuzz_overrides(tmp_path: Path, key: str, value: str) -> None:
    result = run_train_config(tmp_path, "--config", "tiny", "--set", f"{key}={value}")
    # A valid override gets as far as the missing data folder: one line either way.
    one_line_error(result)


@FUZZ
@given(data=JSON_LIKE, suffix=st.sampled_from([".json", ".toml"]), raw=st.binary(max_size=40))
def test_fuzz_config_files(tmp_path: Path, data, suffix: str, raw: bytes) -> None:
    path = tmp_path / f"c{suffix}"
    path.write_bytes(json.dumps(data).encode() if suffix == ".json" else raw)
    one_line_error(run_train_config(tmp_path, "--config", str(path)))


@FUZZ
@given(
    cut=st.integers(0, 200),
    flips=st.lists(st.tuples(st.integers(0, 59), st.integers(0, 255)), max_size=6),
)
def test_fuzz_audio_headers(tmp_path: Path, cut: int, flips: list[tuple[int, int]]) -> None:
    """A damaged header is either refused as one AudioDecodeError (a one-line skip with a
    warning in training, one line and exit 1 as --prime) or read, finite, with at most a
    warning. Checked at the decoder: a CLI run per example would take seconds each."""
    good = tmp_path / "good.wav"
    sf.write(good, 0.5 * np.sin(np.arange(64) / 3.0), 8000, subtype="PCM_16")
    data = bytearray(good.read_bytes()[: 44 + cut])
    for where, byte in flips:
        if where < len(data):
            data[where] = byte
    path = tmp_path / "bad.wav"
    path.write_bytes(bytes(data))
    try:
        mono, _ = read_mono(path)
        assert mono.dtype == np.float32 and np.isfinite(mono).all()
    except AudioDecodeError as error:
        assert "\n" not in str(error)


# -- issue 27, item 11: memory is checked where it is used ----------------------------


def test_reading_a_config_checks_no_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every load_config checked the training estimate against the RAM: on a small machine
    `wavenet presets` (and generate, eval) exited 1 at the first large preset."""
    import wavenet.config
    import wavenet.util.hardware

    monkeypatch.setattr(wavenet.config, "physical_memory", lambda: 1000)
    monkeypatch.setattr(wavenet.util.hardware, "memory_limit", lambda: 1000)
    for name in wavenet.preset_names():
        load_config(name)
    result = CliRunner().invoke(main, ["presets"])
    assert result.exit_code == 0, result.output


def test_training_checks_the_memory_of_its_device_at_its_precision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from wavenet.util.hardware import check_training_memory

    fp32 = load_config("tiny", ["train.bf16=false"])
    bf16 = load_config("tiny", ["train.bf16=true"])
    half = training_memory(bf16, bf16=True)
    assert half.activation_bytes * 2 == training_memory(fp32).activation_bytes
    monkeypatch.setattr(wavenet.util.hardware, "memory_limit", lambda: half.total_bytes)
    check_training_memory(bf16, torch.device("cpu"))  # fits in bf16 ...
    with pytest.raises(ConfigError, match="more than this process's"):
        check_training_memory(fp32, torch.device("cpu"))  # ... not in float32
    # A CUDA run is checked against the GPU's free memory, not the host's.
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1000, 2000))
    monkeypatch.setattr(wavenet.util.hardware, "memory_limit", lambda: 1 << 40)
    with pytest.raises(ConfigError, match=r"more than cuda:0's free 0.0 GiB"):
        check_training_memory(fp32, torch.device("cuda:0"))


def test_the_context_counts_only_when_it_is_trained() -> None:
    """The estimate assumed receptive_field samples of context in every crop."""
    short = load_config("tiny", ["data.target_length=100"])
    full = load_config("tiny", ["data.target_length=100", "data.full_context=true"])
    rf = short.model.receptive_field
    assert training_memory(full).activation_bytes * 100 == training_memory(
        short
    ).activation_bytes * (100 + rf - 1)


def test_train_refuses_a_run_that_does_not_fit_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wavenet.util.hardware

    monkeypatch.setattr(wavenet.util.hardware, "memory_limit", lambda: 1000)
    result = run_train_config(tmp_path, "--config", "tiny", "--device", "cpu")
    assert "more than this process's 0.0 GiB of memory" in one_line_error(result)

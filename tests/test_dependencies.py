"""The installed dependencies: each imports (torchaudio's native library included), and a
torchaudio that does not load breaks only what needs it, in one line.

This file's first test names every version, so that an upstream release that breaks the
install (as torchaudio 2.11.1 did with torch 2.11.0) fails CI with a message saying what
broke, not an OSError deep in a collection error.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import FAST, write_chord

VOCODER = [
    "mel.n_mels=8",
    "mel.n_fft=64",
    "mel.hop_length=16",
    "mel.win_length=64",
    "model.local_channels=8",
    "model.upsample_scales=4,4",
]
DEPENDENCIES = [
    "torch",
    "torchaudio",
    "soundfile",
    "soxr",
    "safetensors",
    "click",
    "numpy",
    "numba",
]


def test_every_dependency_imports() -> None:
    versions = {name: importlib.metadata.version(name) for name in DEPENDENCIES}
    described = ", ".join(f"{name} {version}" for name, version in versions.items())
    broken = []
    for name in DEPENDENCIES:
        try:
            importlib.import_module(name)
        except (ImportError, OSError) as error:
            broken.append(f"{name}: {str(error).splitlines()[0][:200]}")
    try:  # torchaudio loads its native library on these imports
        importlib.import_module("torchaudio.functional")
        importlib.import_module("torchaudio.transforms")
    except (ImportError, OSError) as error:
        broken.append(f"torchaudio's native library: {str(error).splitlines()[0][:200]}")
    assert not broken, f"installed: {described}; broken: {'; '.join(broken)}"


# A torchaudio as a broken wheel behaves: importing it raises the dynamic linker's OSError.
BROKEN_TORCHAUDIO = textwrap.dedent("""
    raise OSError("libtorchaudio.so: undefined symbol: "
                  "torch_exception_get_what_without_backtrace")
""")


def _run(args: list[str], fake: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=f"{fake}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


@pytest.fixture
def broken_torchaudio(tmp_path: Path) -> Path:
    fake = tmp_path / "fake"
    (fake / "torchaudio").mkdir(parents=True)
    (fake / "torchaudio" / "__init__.py").write_text(BROKEN_TORCHAUDIO)
    return fake


def test_library_without_a_loadable_torchaudio(broken_torchaudio: Path, tmp_path: Path) -> None:
    """import wavenet, a model, generation and mu-law run; mel features raise one
    DependencyError naming torch's version and the fix."""
    code = textwrap.dedent("""
        import torch, wavenet
        from wavenet.util.dependencies import DependencyError
        model = wavenet.WaveNet(wavenet.load_config("tiny").model).eval()
        codes = wavenet.generate(model, 50, generator=torch.Generator().manual_seed(0))
        assert codes.shape == (1, 50)
        x = wavenet.mu_law_decode(codes)
        from wavenet.config import MelConfig
        from wavenet.data.features import mel_filterbank
        try:
            mel_filterbank(8000, MelConfig())
        except DependencyError as error:
            assert isinstance(error, wavenet.WavenetError)
            print("ERROR:", error)
        else:
            raise SystemExit("no DependencyError")
    """)
    done = _run(["-c", code], broken_torchaudio, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    line = done.stdout.strip().splitlines()[-1]
    import torch

    assert line.startswith("ERROR: torchaudio ") and f"with torch {torch.__version__}" in line
    assert "undefined symbol" in line and "pip install 'torch>=2.14.1,<2.16'" in line


def test_cli_without_a_loadable_torchaudio(broken_torchaudio: Path, tmp_path: Path) -> None:
    """train (no mel), generate and info work; a vocoder's training stops with one line."""
    data = write_chord(tmp_path / "data", files=2, seconds=0.6)
    run = tmp_path / "run"
    fast = [arg for pair in FAST for arg in ("--set", pair)]
    done = _run(
        [
            "-m",
            "wavenet_cli",
            "train",
            "--data",
            str(data),
            "--out",
            str(run),
            "--config",
            "tiny",
            "--steps",
            "2",
            "--cache-dir",
            str(tmp_path / "cache"),
            *fast,
        ],
        broken_torchaudio,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    done = _run(
        [
            "-m",
            "wavenet_cli",
            "generate",
            str(run),
            "--out",
            str(tmp_path / "a.wav"),
            "--seconds",
            "0.05",
            "--seed",
            "1",
        ],
        broken_torchaudio,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "a.wav").stat().st_size > 44
    done = _run(["-m", "wavenet_cli", "info", str(run)], broken_torchaudio, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    done = _run(
        [
            "-m",
            "wavenet_cli",
            "train",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "voc"),
            "--config",
            "tiny",
            "--steps",
            "2",
            *[arg for pair in VOCODER for arg in ("--set", pair)],
            "--cache-dir",
            str(tmp_path / "cache"),
            *fast,
        ],
        broken_torchaudio,
        tmp_path,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "torchaudio" in done.stderr and "does not load with torch" in done.stderr

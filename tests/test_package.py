"""The package as users meet it: cheap import, CLI entry points."""

from __future__ import annotations

import subprocess
import sys


def test_import_does_not_pull_in_the_cli() -> None:
    code = "import sys, wavenet; print('click' in sys.modules, 'wavenet_cli' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_python_dash_m_runs_the_cli() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "wavenet_cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "Usage" in out.stdout


def test_import_is_cheap() -> None:
    """`import wavenet` loads neither numba (the compiled generator loads it when first
    used) nor torchaudio nor the CLI."""
    code = (
        "import sys, wavenet; "
        "print(*[m in sys.modules for m in ('numba', 'torchaudio', 'click', 'wavenet_cli')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"] * 4


FACES = ["coding", "nn", "data", "generation", "io", "eval", "train", "util"]


def test_the_public_face() -> None:
    """What issue 28 asked for is exported; the generators' internals are not."""
    import wavenet

    for name in ("load_model", "vocode", "decode", "MelConfig", "generate", "WaveNet"):
        assert name in wavenet.__all__, name
    from wavenet.errors import WavenetError

    errors = [
        name
        for name in vars(wavenet.errors)
        if isinstance(getattr(wavenet.errors, name), type)
        and issubclass(getattr(wavenet.errors, name), WavenetError)
    ]
    assert len(errors) >= 10 and set(errors) <= set(wavenet.__all__)
    for internal in ("NumbaGenerator", "NaiveGenerator", "sample_codes", "run", "kernel"):
        assert internal not in wavenet.__all__


def test_every_exported_name_exists_and_names_no_module() -> None:
    """Each face's `__all__` names real objects, and none of them has the name of a module
    of that package (which the export would hide: `wavenet.coding.decode` is the
    function, the module is decoding.py)."""
    import importlib
    import pkgutil

    import wavenet

    for face in ["", *FACES]:
        package = importlib.import_module(f"wavenet.{face}" if face else "wavenet")
        assert package.__doc__ and package.__doc__.strip(), f"wavenet.{face} has no docstring"
        assert package.__all__, f"wavenet.{face} exports nothing"
        modules = {m.name for m in pkgutil.iter_modules(package.__path__)}
        for name in package.__all__:
            assert hasattr(package, name), f"wavenet.{face}.{name} is missing"
            assert name not in modules, f"wavenet.{face}.{name} hides the module {name}.py"
    assert callable(wavenet.decode)
    assert callable(importlib.import_module("wavenet.train").train)  # the function

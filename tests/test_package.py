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

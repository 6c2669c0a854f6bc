"""Loading torchaudio only where it is used, and saying clearly when it cannot load.

torchaudio's native library loads only against the torch release its wheel was built
for; a new release of either can break the pair (torchaudio 2.11.1 with torch 2.11.0 did).
Only mel features (`features.py`) and Griffin-Lim (`copysynth.py`) need it, so the rest of
the package imports and runs without it, and those two fail with one line that names the
installed versions and the fix instead of an OSError from the dynamic linker.
"""

from __future__ import annotations

import importlib.metadata
from types import ModuleType

import torch

from ..errors import DependencyError

# The pair pyproject.toml asks for, quoted in the advice.
SUPPORTED = "'torch>=2.14.1,<2.16' 'torchaudio==2.11.1'"


def _installed(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def torchaudio() -> ModuleType:
    """The torchaudio module (its native library loaded), or DependencyError in one line."""
    try:
        import torchaudio as module
        import torchaudio.functional  # noqa: F401  (loads the native library)
        import torchaudio.transforms  # noqa: F401
    except (ImportError, OSError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DependencyError(
            f"torchaudio {_installed('torchaudio')} does not load with torch {torch.__version__} "
            f"({reason[:160]}); mel features and Griffin-Lim need it: "
            f"pip install {SUPPORTED}"
        ) from None
    return module

"""Utilities with no model in them: writing files safely, what the machine offers, and
loading torchaudio only where it is used.

- `files.py`: atomic writes (a crash never leaves a partial file), sha256 of a file.
- `hardware.py`: devices, whether bf16 pays, memory limits, glibc's malloc setting.
- `dependencies.py`: torchaudio, loaded on first use with a clear error when it cannot be.
"""

from .files import atomic_write_audio, atomic_write_bytes, file_sha256
from .hardware import bf16_pays, check_device, keep_freed_memory, memory_limit

__all__ = [
    "atomic_write_audio",
    "atomic_write_bytes",
    "bf16_pays",
    "check_device",
    "file_sha256",
    "keep_freed_memory",
    "memory_limit",
]

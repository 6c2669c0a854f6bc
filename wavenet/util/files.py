"""Writing files so that a crash never leaves a partial one."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def atomic_write_bytes(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any]) -> None:
    """Call `write(file_object)` on a temporary file beside `path`, then rename it into place.

    A crash at any moment leaves either the old file or the new one, never a partial one.
    The new file has the mode the old one had, or else that of a file `open` would make
    (0o666 less the umask), not mkstemp's 0o600. A symbolic link stays one: the file it
    points to is replaced.
    """
    path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_audio(
    path: str | os.PathLike[str], samples: np.ndarray, sample_rate: int, subtype: str = "PCM_16"
) -> None:
    """Write audio (T,) with soundfile through `atomic_write_bytes`: replacing a file
    (`--force`) keeps the old one whole until the new one is complete. The format is the
    one soundfile reads from `path`'s extension (.wav, .flac, .aiff, ...).

    The file is encoded in memory first and then written as bytes: soundfile writes a
    Python file object from C callbacks, where a failed write (a full disk) is printed as
    "Exception ignored from cffi callback" once per block and ends in an AssertionError;
    written here, it is one OSError.
    """
    import soundfile as sf

    kind = Path(path).suffix[1:].upper()
    encoded = io.BytesIO()
    sf.write(encoded, samples, sample_rate, subtype=subtype, format=kind)
    atomic_write_bytes(path, lambda handle: handle.write(encoded.getbuffer()))


@functools.cache
def _umask() -> int:
    """The process's umask (read once: reading it means setting it for a moment)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read a chunk at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()

"""One trainer per run folder: an exclusive OS lock on RUN/train.lock for the life of a run.

The lock is `fcntl.flock` on an open file, so the kernel drops it when the process ends in
any way (kill -9 included): there is never a stale lock to clean up. The file itself stays;
while locked it holds the holder's pid, host and start time (one JSON object), which a
second trainer reads to name the holder in its error. Under torchrun only rank 0 takes it.
Where `fcntl` does not exist (Windows) runs are not locked.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import RunLockedError, WavenetError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

LOCK_FILE = "train.lock"


@contextmanager
def run_lock(run_dir: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the run folder's lock (made with the folder if need be) inside the block.

    Raises RunLockedError at once when another process holds it.
    """
    run_dir = Path(run_dir)
    if fcntl is None:
        logger.debug("no fcntl here: %s is not locked", run_dir)
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(
                f"{run_dir} is in use by another training run "
                f"({_holder(fd)}); wait for it to end or choose another "
                f"--out"
            ) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        try:
            os.pwrite(fd, json.dumps(holder).encode(), 0)
        except OSError as error:  # a full disk: the write names no file
            raise WavenetError(
                f"cannot write {run_dir / LOCK_FILE}: {error.strerror or error}"
            ) from None
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # still locked: nobody reads a half-cleared file
    finally:
        os.close(fd)  # releases the lock


def _holder(fd: int) -> str:
    """Words naming the process that holds the lock, from what it wrote in the file."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0))
        return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
    except (OSError, ValueError, TypeError, KeyError):
        return "a process that has not written its name yet"

"""The on-disk cache of decoded audio codes and mel features: one scheme for every kind
("codes": mu-law codes; "pcm16": 16-bit samples as uint16 offset-binary codes, for "mol"
models; "mel": log-mel features).

    cache_dir/<kind>-v<version>/<digest>.npy    the array (codes or features)
    cache_dir/<kind>-v<version>/<digest>.json   {"key": {...}, "sha256": ..., ...metadata}

`key` is a dict of plain values that determines the array (for codes: the file's resolved
path, its `file_stamp` (size, mtime, ctime, inode) and the decoding settings; for mels: a
hash of the codes and the mel settings) plus `"format": version`; `digest` is a SHA-256 of
the key. An entry counts only once its `.json` exists and holds exactly the key asked for,
so a changed file or setting is computed afresh. `"sha256"` is the digest of the `.npy`
file's bytes, checked on every lookup: an entry whose file was damaged since (garbage
data, another dtype, 0 bytes) is reported in one WARNING line and computed again.
`CACHE_VERSIONS` holds one version per kind: bump it when the code that computes a kind
changes what an entry holds, and old entries are never read again.

Files are written to a temporary name then renamed (`files.atomic_write_bytes`), the array
before its `.json`, so a crash or several processes writing at once never leave a
half-written entry. Old entries are not removed; delete the folder whenever no run is
reading it (deleting is safe under a live memory map, rewriting a mapped file in place is
not). Arrays are read back memory-mapped.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..util.files import atomic_write_bytes, file_sha256

__all__ = ["CACHE_VERSIONS", "ArrayCache", "default_cache_dir", "file_stamp"]

logger = logging.getLogger(__name__)

# kind -> version. codes: mu-law codes of one audio file (uint8/uint16), with its length
# before and after trimming; mel: the scaled log-mel of one file's codes (float32). mel
# moved to this scheme at 3 (v2 entries had no .json); both went up by one when entries
# gained their checksum. pcm16: like codes, 16-bit samples + 32768 (uint16). All three
# went up by one when resampling moved from torchaudio to libsoxr (other values).
AUDIO_KINDS = ("codes", "pcm16")
# All three went up again when a file's key gained its ctime and inode (`file_stamp`).
CACHE_VERSIONS: dict[str, int] = {"codes": 4, "pcm16": 3, "mel": 6}


def file_stamp(stat: os.stat_result) -> dict[str, int]:
    """What tells a source file's versions apart in a cache key, from its `stat`: size,
    mtime, ctime and inode.

    The mtime alone is not enough: `cp -p`, `rsync -t` and `tar` give a replaced file the
    old one's, and with the same size (a fixed-length clip) its stale entry was used.
    The ctime is set by the kernel on every change of the file (an `os.utime` that puts
    the mtime back included) and no tool can set it; a file replaced by a rename (rsync)
    also has another inode. A hash of the contents would cost a read of every file at
    every start (sha256 at ~1.7 GB/s, plus the disk: minutes for a large folder) where
    this costs nothing. A file that only changed its metadata (chmod, a new hard link)
    is decoded again, which is slow once, never wrong.
    """
    return {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "ctime_ns": stat.st_ctime_ns,
        "inode": stat.st_ino,
    }


def default_cache_dir() -> Path:
    """$WAVENET_CACHE_DIR, else $XDG_CACHE_HOME/wavenet, else ~/.cache/wavenet."""
    if os.environ.get("WAVENET_CACHE_DIR"):
        return Path(os.environ["WAVENET_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "wavenet"
    return Path.home() / ".cache" / "wavenet"


def _open_budget() -> int | None:
    """How many cache entries one load may keep memory-mapped (None: no limit).

    Each memory map holds an open file descriptor (Python < 3.13), so a folder of many
    thousands of clips could exhaust the process limit; a quarter of the soft limit is
    used for maps and the smallest files beyond it are read into memory instead.
    """
    try:
        import resource
    except ImportError:  # Windows: handles, not descriptors; no small limit
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    return max(16, soft // 4)


class ArrayCache:
    """The entries of one kind ("codes", "pcm16" or "mel") under `cache_dir` (None: the default).

    When the folder cannot be written, one WARNING is logged and `store` keeps returning
    None, so callers keep their arrays in memory.
    """

    def __init__(self, cache_dir: str | os.PathLike[str] | None, kind: str) -> None:
        root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.kind = kind
        self.version = CACHE_VERSIONS[kind]
        self.folder = root / f"{kind}-v{self.version}"
        self.writable = True

    def full_key(self, key: dict[str, Any]) -> dict[str, Any]:
        return {"format": self.version, **key}

    def path(self, key: dict[str, Any]) -> Path:
        """The .npy of the entry for `key` (whether it exists or not)."""
        text = json.dumps(self.full_key(key), sort_keys=True)
        return self.folder / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.npy"

    def lookup(self, key: dict[str, Any]) -> dict[str, Any] | None:
        """The metadata of a complete entry made with exactly `key`, else None."""
        npy = self.path(key)
        try:
            meta = json.loads(npy.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("key") != self.full_key(key):
            return None
        try:
            intact = file_sha256(npy) == meta.get("sha256")
        except OSError:
            return None
        if not intact:
            again = f"decoding {meta['source']}" if "source" in meta else "computing it"
            logger.warning(
                "cache entry %s is damaged (its data does not match its checksum); %s again",
                npy,
                again,
            )
            self.forget(npy)
            return None
        return meta

    def store(
        self, key: dict[str, Any], array: np.ndarray, meta: dict[str, Any] | None = None
    ) -> Path | None:
        """Write the array, then its metadata; -> the .npy, or None when not writable."""
        if not self.writable:
            return None
        npy = self.path(key)
        data = io.BytesIO()
        np.save(data, array, allow_pickle=False)
        text = json.dumps(
            {
                **(meta or {}),
                "key": self.full_key(key),
                "sha256": hashlib.sha256(data.getbuffer()).hexdigest(),
            },
            indent=1,
            sort_keys=True,
        ).encode()
        try:
            atomic_write_bytes(npy, lambda handle: handle.write(data.getbuffer()))
            atomic_write_bytes(npy.with_suffix(".json"), lambda handle: handle.write(text))
        except OSError as error:
            self.writable = False
            logger.warning(
                "cannot write the %s cache in %s (%s); keeping %s in memory",
                "audio" if self.kind in AUDIO_KINDS else self.kind,
                self.folder,
                error,
                "decoded audio" if self.kind in AUDIO_KINDS else "the arrays",
            )
            return None
        return npy

    def forget(self, npy: Path) -> None:
        """Drop a damaged entry (its .json; the .npy may still be mapped elsewhere)."""
        with contextlib.suppress(OSError):
            npy.with_suffix(".json").unlink()

    def load_or_compute(self, key: dict[str, Any], compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached array for `key` (memory-mapped), else compute(), stored for next time."""
        if self.lookup(key) is not None:
            try:
                return np.load(self.path(key), mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError):
                self.forget(self.path(key))
        array = compute()
        self.store(key, array)
        return array

    def open_arrays(
        self, entries: Sequence[tuple[np.ndarray | Path, int]], reload: Callable[[int], np.ndarray]
    ) -> list[np.ndarray]:
        """Arrays from (array or its .npy, length) entries: the largest files memory-mapped,
        up to `_open_budget()`, the others read into memory.

        A .npy that cannot be read (deleted or damaged since) is dropped from the cache and
        entry i is computed again, into memory, with `reload(i)`.
        """
        budget = _open_budget()
        by_size = sorted(range(len(entries)), key=lambda i: -entries[i][1])
        mapped = set(by_size if budget is None else by_size[:budget])
        arrays = []
        for i, (source, length) in enumerate(entries):
            if isinstance(source, Path):
                npy = source
                try:
                    source = self._read(npy, length, mapped=i in mapped)
                except (OSError, ValueError) as error:
                    logger.warning(
                        "cache file %s is unreadable (%s); computing it again", npy, error
                    )
                    self.forget(npy)
                    source = reload(i)
            arrays.append(source)
        return arrays

    @staticmethod
    def _read(npy: Path, length: int, mapped: bool) -> np.ndarray:
        array = np.load(npy, mmap_mode="r" if mapped else None, allow_pickle=False)
        if array.shape != (length,):
            raise ValueError(f"shape {array.shape}, expected ({length},)")
        return array

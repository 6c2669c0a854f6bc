"""Training data: a folder of audio -> cached mu-law codes -> random fixed-length crops.

    folder --find_audio_files--> paths --decode_audio, trim, mu_law_encode--> codes
      (one .npy per file in the cache, memory-mapped) --split_by_file--> train, val
      --CropSampler(generator).batch(B)--> LongTensor (B, item_length)

Item layout. With R = receptive_field and N = target_length, an item holds
L = R + N codes c[0] ... c[L-1]; the model reads item[:, :-1] and position t predicts
c[t + 1] from c[t - R + 1] ... c[t]. The loss is taken on the N positions that see a
full receptive field, t = R - 1 ... L - 2, whose targets are item[:, R:]::

    item          c[0] ... c[R-2]  c[R-1]  c[R] ... c[L-2]  c[L-1]      L = R + N
    input         c[0] ... c[R-2]  c[R-1]  c[R] ... c[L-2]              L - 1 = (R - 1) + N
                  '-- R-1 context -'-------- N scored positions -'
    logits[R-1:]                   ->c[R]  ->c[R+1] ...  ->c[L-1]
    targets                        = item[:, R:]                        N

`item_length(R, N)` gives L; `inputs_and_targets(items, R)` cuts a batch so; the
scored logits are `logits[:, :, R - 1:]`.

A file shorter than L is used whole, padded on the left with the code of silence
(`silence_code`, the mu-law code of 0.0), as if silence had preceded it. Files shorter
than `min_length` after resampling (and trimming) are skipped: `min_length = R + 1`
keeps every file that gives at least one target predicted from R samples of real audio.

Crops: a file is drawn with probability proportional to its length, then a start
uniformly among its L-sample windows, all from the torch.Generator passed in (no global
RNG), so a seed per rank gives reproducible, independent streams.

Cache. Decoded codes are kept in `cache_dir/codes-v1/<key>.npy` (uint8, or uint16 when
quantization_channels > 256) with `<key>.json` beside it, and read back memory-mapped.
The key hashes the resolved path, size and mtime_ns of the file, the sample rate,
quantization_channels and the trim settings: a changed file or setting is decoded afresh.
Files are written to a temporary name then renamed, so a crash or several processes
decoding at once never leave a half-written entry. Old entries are not removed; delete
the folder whenever no run is reading it (deleting is safe under a live memory map,
rewriting a mapped file in place is not).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .audio import (AUDIO_EXTENSIONS, AudioDecodeError, DataError, decode_audio,
                    find_audio_files, trim_silent_edges)
from .files import atomic_write_bytes
from .mulaw import mu_law_encode

__all__ = [
    "AUDIO_EXTENSIONS", "AudioDecodeError", "CropSampler", "DataError", "EncodedFile",
    "EncodedSet", "codes_dtype", "decode_audio", "default_cache_dir", "encode_waveform",
    "find_audio_files", "inputs_and_targets", "item_length", "load_encoded", "silence_code",
    "split_by_file",
]

logger = logging.getLogger(__name__)

# Bump when decoding changes what codes a file gives; old entries are then ignored.
_CACHE_FORMAT = 1
_CACHE_SUBDIR = f"codes-v{_CACHE_FORMAT}"


# ---------------------------------------------------------------------------- codes

def codes_dtype(quantization_channels: int) -> np.dtype:
    """Smallest unsigned dtype holding codes 0 ... quantization_channels - 1."""
    if quantization_channels <= 1 << 8:
        return np.dtype(np.uint8)
    if quantization_channels <= 1 << 16:
        return np.dtype(np.uint16)
    return np.dtype(np.uint32)


def silence_code(quantization_channels: int) -> int:
    """The code of 0.0 (128 for 256 channels): what short files are padded with."""
    return int(mu_law_encode(torch.zeros(1), quantization_channels).item())


def encode_waveform(waveform: np.ndarray, quantization_channels: int) -> np.ndarray:
    """float (T,) in [-1, 1] (clipped beyond) -> codes (T,) of `codes_dtype`."""
    codes = mu_law_encode(torch.from_numpy(np.ascontiguousarray(waveform)), quantization_channels)
    return codes.numpy().astype(codes_dtype(quantization_channels))


def item_length(receptive_field: int, target_length: int) -> int:
    """Codes per training item: receptive_field + target_length (see module docstring)."""
    if receptive_field < 1 or target_length < 1:
        raise ValueError(f"receptive_field and target_length must be >= 1, got "
                         f"{receptive_field} and {target_length}")
    return receptive_field + target_length


def inputs_and_targets(items: torch.Tensor, receptive_field: int
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a batch of items into model input and scored targets.

    items: (B, L) -> inputs (B, L - 1) = items[:, :-1], targets (B, L - R) = items[:, R:].
    The logits that go with the targets are `model(inputs)[:, :, R - 1:]`.
    """
    if items.dim() != 2 or items.shape[1] <= receptive_field:
        raise ValueError(f"expected items of shape (B, L) with L > receptive_field = "
                         f"{receptive_field}, got {tuple(items.shape)}")
    return items[:, :-1], items[:, receptive_field:]


# ----------------------------------------------------------------------- data sets

@dataclass(frozen=True, eq=False)
class EncodedFile:
    """Codes of one file (or of a time slice of it, starting at code `start`).

    `codes` is 1-D, uint8/uint16, usually a read-only memory map of the cache entry,
    with values in [0, quantization_channels).
    """

    path: Path
    codes: np.ndarray
    start: int = 0
    quantization_channels: int = 256

    def __len__(self) -> int:
        return len(self.codes)


@dataclass(frozen=True, eq=False)
class EncodedSet:
    """Encoded files ready for cropping, and the files that were skipped, with why.

    Iterating or indexing gives the EncodedFiles; len() counts them. `root` is the
    folder the relative names (used by `split_by_file`) are taken from.
    """

    files: tuple[EncodedFile, ...]
    sample_rate: int
    quantization_channels: int
    skipped: tuple[tuple[Path, str], ...] = ()
    root: Path | None = None
    min_length: int = 1

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[EncodedFile]:
        return iter(self.files)

    def __getitem__(self, index: int) -> EncodedFile:
        return self.files[index]

    @property
    def total_samples(self) -> int:
        return sum(len(f) for f in self.files)

    @property
    def duration(self) -> float:
        """Seconds of audio in all files."""
        return self.total_samples / self.sample_rate

    @property
    def silence_code(self) -> int:
        return silence_code(self.quantization_channels)


def default_cache_dir() -> Path:
    """$WAVENET_CACHE_DIR, else $XDG_CACHE_HOME/wavenet, else ~/.cache/wavenet."""
    if os.environ.get("WAVENET_CACHE_DIR"):
        return Path(os.environ["WAVENET_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "wavenet"
    return Path.home() / ".cache" / "wavenet"


# --------------------------------------------------------------------------- cache

def _cache_key(path: Path, stat: os.stat_result, sample_rate: int, quantization_channels: int,
               trim_silence: bool, silence_threshold_db: float) -> tuple[str, dict[str, Any]]:
    key = {
        "format": _CACHE_FORMAT,
        "path": str(path),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sample_rate": sample_rate,
        "quantization_channels": quantization_channels,
        "trim_silence": trim_silence,
        "silence_threshold_db": silence_threshold_db if trim_silence else None,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    return digest, key


def _cache_lookup(folder: Path, digest: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """The metadata of a complete entry made with exactly `key`, else None."""
    try:
        meta = json.loads((folder / f"{digest}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("key") != key:
        return None
    if not (folder / f"{digest}.npy").is_file():
        return None
    return meta


def _cache_store(folder: Path, digest: str, codes: np.ndarray, meta: dict[str, Any]) -> None:
    """Write the codes, then the metadata: an entry counts only once its .json exists."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / f"{digest}.npy", lambda file: np.save(file, codes, allow_pickle=False))
    text = json.dumps(meta, indent=1, sort_keys=True).encode()
    atomic_write_bytes(folder / f"{digest}.json", lambda file: file.write(text))


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


# ---------------------------------------------------------------------------- load

def load_encoded(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    sample_rate: int,
    quantization_channels: int = 256,
    min_length: int = 1,
    trim_silence: bool = False,
    silence_threshold_db: float = -50.0,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EncodedSet:
    """Decode, resample, mu-law encode and cache every audio file of a folder (or list).

    source: a folder (searched recursively, see `find_audio_files`) or a list of files.
    min_length: fewest codes a file must have after resampling and trimming (>= 1).
    trim_silence: drop leading/trailing samples below `silence_threshold_db` dBFS.
    cache_dir: where codes are cached (default `default_cache_dir()`); when it cannot be
        written, a warning is logged and the codes are kept in memory.
    progress: called as progress(done, total) after each file.

    Files that cannot be used (unreadable, empty, damaged, not audio, too short) are
    skipped, each with a WARNING naming it and the reason, and listed in `.skipped`.
    Raises DataError when the folder is missing or no usable file remains.
    """
    if min_length < 1:
        raise ValueError(f"min_length must be >= 1, got {min_length}")
    if isinstance(source, (str, os.PathLike)):
        root: Path | None = Path(source)
        paths = find_audio_files(root)
        where = str(root)
        if not paths:
            raise DataError(f"no audio files in {root} "
                            f"(looked for {', '.join(sorted(AUDIO_EXTENSIONS))})")
    else:
        paths = [Path(p) for p in source]
        if not paths:
            raise DataError("no audio files given")
        root = None  # set below from the files that load
        where = f"the {len(paths)} files given"

    cache_folder = Path(cache_dir if cache_dir is not None else default_cache_dir()) / _CACHE_SUBDIR
    cache_writable = True
    from_cache = 0

    def encode_file(path: Path) -> tuple[np.ndarray, int]:
        """-> (codes, length before trimming); raises AudioDecodeError."""
        waveform = decode_audio(path, sample_rate)
        untrimmed = len(waveform)
        if trim_silence:
            waveform = trim_silent_edges(waveform, silence_threshold_db)
        return encode_waveform(waveform, quantization_channels), untrimmed

    def load_one(path: Path) -> tuple[np.ndarray | Path, int] | str:
        """-> (codes or their cache file, length), or the reason to skip the file."""
        nonlocal cache_writable, from_cache
        try:
            resolved = path.resolve()
            stat = resolved.stat()
        except OSError as error:
            return f"cannot read: {error.strerror or error}"
        digest, key = _cache_key(resolved, stat, sample_rate, quantization_channels,
                                 trim_silence, silence_threshold_db)
        meta = _cache_lookup(cache_folder, digest, key)
        codes: np.ndarray | Path
        if meta is not None:
            codes = cache_folder / f"{digest}.npy"
            from_cache += 1
        else:
            try:
                codes, untrimmed = encode_file(path)
            except AudioDecodeError as error:
                return error.reason
            meta = {"key": key, "source": str(path), "length": len(codes),
                    "untrimmed_length": untrimmed, "dtype": codes.dtype.name}
            if cache_writable:
                try:
                    _cache_store(cache_folder, digest, codes, meta)
                    codes = cache_folder / f"{digest}.npy"
                except OSError as error:
                    cache_writable = False
                    logger.warning("cannot write the audio cache in %s (%s); keeping decoded "
                                   "audio in memory", cache_folder, error)
        length = int(meta["length"])
        if length >= min_length:
            return codes, length
        if trim_silence and length < int(meta["untrimmed_length"]):
            return (f"too short after trimming silence below {silence_threshold_db:g} dB: "
                    f"{length} of {meta['untrimmed_length']} samples left, need {min_length}")
        return f"too short: {length} samples at {sample_rate} Hz, need {min_length}"

    entries: list[tuple[Path, np.ndarray | Path, int]] = []  # (path, codes or .npy, length)
    skipped: list[tuple[Path, str]] = []
    for done, path in enumerate(paths, 1):
        result = load_one(path)
        if isinstance(result, str):
            logger.warning("skipping %s: %s", path, result)
            skipped.append((path, result))
        else:
            entries.append((path, *result))
        if progress is not None:
            progress(done, len(paths))
    if not entries:
        first = f"; {skipped[0][0].name}: {skipped[0][1]}" if skipped else ""
        raise DataError(f"no usable audio in {where} ({len(skipped)} files skipped{first})")

    def reload(path: Path) -> np.ndarray:
        return encode_file(path)[0]

    files = _open_entries(entries, reload, quantization_channels)
    if root is None:
        root = _common_folder([path for path, _, _ in entries])
    encoded = EncodedSet(files=tuple(files), sample_rate=sample_rate,
                         quantization_channels=quantization_channels, skipped=tuple(skipped),
                         root=root, min_length=min_length)
    logger.info("audio: %d files, %.1f s at %d Hz (%d from cache), %d skipped",
                len(files), encoded.duration, sample_rate, from_cache, len(skipped))
    return encoded


def _open_entries(entries: Sequence[tuple[Path, np.ndarray | Path, int]],
                  reload: Callable[[Path], np.ndarray],
                  quantization_channels: int) -> list[EncodedFile]:
    """Open cached codes: the largest files memory-mapped, up to `_open_budget()`.

    A cache file that cannot be read (deleted or damaged since) is dropped and the audio
    decoded again into memory with `reload`.
    """
    budget = _open_budget()
    by_size = sorted(range(len(entries)), key=lambda i: -entries[i][2])
    mapped = set(by_size if budget is None else by_size[:budget])
    files = []
    for i, (path, codes, length) in enumerate(entries):
        if isinstance(codes, Path):
            try:
                array = np.load(codes, mmap_mode="r" if i in mapped else None, allow_pickle=False)
                if array.shape != (length,):
                    raise ValueError(f"shape {array.shape}, expected ({length},)")
            except (OSError, ValueError) as error:
                logger.warning("cache file %s is unreadable (%s); decoding %s again",
                               codes, error, path)
                with contextlib.suppress(OSError):
                    codes.with_suffix(".json").unlink()
                array = reload(path)
            codes = array
        files.append(EncodedFile(path, codes, quantization_channels=quantization_channels))
    return files


def _common_folder(paths: Sequence[Path]) -> Path | None:
    try:
        return Path(os.path.commonpath([p.resolve().parent for p in paths]))
    except ValueError:  # different drives
        return None


# --------------------------------------------------------------------------- split

def split_by_file(encoded: EncodedSet, val_fraction: float, seed: int = 0
                  ) -> tuple[EncodedSet, EncodedSet]:
    """Hold out whole files for validation: -> (train, val).

    With two files or more and val_fraction > 0, round(n * val_fraction) files (at least
    1, at most n - 1) go to validation: those whose hash of (seed, path relative to
    `encoded.root`) is smallest. The choice depends only on the seed and the names, not
    on the order of files or on any RNG; adding a file moves at most one other file.
    With one file and val_fraction > 0, that file is split in time instead: its last
    round(length * val_fraction) codes are validation, the rest training; DataError when
    either part would be shorter than `encoded.min_length`.
    val_fraction == 0 gives (encoded, an empty set). Both sets keep the original order;
    `skipped` stays with `encoded` only.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")

    def subset(files: Sequence[EncodedFile]) -> EncodedSet:
        return dataclasses.replace(encoded, files=tuple(files), skipped=())

    n = len(encoded.files)
    if val_fraction == 0.0 or n == 0:
        return subset(encoded.files), subset(())
    if n == 1:
        only = encoded.files[0]
        n_val = math.floor(len(only) * val_fraction + 0.5)
        n_train = len(only) - n_val
        if min(n_train, n_val) < encoded.min_length:
            raise DataError(
                f"only one usable file ({only.path}, {len(only)} samples): splitting it in "
                f"time at val_fraction {val_fraction:g} leaves {n_train} training and {n_val} "
                f"validation samples, need {encoded.min_length} each; add files or change "
                f"val_fraction")
        return (subset([dataclasses.replace(only, codes=only.codes[:n_train])]),
                subset([dataclasses.replace(only, codes=only.codes[n_train:],
                                            start=only.start + n_train)]))
    n_val = min(max(math.floor(n * val_fraction + 0.5), 1), n - 1)
    root = encoded.root.resolve() if encoded.root is not None else None

    def rank(item: tuple[int, EncodedFile]) -> tuple[str, int]:
        index, file = item
        path = file.path.resolve()
        name = path.relative_to(root).as_posix() if root and path.is_relative_to(root) \
            else path.as_posix()
        text = f"{seed}\0{name}\0{file.start}"
        return hashlib.sha256(text.encode()).hexdigest(), index

    held_out = {index for index, _ in sorted(enumerate(encoded.files), key=rank)[:n_val]}
    return (subset([f for i, f in enumerate(encoded.files) if i not in held_out]),
            subset([f for i, f in enumerate(encoded.files) if i in held_out]))


# --------------------------------------------------------------------------- crops

class CropSampler:
    """Random training items of `item_length` codes from encoded files.

    files: an EncodedSet or a sequence of EncodedFiles (all of one quantization_channels).
    batch(B) -> LongTensor (B, item_length), the layout in the module docstring. A file
    is drawn with probability proportional to its length, then a start uniformly among
    its windows; a file shorter than the item is taken whole and left-padded with the
    silence code. All randomness comes from `generator` (a CPU torch.Generator), so
    equal seeds give equal batches, and its state can be saved to resume exactly.
    Cost per batch: B slices of memory-mapped codes.
    """

    def __init__(self, files: EncodedSet | Sequence[EncodedFile], item_length: int,
                 generator: torch.Generator) -> None:
        if item_length < 2:
            raise ValueError(f"item_length must be >= 2 (one input, one target), got {item_length}")
        self.files = tuple(files)
        if not self.files:
            raise DataError("no audio to draw training items from (empty set)")
        channels = {f.quantization_channels for f in self.files}
        if len(channels) > 1:
            raise ValueError(f"files mix quantization_channels {sorted(channels)}")
        self.item_length = item_length
        self.generator = generator
        self.pad_code = silence_code(channels.pop())
        lengths = torch.tensor([len(f) for f in self.files], dtype=torch.int64)
        self._ends = torch.cumsum(lengths, 0)
        # Number of distinct windows per file (1 for a file shorter than the item).
        self._windows = (lengths - item_length).clamp(min=0) + 1

    def batch(self, batch_size: int) -> torch.Tensor:
        """-> LongTensor (batch_size, item_length), codes in [0, quantization_channels)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        total = int(self._ends[-1])
        position = torch.randint(0, total, (batch_size,), generator=self.generator)
        which = torch.searchsorted(self._ends, position, right=True)
        # A uniform start in [0, windows): a 62-bit draw modulo the window count (the
        # bias, windows / 2**62, is far below anything measurable).
        draw = torch.randint(0, 1 << 62, (batch_size,), generator=self.generator)
        starts = draw % self._windows[which]
        out = np.full((batch_size, self.item_length), self.pad_code, dtype=np.int64)
        for row, (index, start) in enumerate(zip(which.tolist(), starts.tolist())):
            codes = self.files[index].codes
            take = min(len(codes), self.item_length)
            out[row, self.item_length - take:] = codes[start:start + take]
        return torch.from_numpy(out)


# ------------------------------------------------------------------- conditioning

@dataclass(frozen=True)
class Batch:
    """Training items with their conditioning.

    codes: (B, L) long; global_ids: (B,) long or None; mel: (B, n_mels, frames) float or
    None, aligned so that upsampled feature t conditions input position t (which
    predicts codes[:, t + 1]).
    """

    codes: torch.Tensor
    global_ids: torch.Tensor | None = None
    mel: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.codes.shape[0]

    def slice(self, start: int, stop: int) -> Batch:
        return Batch(self.codes[start:stop],
                     None if self.global_ids is None else self.global_ids[start:stop],
                     None if self.mel is None else self.mel[start:stop])

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.codes.to(device),
                     None if self.global_ids is None else self.global_ids.to(device),
                     None if self.mel is None else self.mel.to(device))


def speaker_ids_from_folders(encoded: EncodedSet, root: str | os.PathLike[str],
                             names: Sequence[str] | None = None) -> tuple[list[int], list[str]]:
    """Id of each file from the first sub-folder of `root` it lies in.

    -> (id per file, sorted speaker names). With `names` given (a trained model's map),
    a folder not in it is an error that lists the known names.
    """
    root_path = Path(root).resolve()
    folders = []
    for file in encoded.files:
        relative = file.path.resolve().relative_to(root_path)
        if len(relative.parts) < 2:
            raise DataError(f"{file.path} is not inside a speaker sub-folder of {root}; "
                            f"with speakers from folders, put each speaker's files in "
                            f"{root}/NAME/")
        folders.append(relative.parts[0])
    known = list(names) if names is not None else sorted(set(folders))
    unknown = sorted(set(folders) - set(known))
    if unknown:
        raise DataError(f"unknown speaker folder {unknown[0]!r}; the model knows: "
                        f"{', '.join(known)}")
    index = {name: i for i, name in enumerate(known)}
    return [index[name] for name in folders], known


class ConditionedCropSampler:
    """Random items with conditioning: global ids per file and/or log-mel per file.

    files: EncodedFiles; global_ids: one id per file or None; mels: one float array
    (n_mels, frames) per file or None, frame i covering samples [i * hop, (i + 1) * hop).
    With mels, an item starts at sample k * hop - 1 (k >= 1) so that its input position t
    predicts sample k * hop + t and reads mel frames k, k + 1, ...; the mel slice holds
    ceil((item_length - 1) / hop) frames. All randomness comes from `generator`.
    """

    def __init__(self, files: Sequence[EncodedFile], item_length: int, generator: torch.Generator,
                 *, global_ids: Sequence[int] | None = None,
                 mels: Sequence[np.ndarray | torch.Tensor] | None = None, hop_length: int = 1) -> None:
        self.files = tuple(files)
        if not self.files:
            raise DataError("no audio to draw training items from (empty set)")
        self.item_length = item_length
        self.generator = generator
        self.global_ids = None if global_ids is None else torch.as_tensor(list(global_ids))
        self.mels = None if mels is None else [torch.from_numpy(np.array(m, dtype=np.float32)) for m in mels]
        self.hop = hop_length
        self.frames_per_item = -(-(item_length - 1) // hop_length)
        if self.mels is not None:
            # k runs over 1 ... frames - frames_per_item.
            counts = [m.shape[1] - self.frames_per_item for m in self.mels]
            if min(counts) < 1:
                short = self.files[counts.index(min(counts))].path
                raise DataError(f"{short} is too short for a vocoder item of {item_length} "
                                f"samples plus one hop")
        else:
            counts = [max(1, len(f) - item_length + 1) for f in self.files]
        self._windows = torch.tensor(counts, dtype=torch.int64)
        self._ends = torch.cumsum(self._windows, 0)
        self.pad_code = silence_code(self.files[0].quantization_channels)

    def batch(self, batch_size: int) -> Batch:
        total = int(self._ends[-1])
        position = torch.randint(0, total, (batch_size,), generator=self.generator)
        which = torch.searchsorted(self._ends, position, right=True)
        offset = position - (self._ends[which] - self._windows[which])
        codes = np.full((batch_size, self.item_length), self.pad_code, dtype=np.int64)
        mel = None
        if self.mels is not None:
            mel = torch.empty(batch_size, self.mels[0].shape[0], self.frames_per_item)
        for row, (index, start) in enumerate(zip(which.tolist(), offset.tolist())):
            source = self.files[index].codes
            if self.mels is not None:
                k = start + 1
                begin = k * self.hop - 1
                codes[row] = source[begin:begin + self.item_length]
                mel[row] = self.mels[index][:, k:k + self.frames_per_item]
            else:
                take = min(len(source), self.item_length)
                codes[row, self.item_length - take:] = source[start:start + take]
        ids = None if self.global_ids is None else self.global_ids[which]
        return Batch(torch.from_numpy(codes), ids, mel)


def mel_features(files: Sequence[EncodedFile], *, sample_rate: int, mel: Any,
                 cache_dir: str | os.PathLike[str] | None = None) -> list[np.ndarray]:
    """Log-mel (n_mels, len // hop) of each file's codes, cached beside the codes.

    The cache key hashes the codes themselves with the mel settings, so features follow
    any change of the audio or of its decoding.
    """
    from .features import log_mel_of_codes  # torchaudio transforms: only when needed

    folder = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "mel-v2"
    settings = json.dumps({"sample_rate": sample_rate, **dataclasses.asdict(mel)}, sort_keys=True)
    result = []
    for file in files:
        digest = hashlib.sha256(settings.encode())
        digest.update(np.ascontiguousarray(file.codes).tobytes())
        digest.update(str(file.quantization_channels).encode())
        target = folder / f"{digest.hexdigest()[:32]}.npy"
        try:
            result.append(np.load(target, mmap_mode="r", allow_pickle=False))
            continue
        except (OSError, ValueError):
            pass
        features = log_mel_of_codes(file.codes, sample_rate, mel,
                                    file.quantization_channels).numpy()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, lambda handle: np.save(handle, features, allow_pickle=False))
        except OSError as error:
            logger.warning("cannot cache mel features in %s (%s)", folder, error)
        result.append(features)
    return result


def mel_statistics(mels: Sequence[np.ndarray | torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-band mean and a shared standard deviation over every frame of `mels`
    (n_mels, frames).

    -> (mean, std), each (n_mels,) float32. The std is pooled over all bands (the root of
    their mean variance) rather than per band: a band that barely moves in training (above
    the audio's bandwidth, or between the pitches of a few tones) would otherwise get a tiny
    std and turn the slightest difference in new audio into a huge input.
    """
    if not mels:
        raise DataError("no mel features to compute statistics from")
    frames = torch.cat([torch.as_tensor(np.asarray(m, dtype=np.float64)) for m in mels], dim=1)
    if frames.shape[1] == 0:
        raise DataError("no mel frames to compute statistics from")
    mean = frames.mean(dim=1)
    pooled = frames.var(dim=1, correction=0).mean().sqrt().clamp(min=1e-3)
    return mean.float(), pooled.expand_as(mean).float().clone()

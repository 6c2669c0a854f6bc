"""Training data: a folder of audio -> cached mu-law codes -> the files, split and
conditioning a config needs.

    folder --find_audio_files--> paths --decode_audio, trim, mu_law_encode--> codes
      (cache.ArrayCache "codes", one memory-mapped .npy per file) = EncodedSet
      --split_by_file--> train, val   --speaker_ids_from_folders--> one id per file
      --mel_features (cache.ArrayCache "mel")--> one log-mel per file
    prepare_data(config, folder) does all of it -> PreparedData(train, val: FileSet, ...)
    crops.CropSampler(FileSet...).batch(B) -> crops.Batch (see crops.py for the layout)

Files shorter than `min_length` after resampling (and trimming) are skipped with a
warning: for training `min_length = receptive_field + 1` keeps every file that gives at
least one target predicted from receptive_field samples of real audio (a vocoder needs a
whole item plus two hops, for its hop-aligned crops). So are files whose every sample
has one code (digital silence, or a constant): nothing to learn, and scored they would
only pull the validation bits down.

Cache. Codes are cached per file, keyed by the resolved path, size, mtime, ctime and
inode of the file (`cache.file_stamp`: a file replaced with its old size and mtime, as
`cp -p` and `rsync -t` do, is decoded afresh), the sample rate, quantization_channels
and the trim settings, so a changed file or setting is decoded afresh (cache.py
describes the folder layout and versions).

Coding. A categorical model's codes are mu-law codes ("mu-law", cache kind "codes"); a
"mol" model's are its 16-bit samples ("pcm16", cache kind "pcm16": uint16 offset-binary
codes, sample + 32768, see wavenet/coding/pcm.py), so its audio stays at 16 bits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..coding.pcm import codes_dtype, codes_to_waveform, silence_code, waveform_to_codes
from ..config import PCM16_CLASSES, Config, MelConfig
from ..errors import AudioDecodeError, DataError, InvalidArgumentError
from .audio import (
    AUDIO_EXTENSIONS,
    decode_audio,
    find_audio_files,
    is_audio_file,
    loud_span,
    stream_audio,
    trim_silent_edges,
    walk_folders,
)
from .cache import ArrayCache, default_cache_dir, file_stamp

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioDecodeError",
    "DataError",
    "EncodedFile",
    "EncodedSet",
    "FileSet",
    "PreparedData",
    "codes_dtype",
    "decode_audio",
    "decode_codes",
    "default_cache_dir",
    "encode_waveform",
    "file_waveform",
    "find_audio_files",
    "load_encoded",
    "mel_features",
    "mel_statistics",
    "prepare_data",
    "silence_code",
    "speaker_ids_from_folders",
    "split_by_file",
]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- codes


def encode_waveform(
    waveform: np.ndarray, quantization_channels: int, coding: str = "mu-law"
) -> np.ndarray:
    """float (T,) in [-1, 1] (clipped beyond) -> codes (T,) of `codes_dtype`: mu-law codes,
    or for "pcm16" 16-bit sample codes (quantization_channels must then be 65,536)."""
    codes = waveform_to_codes(
        torch.from_numpy(np.ascontiguousarray(waveform)), quantization_channels, coding
    )
    return codes.numpy().astype(codes_dtype(quantization_channels))


def decode_codes(
    codes: np.ndarray | torch.Tensor, quantization_channels: int, coding: str = "mu-law"
) -> torch.Tensor:
    """codes (T,) -> the float32 waveform (T,) they stand for."""
    return codes_to_waveform(
        torch.as_tensor(np.asarray(codes, dtype=np.int64)), quantization_channels, coding
    )


# ----------------------------------------------------------------------- data sets


@dataclass(frozen=True, eq=False)
class EncodedFile:
    """Codes of one file (or of a time slice of it, starting at code `start`).

    `codes` is 1-D, uint8/uint16, usually a read-only memory map of the cache entry,
    with values in [0, quantization_channels); `coding` says what they stand for
    ("mu-law", or "pcm16" with quantization_channels 65,536).
    """

    path: Path
    codes: np.ndarray
    start: int = 0
    quantization_channels: int = 256
    coding: str = "mu-law"

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
    coding: str = "mu-law"

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
    coding: str = "mu-law",
    exclude: Sequence[str | os.PathLike[str]] = (),
) -> EncodedSet:
    """Decode, resample, mu-law encode and cache every audio file of a folder (or list).

    coding="pcm16" keeps 16-bit samples instead (codes sample + 32768, uint16;
    quantization_channels is then not used, and is 65,536 in the result).

    source: a folder (searched recursively, see `find_audio_files`, which does not enter
        the `exclude` folders) or a list of files.
    min_length: fewest codes a file must have after resampling and trimming (>= 1).
    trim_silence: drop leading/trailing samples below `silence_threshold_db` dBFS.
    cache_dir: where codes are cached (default `default_cache_dir()`); when it cannot be
        written, a warning is logged and the codes are kept in memory.
    progress: called as progress(done, total) after each file.

    Files that cannot be used (unreadable, empty, damaged, not audio, too short, silent or
    constant throughout) are skipped, each with a WARNING naming it and the reason, and
    listed in `.skipped`.
    Raises DataError when the folder is missing or no usable file remains.
    """
    if min_length < 1:
        raise InvalidArgumentError(f"min_length must be >= 1, got {min_length}")
    if coding == "pcm16":
        quantization_channels = PCM16_CLASSES
    elif coding != "mu-law":
        raise InvalidArgumentError(f'coding must be "mu-law" or "pcm16", got {coding!r}')
    paths, root, where = _source_paths(source, exclude)
    encoder = _Encoder(
        sample_rate,
        quantization_channels,
        trim_silence,
        silence_threshold_db,
        ArrayCache(cache_dir, "pcm16" if coding == "pcm16" else "codes"),
        coding,
    )
    entries: list[tuple[Path, np.ndarray | Path, int]] = []  # (path, codes or .npy, length)
    skipped: list[tuple[Path, str]] = []
    for done, path in enumerate(paths, 1):
        result = encoder.load(path, min_length)
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
    arrays = encoder.cache.open_arrays(
        [(codes, length) for _, codes, length in entries],
        lambda i: encoder.encode(entries[i][0])[0],
    )
    files = tuple(
        EncodedFile(path, codes, quantization_channels=quantization_channels, coding=coding)
        for (path, _, _), codes in zip(entries, arrays)
    )
    encoded = EncodedSet(
        files=files,
        sample_rate=sample_rate,
        quantization_channels=quantization_channels,
        skipped=tuple(skipped),
        root=root if root is not None else _common_folder([f.path for f in files]),
        min_length=min_length,
        coding=coding,
    )
    logger.info(
        "audio: %d files, %.1f s at %d Hz (%d from cache), %d skipped",
        len(files),
        encoded.duration,
        sample_rate,
        encoder.from_cache,
        len(skipped),
    )
    return encoded


def _source_paths(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    exclude: Sequence[str | os.PathLike[str]] = (),
) -> tuple[list[Path], Path | None, str]:
    """-> (audio paths, the folder searched or None for a list, words naming the source).

    `exclude` may name folders (not searched) and files (left out). Other wavenet run
    folders under a folder searched are left out too (`_folders_left_out`).
    """
    if isinstance(source, (str, os.PathLike)):
        root = Path(source)
        left_out = _folders_left_out(root, exclude) if root.is_dir() else []
        paths = find_audio_files(root, [*exclude, *left_out])
        files_out = {os.path.realpath(p) for p in exclude if os.path.isfile(p)}
        paths = [p for p in paths if os.path.realpath(p) not in files_out]
        if not paths:
            raise DataError(
                f"no audio files in {root} (looked for {', '.join(sorted(AUDIO_EXTENSIONS))})"
            )
        return paths, root, str(root)
    paths = [Path(p) for p in source]
    if not paths:
        raise DataError("no audio files given")
    return paths, None, f"the {len(paths)} files given"


def _is_run_folder(filenames: Sequence[str], dirnames: Sequence[str]) -> bool:
    """A folder holding config.json and checkpoints/ is a training run's (wavenet's, or
    another tool's laid out so): its audio is model output (samples/step-N.wav)."""
    return "config.json" in filenames and "checkpoints" in dirnames


def _folders_left_out(root: Path, exclude: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The run folders under `root` (below it, not `root` itself, and outside `exclude`),
    each named in a WARNING; a hidden folder holding audio (which `find_audio_files`
    skips) gets a WARNING too."""
    runs: list[Path] = []
    for dirpath, dirnames, filenames in walk_folders(root, exclude):
        if dirpath != str(root) and _is_run_folder(filenames, dirnames):
            logger.warning(
                "skipping %s: a wavenet run folder (config.json and checkpoints/); "
                "its audio is model output, not data",
                dirpath,
            )
            runs.append(Path(dirpath))
            dirnames[:] = []
            continue
        for name in sorted(d for d in dirnames if d.startswith(".")):
            if _holds_audio(Path(dirpath, name)):
                logger.warning(
                    "%s holds audio but is not read: folders whose name starts with '.' are hidden",
                    Path(dirpath, name),
                )
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return runs


def _holds_audio(folder: Path) -> bool:
    """Whether any file under `folder` has an audio extension."""
    return any(is_audio_file(name) for _, _, filenames in os.walk(folder) for name in filenames)


@dataclass
class _Encoder:
    """Codes of one file at a time, from the cache or decoded (and then cached)."""

    sample_rate: int
    quantization_channels: int
    trim_silence: bool
    silence_threshold_db: float
    cache: ArrayCache
    coding: str = "mu-law"
    from_cache: int = 0

    def encode(self, path: Path) -> tuple[np.ndarray, int]:
        """-> (codes, length before trimming); raises AudioDecodeError.

        Decoded, resampled and coded a block at a time (`audio.stream_audio`): memory
        holds the file's codes (1 or 2 bytes a sample) and one block of float samples,
        not the whole waveform (a one-hour file took 3 GB). Trimming keeps the codes from
        the first to the last sample at or above the threshold, as `trim_silent_edges`
        keeps those samples."""
        blocks: list[np.ndarray] = []
        first = last = None  # the loud samples' span over the file, for trimming
        length = 0
        for waveform in stream_audio(path, self.sample_rate):
            span = loud_span(waveform, self.silence_threshold_db) if self.trim_silence else None
            if span is not None:
                first = length + span[0] if first is None else first
                last = length + span[1]
            blocks.append(encode_waveform(waveform, self.quantization_channels, self.coding))
            length += len(waveform)
        codes = (
            np.concatenate(blocks)
            if blocks
            else np.zeros(0, codes_dtype(self.quantization_channels))
        )
        del blocks
        if self.trim_silence:
            codes = (
                codes[first : last + 1].copy()
                if first is not None and last is not None
                else codes[:0]
            )
        return codes, length

    def key(self, resolved: Path, stat: os.stat_result) -> dict[str, Any]:
        key = {
            "path": str(resolved),
            **file_stamp(stat),
            "sample_rate": self.sample_rate,
            "quantization_channels": self.quantization_channels,
            "trim_silence": self.trim_silence,
            "silence_threshold_db": self.silence_threshold_db if self.trim_silence else None,
        }
        if self.coding == "pcm16":  # its own cache kind; mu-law keys stay as they were
            del key["quantization_channels"]
        return key

    def load(self, path: Path, min_length: int) -> tuple[np.ndarray | Path, int] | str:
        """-> (codes or their cache file, length), or the reason to skip the file."""
        try:
            resolved = path.resolve()
            key = self.key(resolved, resolved.stat())
        except OSError as error:
            return f"cannot read: {error.strerror or error}"
        meta = self.cache.lookup(key)
        codes: np.ndarray | Path
        if meta is not None:
            codes = self.cache.path(key)
            self.from_cache += 1
        else:
            try:
                codes, untrimmed = self.encode(path)
            except AudioDecodeError as error:
                return error.reason
            meta = {
                "source": str(path),
                "length": len(codes),
                "untrimmed_length": untrimmed,
                "dtype": codes.dtype.name,
                "constant_code": _constant_code(codes),
            }
            codes = self.cache.store(key, codes, meta) or codes
        length = int(meta["length"])
        if length >= min_length:
            constant = (
                meta["constant_code"] if "constant_code" in meta else _cached_constant_code(codes)
            )  # an entry from before it was kept
            if constant is None:
                return codes, length
            if constant == silence_code(self.quantization_channels):
                return "silent: every sample codes to silence, nothing to learn"
            return f"constant: every sample is code {constant}, nothing to learn"
        if self.trim_silence and length < int(meta["untrimmed_length"]):
            return (
                f"too short after trimming silence below {self.silence_threshold_db:g} dB: "
                f"{length} of {meta['untrimmed_length']} samples left, need {min_length}"
            )
        return f"too short: {length} samples at {self.sample_rate} Hz, need {min_length}"


def _constant_code(codes: np.ndarray) -> int | None:
    """The one code of a file whose samples all have it, else None."""
    return int(codes[0]) if len(codes) and bool((codes == codes[0]).all()) else None


def _cached_constant_code(codes: np.ndarray | Path) -> int | None:
    """`_constant_code` of codes or of their cache file (None when it cannot be read:
    `ArrayCache.open_arrays` deals with that)."""
    try:
        return _constant_code(np.load(codes, mmap_mode="r") if isinstance(codes, Path) else codes)
    except (OSError, ValueError):
        return None


def _common_folder(paths: Sequence[Path]) -> Path | None:
    try:
        return Path(os.path.commonpath([p.resolve().parent for p in paths]))
    except ValueError:  # different drives
        return None


# ------------------------------------------------------------------ trailing silence


def last_loud_code(codes: np.ndarray, loud: np.ndarray, block: int = 1 << 16) -> int:
    """The index of the last code whose value is loud (`loud`: one bool per code value),
    -1 when none is; reads the codes from the end, a block at a time."""
    for stop in range(len(codes), 0, -block):
        start = max(0, stop - block)
        hits = np.flatnonzero(loud[np.asarray(codes[start:stop])])
        if len(hits):
            return start + int(hits[-1])
    return -1


def cut_trailing_silence(encoded: EncodedSet, config: Config, min_length: int) -> EncodedSet:
    """Training files without the trailing silence past data.tail_silence_ms after their
    last loud sample (above data.silence_threshold_db), never shorter than min_length.

    A recording's last pause has no end in the data: kept whole, every position in it is
    a pause that goes on, and past the receptive field the model cannot tell it from any
    other pause, so it learns that long pauses never end (docs/decisions.md)."""
    margin_ms = config.data.tail_silence_ms
    if margin_ms is None or not encoded.files:
        return encoded
    classes, coding = config.model.classes, config.model.coding
    values = codes_to_waveform(torch.arange(classes), classes, coding).numpy()
    loud = np.abs(values) >= 10.0 ** (config.data.silence_threshold_db / 20.0)
    margin = round(margin_ms * config.data.sample_rate / 1000)
    files, cut = [], 0
    for file in encoded.files:
        keep = max(last_loud_code(file.codes, loud) + 1 + margin, min_length)
        if keep < len(file):
            cut += len(file) - keep
            file = dataclasses.replace(file, codes=file.codes[:keep])
        files.append(file)
    if cut:
        logger.info(
            "trailing silence cut from the training files: %.1f s of %.1f s "
            "(data.tail_silence_ms %g)",
            cut / config.data.sample_rate,
            (sum(len(f) for f in files) + cut) / config.data.sample_rate,
            margin_ms,
        )
    return dataclasses.replace(encoded, files=tuple(files))


# --------------------------------------------------------------------------- split


def split_by_file(
    encoded: EncodedSet, val_fraction: float, seed: int = 0
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
        raise InvalidArgumentError(f"val_fraction must be in [0, 1), got {val_fraction}")

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
                f"val_fraction"
            )
        return (
            subset([dataclasses.replace(only, codes=only.codes[:n_train])]),
            subset(
                [dataclasses.replace(only, codes=only.codes[n_train:], start=only.start + n_train)]
            ),
        )
    n_val = min(max(math.floor(n * val_fraction + 0.5), 1), n - 1)
    root = encoded.root.resolve() if encoded.root is not None else None

    def rank(item: tuple[int, EncodedFile]) -> tuple[str, int]:
        index, file = item
        path = file.path.resolve()
        name = (
            path.relative_to(root).as_posix()
            if root and path.is_relative_to(root)
            else path.as_posix()
        )
        text = f"{seed}\0{name}\0{file.start}"
        return hashlib.sha256(text.encode()).hexdigest(), index

    held_out = {index for index, _ in sorted(enumerate(encoded.files), key=rank)[:n_val]}
    return (
        subset([f for i, f in enumerate(encoded.files) if i not in held_out]),
        subset([f for i, f in enumerate(encoded.files) if i in held_out]),
    )


# -------------------------------------------------------------------- conditioning


def speaker_ids_from_folders(
    encoded: EncodedSet, root: str | os.PathLike[str], names: Sequence[str] | None = None
) -> tuple[list[int], list[str]]:
    """Id of each file from the first sub-folder of `root` it lies in.

    -> (id per file, sorted speaker names). With `names` given (a trained model's map),
    a folder not in it is an error that lists the known names. Names compare in Unicode
    NFC (macOS writes `é` in folder names as e + a combining accent, NFD); the names of
    a new map are NFC.
    """
    root_path = Path(root).resolve()
    folders = []
    for file in encoded.files:
        relative = file.path.resolve().relative_to(root_path)
        if len(relative.parts) < 2:
            raise DataError(
                f"{file.path} is not inside a speaker sub-folder of {root}; "
                f"with speakers from folders, put each speaker's files in "
                f"{root}/NAME/"
            )
        folders.append(_nfc(relative.parts[0]))
    known = list(names) if names is not None else sorted(set(folders))
    index = {_nfc(name): i for i, name in enumerate(known)}
    unknown = sorted(set(folders) - set(index))
    if unknown:
        raise DataError(
            f"unknown speaker folder {unknown[0]!r}; the model knows: {', '.join(known)}"
        )
    return [index[name] for name in folders], known


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def file_waveform(
    file: EncodedFile,
    *,
    sample_rate: int,
    trim_silence: bool = False,
    silence_threshold_db: float = -50.0,
) -> np.ndarray:
    """The float audio (len(file),) whose mu-law codes `file` holds: decoded again,
    trimmed with the same settings, the same slice; DataError when the file changed."""
    audio = decode_audio(file.path, sample_rate)
    if trim_silence:
        audio = trim_silent_edges(audio, silence_threshold_db)
    audio = audio[file.start : file.start + len(file)]
    if len(audio) != len(file):
        raise DataError(
            f"{file.path} changed while it was read: {len(audio)} samples where "
            f"its codes have {len(file)}"
        )
    return audio


def mel_features(
    files: Sequence[EncodedFile],
    *,
    sample_rate: int,
    mel: MelConfig,
    cache_dir: str | os.PathLike[str] | None = None,
    trim_silence: bool = False,
    silence_threshold_db: float = -50.0,
) -> list[np.ndarray]:
    """Log-mel (n_mels, len // hop) of each file, cached beside the codes.

    mel.format "wavenet": of the file's codes; the cache key holds a hash of the codes with
    the mel settings, so features follow any change of the audio or of its decoding.
    "hifigan": of the float audio, decoded again (and trimmed with the same settings as
    its codes); the key holds the file's path and `file_stamp`, the decoding settings, and
    the slice of the file (`start`, length) that the codes hold.
    """
    from .features import hifigan_log_mel, log_mel_of_codes  # torchaudio: only when needed

    cache = ArrayCache(cache_dir, "mel")
    settings = {"sample_rate": sample_rate, **dataclasses.asdict(mel)}
    result = []
    for file in files:
        if mel.format == "hifigan":
            stat = file.path.resolve().stat()
            key = {
                **settings,
                "path": str(file.path.resolve()),
                **file_stamp(stat),
                "trim_silence": trim_silence,
                "silence_threshold_db": silence_threshold_db if trim_silence else None,
                "start": file.start,
                "length": len(file),
            }

            def compute(file: EncodedFile = file) -> np.ndarray:
                audio = file_waveform(
                    file,
                    sample_rate=sample_rate,
                    trim_silence=trim_silence,
                    silence_threshold_db=silence_threshold_db,
                )
                return hifigan_log_mel(torch.from_numpy(audio), sample_rate, mel).numpy()
        else:
            digest = hashlib.sha256(np.ascontiguousarray(file.codes).tobytes()).hexdigest()
            key = {
                **settings,
                "quantization_channels": file.quantization_channels,
                "codes_sha256": digest,
            }
            if file.coding != "mu-law":  # mu-law keys stay as they were
                key["coding"] = file.coding

            def compute(file: EncodedFile = file) -> np.ndarray:
                return log_mel_of_codes(
                    file.codes, sample_rate, mel, file.quantization_channels, file.coding
                ).numpy()

        result.append(cache.load_or_compute(key, compute))
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


# ------------------------------------------------------------------------- prepare


@dataclass(frozen=True, eq=False)
class FileSet:
    """Encoded files with their conditioning, ready for `crops.CropSampler` or scoring.

    global_ids: one speaker id per file, or None; mels: one log-mel (n_mels, frames) per
    file, or None.
    """

    files: tuple[EncodedFile, ...] = ()
    global_ids: tuple[int, ...] | None = None
    mels: tuple[np.ndarray, ...] | None = None

    def __len__(self) -> int:
        return len(self.files)


@dataclass(frozen=True, eq=False)
class PreparedData:
    """What `prepare_data` returns: the sets, the speaker names, the files skipped and why."""

    train: FileSet
    val: FileSet
    speakers: list[str] | None = None
    skipped: tuple[tuple[Path, str], ...] = ()


def prepare_data(
    config: Config,
    data: str | os.PathLike[str],
    *,
    val_data: str | os.PathLike[str] | None = None,
    speakers_from_folders: bool = False,
    speakers: Sequence[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    purpose: Literal["train", "eval"] = "train",
    mel_dir: str | os.PathLike[str] | None = None,
    exclude: Sequence[str | os.PathLike[str]] = (),
) -> PreparedData:
    """Files, split, speaker ids and mels for `config`: one call for training and for eval.

    data: the audio folder. val_data: a folder of held-out audio (default: hold out
    config.data.val_fraction of `data`'s files, see `split_by_file`).
    speakers_from_folders: each file's first sub-folder under its folder is its speaker;
    speakers: a trained model's speaker names (implies speakers from folders; a folder not
    in it is an error). Mels are computed when config.model.local_channels is set.
    purpose="eval": every file of `data` is scored whole, so all go to `.val` (`.train` is
    empty) and a file needs only receptive_field + 1 samples.
    mel_dir: a vocoder's mels come from this folder (an acoustic model's output: x.npy or
    x.pt for audio x.wav, `melfiles.paired_mel` checks its length) instead of being
    computed; each file is cut to the whole hops its mel covers.
    exclude: folders under `data` or `val_data` that are not searched (a training run's
    own folder: the samples it writes are not data).
    A `val_data` inside `data` is left out of the training files (with a WARNING); one
    that is `data`, or holds it, is a DataError: its files would be trained on.
    Other run folders (config.json with checkpoints/) under either are not read, each
    named in a WARNING.
    """
    rf = config.model.receptive_field
    min_length = rf + 1
    if purpose == "train" and config.model.local_channels is not None:
        min_length = rf + config.data.target_length + 2 * config.mel.hop_length
    encode: dict[str, Any] = dict(
        sample_rate=config.data.sample_rate,
        coding=config.model.coding,
        quantization_channels=config.model.classes,
        min_length=min_length,
        trim_silence=config.data.trim_silence,
        silence_threshold_db=config.data.silence_threshold_db,
        cache_dir=cache_dir,
        exclude=exclude,
    )
    train_exclude = (
        _val_data_left_out(Path(data), Path(val_data))
        if val_data is not None and purpose == "train"
        else []
    )
    encoded = load_encoded(data, **{**encode, "exclude": [*exclude, *train_exclude]})
    if purpose == "eval":
        train, val, val_root = dataclasses.replace(encoded, files=()), encoded, data
    elif val_data is None:
        (train, val), val_root = (
            split_by_file(encoded, config.data.val_fraction, config.train.seed),
            data,
        )
    else:
        train, val, val_root = encoded, load_encoded(val_data, **encode), val_data
    if purpose == "train" and config.model.local_channels is None:
        train = cut_trailing_silence(train, config, min_length)
    names, train_ids, val_ids = None, None, None
    if speakers_from_folders or speakers is not None:
        ids, names = speaker_ids_from_folders(encoded, data, speakers)
        by_path = {f.path: i for f, i in zip(encoded.files, ids)}
        train_ids = tuple(by_path[f.path] for f in train)
        val_ids = (
            tuple(speaker_ids_from_folders(val, val_root, names)[0])
            if val_data is not None
            else tuple(by_path[f.path] for f in val)
        )
    skipped = encoded.skipped + (val.skipped if val_data is not None else ())
    given = None
    if mel_dir is not None:
        given = _paired_mels(
            config, Path(mel_dir), encoded.files + (val.files if val_data is not None else ())
        )
    return PreparedData(
        _file_set(train, train_ids, config, cache_dir, given),
        _file_set(val, val_ids, config, cache_dir, given),
        names,
        skipped,
    )


def _val_data_left_out(data: Path, val_data: Path) -> list[Path]:
    """[val_data] when it lies inside `data` (to leave out of training, said in a
    WARNING), else []; DataError when it is `data` or holds it."""
    data_real, val_real = data.resolve(), val_data.resolve()
    if val_real == data_real:
        raise DataError(
            f"--val-data {val_data} is --data {data}: every validation file would "
            f"be trained on; give a folder of other files, or leave --val-data "
            f"out to hold out data.val_fraction of --data's files"
        )
    if data_real.is_relative_to(val_real):
        raise DataError(
            f"--data {data} lies inside --val-data {val_data}: every training "
            f"file would be scored as validation; give folders apart (a "
            f"--val-data inside --data is left out of training)"
        )
    if not val_real.is_relative_to(data_real):
        return []
    logger.warning(
        "--val-data %s lies inside --data %s: its files are held out of training", val_data, data
    )
    return [val_data]


def _paired_mels(
    config: Config, mel_dir: Path, files: Sequence[EncodedFile]
) -> dict[Path, np.ndarray]:
    """The mel of each whole file from `mel_dir`, by path (see `melfiles.paired_mel`)."""
    from .melfiles import paired_mel

    if config.model.local_channels is None:
        raise DataError(
            "--mel-dir gives a vocoder its mels; this model has no mel input "
            "(model.local_channels is unset)"
        )
    if config.data.trim_silence:
        raise DataError(
            "--mel-dir needs data.trim_silence = false: trimming the audio would "
            "move it against its mel"
        )
    return {
        f.path: paired_mel(f.path, len(f), mel_dir, config.mel.n_mels, config.mel.hop_length)
        for f in files
    }


def _file_set(
    encoded: EncodedSet,
    ids: tuple[int, ...] | None,
    config: Config,
    cache_dir: str | os.PathLike[str] | None,
    given: dict[Path, np.ndarray] | None = None,
) -> FileSet:
    """The files with their ids, and their mels when the model reads a mel: computed, or
    the `given` mels of whole files, each file cut to the whole hops its mel covers."""
    mels = None
    if given is not None:
        from .melfiles import aligned_slice

        files, mels_list, hop = [], [], config.mel.hop_length
        for file in encoded.files:
            whole = given[file.path]
            first, skip, kept = aligned_slice(file.start, len(file), whole.shape[1], hop)
            files.append(
                dataclasses.replace(
                    file, codes=file.codes[skip : skip + kept * hop], start=file.start + skip
                )
            )
            mels_list.append(whole[:, first : first + kept])
        return FileSet(tuple(files), ids, tuple(mels_list))
    if config.model.local_channels is not None:
        mels = tuple(
            mel_features(
                encoded.files,
                sample_rate=config.data.sample_rate,
                mel=config.mel,
                cache_dir=cache_dir,
                trim_silence=config.data.trim_silence,
                silence_threshold_db=config.data.silence_threshold_db,
            )
        )
    return FileSet(encoded.files, ids, mels)

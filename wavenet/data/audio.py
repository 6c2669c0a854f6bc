"""Finding and decoding audio files: soundfile in, float32 mono at a target rate out.

Decoding is pure numpy/soundfile plus libsoxr's resampler (`soxr`)::

    file --(soundfile, float32, always 2-D)--> (frames, channels)
         --(mean of channels)--> mono --(resample to sample_rate)--> float32 (T,)

What happens to damaged files (soundfile 0.12+, libsndfile 1.2):

- zero-byte, non-audio (say, text renamed .wav), or a header cut short: libsndfile
  refuses to open it -> `AudioDecodeError`.
- WAV whose header promises more data than the file holds (a half-copied file):
  libsndfile shortens the frame count to what is there; `declared_wav_frames` reads the
  promise from the RIFF header, and `read_mono` uses the frames present with a warning
  naming the file. (AIFF cut short is still read silently.)
- MP3 cut in the middle: the frames up to the cut are read; the header's frame count is
  larger, and `decode_audio` logs a warning saying how many frames it got.
- FLAC or Ogg cut in the middle: libsndfile fails (on open or while reading) ->
  `AudioDecodeError`; nothing of the file is used.

Float files hold any value; full scale is [-1, 1]. Samples beyond it are clipped when
they are coded, so a float file a little over full scale is used (one warning), but one
that reaches MAX_PEAK or more (typically integer sample values written as floats,
peaks in the thousands) is refused: clipped, it would be a square wave, not the audio.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..errors import AudioDecodeError, DataError, InvalidArgumentError

logger = logging.getLogger(__name__)

# Extensions (lower case) of the formats soundfile reads; the match ignores case.
AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".wav",
        ".wave",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".aiff",
        ".aif",
        ".aifc",
        ".au",
        ".snd",
        ".caf",
        ".w64",
        ".rf64",
    }
)

# Peak (mixed to mono) from which a float file is refused as not scaled to [-1, 1]: 6 dB
# over full scale, far more than a hot master's overs, far less than integer-range values.
MAX_PEAK = 2.0

# Frames read per soundfile call: mixing to mono block by block keeps only the mono
# signal in memory, never the full multichannel one.
_BLOCK_FRAMES = 1 << 18


def is_audio_file(path: str | os.PathLike[str]) -> bool:
    """True when the name has an audio extension (any case) and is not hidden."""
    name = Path(path).name
    return not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS


def find_audio_files(
    folder: str | os.PathLike[str], exclude: Sequence[str | os.PathLike[str]] = ()
) -> list[Path]:
    """Audio files under `folder`, recursively, in a deterministic sorted order.

    Hidden files and folders (name starting with ".", e.g. macOS "._x.wav") are skipped;
    symlinked folders are followed once each, a file reached by a second name (a symlink
    or hard link to a file already listed) is listed once, under its first name, with a
    warning (twice, it would be trained on twice, or be in training and validation both),
    an audio name that is no file (a broken link) is skipped with a warning, and the
    `exclude` folders (say, a training run's own folder inside its data, whose samples
    are not data) are not entered. Paths
    are `folder / relative path`, sorted by their relative path components. A path to one
    audio file gives `[that path]`.
    Raises DataError when `folder` does not exist or is neither a folder nor audio.
    """
    root = Path(folder)
    if not root.exists():
        raise DataError(f"data folder not found: {root}")
    if root.is_file():
        if is_audio_file(root):
            return [root]
        raise DataError(
            f"not a folder or an audio file: {root} "
            f"(audio extensions: {', '.join(sorted(AUDIO_EXTENSIONS))})"
        )
    if not root.is_dir():
        raise DataError(f"not a folder: {root}")
    found: list[Path] = []
    for dirpath, dirnames, filenames in walk_folders(root, exclude):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        base = Path(dirpath)
        for name in filenames:
            if not is_audio_file(name):
                continue
            if (base / name).is_file():
                found.append(base / name)
            else:  # a broken symbolic link (or a fifo, a socket): nothing to read
                logger.warning("%s is not a readable file (a broken link?); skipped", base / name)
    return _once_each(sorted(found, key=lambda p: p.relative_to(root).parts))


def walk_folders(
    root: str | os.PathLike[str], exclude: Sequence[str | os.PathLike[str]] = ()
) -> Iterator[tuple[str, list[str], list[str]]]:
    """`os.walk(root)` following symbolic links, each real folder once (a symlink loop or
    a second link to a folder is not entered again) and the `exclude` folders not at all.
    The caller may prune `dirnames` in place, as with os.walk."""
    seen: set[str] = {os.path.realpath(p) for p in exclude}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        yield dirpath, dirnames, filenames


def _once_each(paths: list[Path]) -> list[Path]:
    """`paths` less those that name a file listed earlier (same device and inode)."""
    first: dict[tuple[int, int], Path] = {}
    unique = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            stat = None
        key = (stat.st_dev, stat.st_ino) if stat is not None and stat.st_ino else None
        if key is not None and key in first:
            logger.warning(
                "%s is a second name of %s (a link); reading the file once", path, first[key]
            )
            continue
        if key is not None:
            first[key] = path
        unique.append(path)
    return unique


def read_mono(path: str | os.PathLike[str], start: int = 0) -> tuple[np.ndarray, int]:
    """Decode a file at its own rate: -> (float32 mono (frames,), sample rate); from
    frame `start` on when given (a seekable file; `decode_tail`).

    Channels are averaged. Raises AudioDecodeError for an empty, unreadable, damaged or
    non-audio file, one with no frames, one with NaN or infinite samples, or one whose
    samples reach MAX_PEAK (not scaled to [-1, 1]); a peak over 1.0 below that is logged.
    """
    reader = _MonoBlocks(Path(path), start)
    chunks = list(reader)
    return np.concatenate(chunks), reader.sample_rate


def stream_audio(path: str | os.PathLike[str], sample_rate: int) -> Iterator[np.ndarray]:
    """`decode_audio` a block at a time: float32 mono blocks at `sample_rate` whose
    concatenation is `decode_audio(path, sample_rate)` (the resampler streams; it gives
    the same samples), so that a long file is never whole in memory. The same checks and
    AudioDecodeErrors, raised when the block that fails them is read."""
    reader = _MonoBlocks(Path(path))
    stream = None
    for block in reader:
        if reader.sample_rate == sample_rate:
            yield block
            continue
        if stream is None:
            stream = soxr.ResampleStream(
                reader.sample_rate, sample_rate, 1, dtype="float32", quality="HQ"
            )
        out = stream.resample_chunk(block)
        if len(out):
            yield out.astype(np.float32, copy=False)
    if stream is not None:
        tail = stream.resample_chunk(np.zeros(0, np.float32), last=True)
        if len(tail):
            yield tail.astype(np.float32, copy=False)


class _MonoBlocks:
    """Iterate a file's mono float32 blocks at its own rate (`sample_rate` is set once
    the file is open), checking each block, and warning at the end of a file shorter
    than its header or peaking over full scale; raises AudioDecodeError."""

    def __init__(self, path: Path, start: int = 0) -> None:
        self.path, self.start = path, start
        self.sample_rate = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        path = self.path
        try:
            size = path.stat().st_size
        except OSError as error:
            raise AudioDecodeError(path, f"cannot read: {error.strerror or error}") from None
        if size == 0:
            raise AudioDecodeError(path, "empty file (0 bytes)")
        frames, peak = 0, 0.0
        try:
            with sf.SoundFile(path) as audio:
                self.sample_rate, declared = audio.samplerate, audio.frames
                if audio.format == "WAV":
                    declared = max(declared, declared_wav_frames(path) or 0)
                if self.start:
                    audio.seek(self.start)
                    declared -= self.start
                while True:
                    block = audio.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
                    if not len(block):
                        break
                    mono = (
                        block[:, 0] if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)
                    )
                    peak = max(peak, self._checked_peak(mono))
                    frames += len(mono)
                    yield mono
        except AudioDecodeError:
            raise  # a block's own check: already one line
        except sf.LibsndfileError as error:
            reason = re.sub(r"^error\s*:\s*", "", error.error_string.strip(), flags=re.I)
            raise AudioDecodeError(
                path, f"cannot decode: {reason.rstrip('.') or 'libsndfile error'}"
            ) from None
        except (RuntimeError, OSError, ValueError) as error:
            raise AudioDecodeError(path, f"cannot decode: {error}") from None
        if not frames:
            raise AudioDecodeError(path, "no audio frames")
        if frames < declared:
            logger.warning(
                "%s is shorter than its header says (read %d of %d frames); "
                "using the frames that are there",
                path,
                frames,
                declared,
            )
        if peak > 1.0:
            logger.warning(
                "%s peaks at %.3f, %.1f dB over full scale; samples beyond [-1, 1] are clipped",
                path,
                peak,
                20 * math.log10(peak),
            )

    def _checked_peak(self, mono: np.ndarray) -> float:
        if not np.isfinite(mono).all():
            raise AudioDecodeError(self.path, "contains NaN or infinite samples")
        peak = float(np.abs(mono).max())
        if peak >= MAX_PEAK:
            raise AudioDecodeError(
                self.path,
                f"samples reach {peak:.4g}, far beyond full scale [-1, 1]: "
                f"not scaled audio (integer sample values stored as "
                f"floats?); scale it to [-1, 1]",
            )
        return peak


def declared_wav_frames(path: str | os.PathLike[str]) -> int | None:
    """Frames a RIFF/WAVE file's header promises: data chunk size // block align.

    Walks the chunks of the first 64 KiB; -> None when the header is not RIFF/WAVE, has
    no `fmt ` before `data`, or marks the size unknown (0 or 0xFFFFFFFF, as streaming
    writers do).
    """
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    offset, block_align = 12, None
    while offset + 8 <= len(head):
        chunk, size = (
            head[offset : offset + 4],
            int.from_bytes(head[offset + 4 : offset + 8], "little"),
        )
        if chunk == b"fmt " and offset + 22 <= len(head):
            block_align = int.from_bytes(head[offset + 20 : offset + 22], "little")
        elif chunk == b"data":
            if not block_align or size in (0, 0xFFFFFFFF):
                return None
            return size // block_align
        offset += 8 + size + (size & 1)  # chunks are padded to an even size
    return None


def resample(waveform: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """float32 (T,) at `orig_rate` -> float32 (round(T * new / orig),) at `new_rate`.

    libsoxr at its "HQ" setting: over 90 dB of alias rejection and a flat passband to
    0.9 of the new Nyquist frequency, at any pair of rates (96001 -> 16000 Hz included)
    in memory independent of the rates (benchmarks/resample.py measures it beside
    torchaudio's resampler, which this replaced).
    """
    if orig_rate == new_rate:
        return waveform
    resampled = soxr.resample(
        np.ascontiguousarray(waveform, dtype=np.float32), orig_rate, new_rate, quality="HQ"
    )
    return resampled.astype(np.float32, copy=False)


def decode_audio(path: str | os.PathLike[str], sample_rate: int) -> np.ndarray:
    """Decode one file to float32 mono at `sample_rate`: -> (T,), values as stored.

    Any format soundfile reads, any channel count, sample format and rate. Raises
    AudioDecodeError (with a short `reason`) when the file cannot be used.
    """
    mono, rate = read_mono(path)
    return resample(mono, rate, sample_rate)


# Input decoded before the tail that `decode_tail` keeps, so that the resampler has
# settled by the first kept sample (libsoxr's HQ filter spans a few milliseconds).
_TAIL_MARGIN_SECONDS = 1.0


def decode_tail(path: str | os.PathLike[str], sample_rate: int, samples: int) -> np.ndarray:
    """The last `samples` samples of `decode_audio(path, sample_rate)`, read from the end
    of the file, so that memory depends on `samples`, not on the file's length (a
    one-hour --prime whose last receptive field is all generation reads).

    The read starts a margin before the kept samples, on an input frame where the two
    rates' sample grids meet, so that the result is the whole file's decode cut to its
    end, within float32 rounding (1e-7: the resampler sums in another order). A file that
    cannot seek, or is not longer than that, is decoded whole.
    """
    if samples < 1:
        raise InvalidArgumentError(f"samples must be >= 1, got {samples}")
    path = Path(path)
    try:
        with sf.SoundFile(path) as audio:
            rate, frames, seekable = audio.samplerate, audio.frames, audio.seekable()
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError):
        return decode_audio(path, sample_rate)[-samples:]  # its errors say why, in one line
    grid = rate // math.gcd(rate, sample_rate)  # input frames from one shared instant to the next
    needed = math.ceil(samples * rate / sample_rate) + math.ceil(_TAIL_MARGIN_SECONDS * rate)
    start = (frames - needed) // grid * grid
    if not seekable or start <= 0:
        return decode_audio(path, sample_rate)[-samples:]
    mono, rate = read_mono(path, start=start)
    return resample(mono, rate, sample_rate)[-samples:]


def trim_silent_edges(waveform: np.ndarray, threshold_db: float) -> np.ndarray:
    """Drop leading and trailing samples quieter than `threshold_db` below full scale.

    Keeps waveform[first:last + 1], where first and last are the first and last samples
    with |x| >= 10 ** (threshold_db / 20) (-50 dB: 0.0032). An all-quiet waveform gives
    an empty array. Returns a view, no copy.
    """
    span = loud_span(waveform, threshold_db)
    return waveform[:0] if span is None else waveform[span[0] : span[1] + 1]


def loud_span(waveform: np.ndarray, threshold_db: float) -> tuple[int, int] | None:
    """(first, last) indices of the samples with |x| >= 10 ** (threshold_db / 20), or
    None when there is none (what `trim_silent_edges` keeps, block by block for a
    streamed file)."""
    loud = np.flatnonzero(np.abs(waveform) >= 10.0 ** (threshold_db / 20.0))
    return (int(loud[0]), int(loud[-1])) if len(loud) else None

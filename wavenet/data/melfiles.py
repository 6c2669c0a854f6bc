"""Mel files made outside the package (an acoustic model's output, `wavenet mel`'s own):
reading them, telling their layout apart, and pairing them with audio for training.

    .npy (numpy, no pickle) / .pt (torch.save, weights only) --read_mel_file--> tensor
      --orient_mel(n_mels)--> float32 (n_mels, frames), checked
    audio file x.wav + DIR/x.wav.npy or DIR/x.npy --paired_mel--> the mel, its length
      checked against the audio's (frames x hop within MEL_LENGTH_TOLERANCE_HOPS hops of
      the samples)
    audio names in one folder --mel_file_names--> distinct .npy names (`wavenet mel`)

Layouts: (n_mels, frames) as HiFi-GAN stores them, or (frames, n_mels) as many acoustic
models emit them; the band count tells them apart. A square mel (as many frames as bands)
cannot be told apart and is read as (n_mels, frames), the layout this package writes.
Every refusal is a one-line `ConditioningError` (or `DataError` when pairing for training).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import ConditioningError, DataError

MEL_EXTENSIONS = (".npy", ".pt")
# A paired mel's frames x hop may differ from its audio's length by this many hops: one
# covers the two framings in use (T // hop frames here and in HiFi-GAN; T // hop + 1 with
# centred frames, as in torchaudio's and librosa's default), one more is slack for a
# rounding of the length. A mel made at another sample rate or hop is off by far more.
MEL_LENGTH_TOLERANCE_HOPS = 2

_NUMBERS = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def read_mel_file(path: str | os.PathLike[str]) -> torch.Tensor:
    """A saved mel tensor: `.npy` (numpy, no pickle) or anything else as a `torch.save`
    file (weights only). -> the tensor as stored; ConditioningError when unreadable or
    not one tensor."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            with open(path, "rb") as handle:
                if handle.read(6) != b"\x93NUMPY":  # else numpy's advice is allow_pickle
                    raise ConditioningError(
                        f"mel file {path} is not a .npy array file (no "
                        f"numpy header); write it with numpy.save"
                    )
            mel = torch.from_numpy(np.load(path, allow_pickle=False))
        else:
            mel = torch.load(path, map_location="cpu", weights_only=True)
    except ConditioningError:
        raise
    except Exception as error:  # a user's file: any failure to read it is their error
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConditioningError(f"cannot read mel file {path}: {first}") from None
    if not isinstance(mel, torch.Tensor):
        raise ConditioningError(f"mel file {path} holds no tensor")
    return mel


def orient_mel(mel: torch.Tensor, n_mels: int) -> torch.Tensor:
    """A real, finite 2-D mel (n_mels, frames) or (frames, n_mels) -> float32
    (n_mels, frames); ConditioningError naming what is wrong (values, band count, layout)."""
    if mel.is_complex():
        raise ConditioningError(f"the mel must be real, got a {mel.dtype} tensor")
    if not (mel.is_floating_point() or mel.dtype in _NUMBERS):
        raise ConditioningError(f"the mel must hold numbers, got a {mel.dtype} tensor")
    if mel.dim() != 2:
        raise ConditioningError(
            f"the mel must be 2-D, (n_mels={n_mels}, frames) or (frames, "
            f"n_mels={n_mels}), got shape {tuple(mel.shape)}"
        )
    if mel.shape[0] != n_mels:
        if mel.shape[1] != n_mels:
            raise ConditioningError(
                f"the mel must be (n_mels={n_mels}, frames) or (frames, "
                f"n_mels={n_mels}): neither side of {tuple(mel.shape)} "
                f"is {n_mels} bands"
            )
        mel = mel.T
    mel = mel.float().contiguous()
    if mel.shape[1] == 0:
        raise ConditioningError("the mel has no frames (audio shorter than one hop?)")
    if not torch.isfinite(mel).all():
        bad = int((~torch.isfinite(mel)).sum())
        raise ConditioningError(
            f"the mel holds {bad} NaN or infinite value(s) out of {mel.numel()}"
        )
    return mel


def mel_files_in(folder: str | os.PathLike[str]) -> list[Path]:
    """The .npy and .pt files directly in `folder`, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConditioningError(f"mel folder {folder} does not exist or is not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MEL_EXTENSIONS)


def mel_file_names(names: Sequence[str]) -> list[str]:
    """The .npy name of each audio file name of one folder, all distinct: NAME.npy for a
    stem of its own, the whole name (a.wav.npy, a.flac.npy) for a stem that two files
    share (compared without case, as a case-blind file system would), and the whole name
    for every file when a kept name would meet another file's stem (a.wav.npy beside
    a.wav.ogg's)."""
    stems = Counter(Path(name).stem.casefold() for name in names)
    out = [
        f"{Path(name).stem}.npy" if stems[Path(name).stem.casefold()] == 1 else f"{name}.npy"
        for name in names
    ]
    if len({name.casefold() for name in out}) < len(out):
        out = [f"{name}.npy" for name in names]
    return out


def paired_mel(
    audio: Path, samples: int, mel_dir: Path, n_mels: int, hop_length: int
) -> np.ndarray:
    """The mel of `audio` in `mel_dir` (the audio's whole name or its stem, .npy or .pt,
    in that order: `wavenet mel` writes a.wav.npy and a.flac.npy where a.wav and a.flac
    share a folder) as (n_mels, frames) float32, its frames x hop_length checked against
    the audio's `samples`.

    DataError (one line) when it is missing, unreadable, of another layout, or of
    another length.
    """
    candidates = [
        mel_dir / f"{base}{ext}" for base in (audio.name, audio.stem) for ext in MEL_EXTENSIONS
    ]
    found = [p for p in candidates if p.is_file()]
    if not found:
        raise DataError(
            f"no mel for {audio.name} in {mel_dir} (looked for "
            f"{', '.join(p.name for p in candidates)})"
        )
    try:
        mel = orient_mel(read_mel_file(found[0]), n_mels)
    except ConditioningError as error:
        raise DataError(f"{found[0]}: {error}") from None
    covered = mel.shape[1] * hop_length
    tolerance = MEL_LENGTH_TOLERANCE_HOPS * hop_length
    if abs(covered - samples) > tolerance:
        raise DataError(
            f"mel {found[0]} has {mel.shape[1]} frames x hop {hop_length} = "
            f"{covered} samples but {audio.name} has {samples}; they must agree "
            f"within {MEL_LENGTH_TOLERANCE_HOPS} hops ({tolerance} samples): made "
            f"at another sample rate or hop length?"
        )
    return mel.numpy()


def aligned_slice(start: int, length: int, frames: int, hop_length: int) -> tuple[int, int, int]:
    """Where a slice of a file (its samples [start, start + length)) meets a mel of
    `frames` frames of the whole file: -> (first frame, samples to skip at the slice's
    start, frames kept), so that the kept samples are exactly the kept frames' hops.

    Frame i covers the file's samples [i * hop, (i + 1) * hop).
    """
    first = -(-start // hop_length)
    skip = first * hop_length - start
    kept = max(0, min(frames - first, (length - skip) // hop_length))
    return first, skip, kept

"""What a general-purpose compressor makes of a code stream: the bar a model must clear.

A model that codes held-out mu-law codes in no fewer bits than `xz -9e` has learned little
that a dictionary coder does not find by itself; the gap below it is what the model is
worth. Every figure is in bits per sample (per code), comparable with `wavenet eval`.

    unigram_bits_per_sample(codes)           entropy of the codes' empirical histogram
    compressed_bits_per_sample(codes, "xz")  8 * len(lzma.compress(bytes, 9 | EXTREME)) / n
    compressed_bits_per_sample(codes, "bzip2")                  ... bz2.compress(bytes, 9)

Codes are compressed as the bytes of their smallest unsigned dtype (one byte a code for
256 channels, see `coding.pcm.codes_dtype`), so a compressor sees what a `.raw` file of them holds.
"""

from __future__ import annotations

import bz2
import lzma
from collections.abc import Callable, Sequence

import numpy as np

from ..coding.pcm import codes_dtype
from ..errors import InvalidArgumentError, InvalidTypeError

__all__ = [
    "COMPRESSORS",
    "baseline_bits",
    "code_bytes",
    "compressed_bits_per_sample",
    "unigram_bits_per_sample",
]

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    # xz -9e: the .xz container with LZMA2 at preset 9, extreme.
    "xz": lambda data: lzma.compress(data, format=lzma.FORMAT_XZ, preset=9 | lzma.PRESET_EXTREME),
    "bzip2": lambda data: bz2.compress(data, compresslevel=9),
}


def _as_codes(codes: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """One 1-D integer array: a list of files is joined in order."""
    if isinstance(codes, np.ndarray):
        joined = codes.reshape(-1)
    elif len(codes) == 0:
        raise InvalidArgumentError("no codes to measure")
    else:
        joined = np.concatenate([np.asarray(c).reshape(-1) for c in codes])
    if joined.size == 0:
        raise InvalidArgumentError("no codes to measure")
    if not np.issubdtype(joined.dtype, np.integer):
        raise InvalidTypeError(f"codes must be integers, got dtype {joined.dtype}")
    if joined.min() < 0:
        raise InvalidArgumentError(f"codes must be >= 0, found {joined.min()}")
    return joined


def code_bytes(codes: np.ndarray | Sequence[np.ndarray], quantization_channels: int = 256) -> bytes:
    """codes (one array, or one per file, joined) -> the bytes of `codes_dtype(Q)`."""
    joined = _as_codes(codes)
    if joined.max() >= quantization_channels:
        raise InvalidArgumentError(
            f"codes must be < quantization_channels={quantization_channels}, found {joined.max()}"
        )
    return joined.astype(codes_dtype(quantization_channels)).tobytes()


def unigram_bits_per_sample(codes: np.ndarray | Sequence[np.ndarray]) -> float:
    """Entropy (bits) of the codes' empirical distribution: what an ideal coder that knows
    the histogram but not the order spends per code. 0 for a constant stream."""
    counts = np.bincount(_as_codes(codes))
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0


def compressed_bits_per_sample(
    codes: np.ndarray | Sequence[np.ndarray],
    compressor: str = "xz",
    quantization_channels: int = 256,
) -> float:
    """8 * compressed bytes / number of codes, with `xz -9e` or `bzip2 -9` (see
    `COMPRESSORS`). A list of files is compressed as one stream, in order."""
    if compressor not in COMPRESSORS:
        raise InvalidArgumentError(
            f"unknown compressor {compressor!r}; choose from {', '.join(COMPRESSORS)}"
        )
    data = code_bytes(codes, quantization_channels)
    n = len(data) // codes_dtype(quantization_channels).itemsize
    return 8 * len(COMPRESSORS[compressor](data)) / n


def baseline_bits(
    codes: np.ndarray | Sequence[np.ndarray], quantization_channels: int = 256
) -> dict[str, float | int]:
    """{"samples", "unigram", "xz", "bzip2"}: every baseline of one code stream."""
    joined = _as_codes(codes)
    result: dict[str, float | int] = {
        "samples": int(joined.size),
        "unigram": unigram_bits_per_sample(joined),
    }
    for name in COMPRESSORS:
        result[name] = compressed_bits_per_sample(joined, name, quantization_channels)
    return result

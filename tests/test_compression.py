"""Compressor baselines (wavenet.eval.compression): the bar benchmarks/quality.py sets a model."""

from __future__ import annotations

import numpy as np
import pytest

from wavenet.eval.compression import (
    baseline_bits,
    code_bytes,
    compressed_bits_per_sample,
    unigram_bits_per_sample,
)


def test_constant_codes_cost_almost_nothing() -> None:
    codes = np.full(100_000, 128, dtype=np.uint8)
    result = baseline_bits(codes)
    assert result["samples"] == 100_000
    assert result["unigram"] == 0.0
    assert result["xz"] < 0.02  # ~150 bytes of container and stream for 100,000 codes
    assert result["bzip2"] < 0.01


def test_uniform_random_codes_cost_eight_bits() -> None:
    codes = np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8)
    result = baseline_bits(codes)
    assert result["unigram"] == pytest.approx(8.0, abs=0.01)
    # Incompressible: the container's overhead keeps both at or just above 8.
    assert 7.9 <= result["xz"] <= 8.1
    assert 7.9 <= result["bzip2"] <= 8.2


def test_two_equally_likely_codes_give_one_bit_of_unigram_entropy() -> None:
    codes = np.random.default_rng(1).integers(0, 2, 50_000) * 255
    assert unigram_bits_per_sample(codes) == pytest.approx(1.0, abs=1e-3)
    # The order is random too, so xz cannot do much better than 1 bit a code.
    assert 0.95 <= compressed_bits_per_sample(codes, "xz") <= 1.3


def test_files_are_joined_in_order_into_bytes_of_the_codes_dtype() -> None:
    files = [np.array([1, 2, 3]), np.array([4, 5], dtype=np.int64)]
    assert code_bytes(files) == bytes([1, 2, 3, 4, 5])
    assert (
        code_bytes(files, quantization_channels=1024) == np.arange(1, 6, dtype=np.uint16).tobytes()
    )
    assert unigram_bits_per_sample(files) == pytest.approx(np.log2(5))


def test_bad_codes_are_refused() -> None:
    with pytest.raises(ValueError, match="no codes"):
        baseline_bits([])
    with pytest.raises(ValueError, match="quantization_channels=256"):
        code_bytes(np.array([0, 256]))
    with pytest.raises(ValueError, match=">= 0"):
        unigram_bits_per_sample(np.array([-1, 3]))
    with pytest.raises(TypeError, match="integers"):
        unigram_bits_per_sample(np.array([0.5]))
    with pytest.raises(ValueError, match="unknown compressor"):
        compressed_bits_per_sample(np.array([1, 2]), "zstd")

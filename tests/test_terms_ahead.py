"""A vocoder's conditioning terms computed a block ahead on a second thread
(`fastpath._TermsAhead`) are the rows computed in line, and the codes do not change."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import TINY_VOCODER as VOCODER

import wavenet
from wavenet.generation.fastpath import NumbaGenerator, _TermsAhead
from wavenet.generation.incremental import FastGenerator, StepConditioning
from wavenet.generation.sampling import uniform_chunks

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_rows_ahead_are_the_rows_computed_in_line() -> None:
    table = np.arange(1000 * 3, dtype=np.float64).reshape(1000, 3)
    asked: list[tuple[int, int]] = []

    def compute(start: int, stop: int) -> np.ndarray:
        asked.append((start, stop))
        return table[start:stop].copy()

    ahead = _TermsAhead(compute, 5, 64, 900)
    try:
        step = 5
        for size in (1, 63, 64, 65, 200, 7, 300, 195):  # across block boundaries, to the end
            assert np.array_equal(ahead.rows(step, step + size), table[step : step + size])
            step += size
        assert step == 900
    finally:
        ahead.close()
    # Blocks in order, each computed once, none past the end.
    assert asked == [(s, min(s + 64, 900)) for s in range(5, 900, 64)]


def test_a_vocoder_samples_the_same_codes_as_the_pytorch_loop() -> None:
    """1,500 samples in kernel calls of 100 steps: terms come from 15 blocks ahead, and
    calls that straddle two of them (the uniforms come in chunks of 1,024)."""
    torch.manual_seed(0)
    model = wavenet.WaveNet(wavenet.load_config("tiny", VOCODER).model).double().eval()
    mel = torch.randn(2, 8, 1500 // 16 + 1, generator=torch.Generator().manual_seed(1)).double()
    uniforms = list(uniform_chunks(1500, 2, 1.0, torch.Generator().manual_seed(2)))
    prime = torch.full((2, 1), 128)
    kernel = NumbaGenerator(model, 2, StepConditioning(model, 2, 1500, mel=mel))
    kernel._steps_per_call = 100
    loop = FastGenerator(model, 2, StepConditioning(model, 2, 1500, mel=mel))
    codes = kernel.sample(prime, 1500, 1.0, uniforms)
    assert codes.shape == (2, 1500)
    assert torch.equal(codes, loop.sample(prime, 1500, 1.0, uniforms))

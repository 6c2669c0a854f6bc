"""The kernel's own arithmetic that stands in for a library call: its exponential."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from wavenet.generation import kernel


@njit
def _exps(xs: np.ndarray, out: np.ndarray) -> None:
    for i in range(xs.shape[0]):
        out[i] = kernel._exp_nonpositive(xs[i])


def test_exp_is_within_an_ulp_of_math_exp() -> None:
    """Sampling's e^(l - max) in float64: within 1 ulp of math.exp over [-708, 0], 0
    below (where e^x leaves float64's normal range), 1 at 0."""
    rng = np.random.default_rng(0)
    xs = -np.concatenate(
        [rng.exponential(5.0, 50_000), np.linspace(0.0, 707.99, 50_001), [1e-300, 0.5, 1e-8]]
    )
    out = np.zeros_like(xs)
    _exps(xs, out)
    expected = np.array([math.exp(x) for x in xs])
    ulps = np.abs(out - expected) / np.spacing(expected)
    assert ulps.max() <= 1.0
    assert out[np.argmax(xs)] == 1.0  # e^0, from the linspace's first point
    below = np.array([-708.0, -708.5, -745.0, -1e6, -np.inf])
    zeros = np.ones_like(below)
    _exps(below, zeros)
    assert not zeros.any()
    nan = np.zeros(1)
    _exps(np.array([np.nan]), nan)
    assert np.isnan(nan).all()  # as math.exp: a NaN logit is not silently dropped

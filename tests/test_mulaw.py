"""Mu-law companding: agreement with the ITU formula and round-trip accuracy."""

from __future__ import annotations

import math

import pytest
import torch

from wavenet import mu_law_decode, mu_law_encode


def itu_mu_law(x: float, q: int = 256) -> int:
    mu = q - 1
    companded = math.copysign(math.log1p(mu * abs(x)) / math.log1p(mu), x)
    return math.floor((companded + 1) / 2 * mu + 0.5)


def test_encode_matches_itu_formula() -> None:
    x = torch.linspace(-1, 1, 2001, dtype=torch.float64)
    codes = mu_law_encode(x)
    expected = torch.tensor([itu_mu_law(v) for v in x.tolist()])
    assert codes.dtype == torch.long
    assert torch.equal(codes, expected)


@pytest.mark.parametrize("q", [256, 1024, 16])
def test_codes_span_zero_to_q_minus_one(q: int) -> None:
    codes = mu_law_encode(torch.linspace(-1, 1, 10001), q)
    assert codes.min().item() == 0 and codes.max().item() == q - 1


def test_round_trip_within_one_step() -> None:
    torch.manual_seed(0)
    q = 256
    x = torch.rand(10000, dtype=torch.float64) * 2 - 1
    decoded = mu_law_decode(mu_law_encode(x, q), q).double()
    # The quantization step in the companded domain is 2 / mu; map the error there.
    mu = q - 1

    def companded(v: torch.Tensor) -> torch.Tensor:
        return torch.sign(v) * torch.log1p(mu * v.abs()) / math.log1p(mu)

    assert (companded(decoded) - companded(x)).abs().max().item() <= 1 / mu + 1e-6
    assert decoded.abs().max().item() <= 1.0


@pytest.mark.parametrize("q", [256, 1024, 16])
def test_decode_of_every_code_re_encodes_to_itself(q: int) -> None:
    codes = torch.arange(q)
    assert torch.equal(mu_law_encode(mu_law_decode(codes, q), q), codes)


def test_out_of_range_is_clipped() -> None:
    assert mu_law_encode(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]


def test_encode_rejects_integer_input() -> None:
    with pytest.raises(TypeError, match="float"):
        mu_law_encode(torch.tensor([1, 2, 3]))


def test_equal_to_torchaudio_values() -> None:
    """The plain-torch coding gives exactly the values torchaudio's functions gave."""
    try:
        import torchaudio.functional as AF
    except (ImportError, OSError) as error:  # a torchaudio that does not load here
        pytest.skip(f"torchaudio does not load: {error}")
    torch.manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        x = torch.cat(
            [torch.rand(100000, dtype=dtype) * 2 - 1, torch.linspace(-1, 1, 20001, dtype=dtype)]
        )
        for q in (256, 1024, 16):
            assert torch.equal(mu_law_encode(x, q), AF.mu_law_encoding(x, q))
            codes = torch.arange(q)
            assert torch.equal(mu_law_decode(codes, q), AF.mu_law_decoding(codes, q))


def test_import_does_not_load_torchaudio() -> None:
    """`import wavenet` (model, coding, generation) never imports torchaudio."""
    import subprocess
    import sys

    code = (
        "import sys, wavenet, wavenet.generation.driver, wavenet.io.checkpoint;"
        "print('torchaudio' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("bad", [float("nan")])
def test_encode_refuses_nan(bad: float) -> None:
    with pytest.raises(ValueError, match="NaN"):
        mu_law_encode(torch.tensor([0.0, bad]))


@pytest.mark.parametrize("q", [0, 1, -5])
def test_too_few_channels_refused(q: int) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        mu_law_encode(torch.zeros(3), q)
    with pytest.raises(ValueError, match="at least 2"):
        mu_law_decode(torch.zeros(3, dtype=torch.long), q)


def test_numpy_input_is_a_type_error() -> None:
    import numpy as np

    with pytest.raises(TypeError, match="torch.from_numpy"):
        mu_law_encode(np.zeros(3, dtype=np.float32))  # type: ignore[arg-type]


@pytest.mark.parametrize("code", [-1, 256, 1000])
def test_decode_refuses_codes_out_of_range(code: int) -> None:
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        mu_law_decode(torch.tensor([0, code]))


def test_errors_are_of_the_package_family() -> None:
    from wavenet.errors import WavenetError

    with pytest.raises(WavenetError):
        mu_law_encode(torch.tensor([float("nan")]))
    with pytest.raises(WavenetError):
        mu_law_decode(torch.tensor([999]))

"""`wavenet.decode(codes, config)`: the waveform of generated codes, for either output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import wavenet
from wavenet.coding.pcm import pcm16_encode


def test_mu_law_codes_decode_as_mu_law() -> None:
    config = wavenet.load_config("tiny")
    codes = torch.randint(0, config.model.quantization_channels, (2, 50))
    audio = wavenet.decode(codes, config)
    assert audio.dtype == torch.float32 and audio.shape == (2, 50)
    assert torch.equal(audio, wavenet.mu_law_decode(codes, config.model.quantization_channels))
    assert torch.equal(wavenet.decode(codes, config.model), audio)  # a ModelConfig will do


def test_mol_codes_decode_as_16_bit_samples() -> None:
    config = wavenet.load_config("tiny", ["model.output=mol"])
    samples = torch.tensor([-32768, -1, 0, 1, 32767])
    audio = wavenet.decode(samples + 32768, config)
    assert torch.equal(audio, samples.float() / 32768)
    waveform = torch.linspace(-1, 1, 101)
    assert torch.allclose(wavenet.decode(pcm16_encode(waveform), config), waveform, atol=1 / 32768)


def test_generated_codes_of_both_outputs_decode_into_range() -> None:
    torch.manual_seed(0)
    for overrides in ([], ["model.output=mol"]):
        config = wavenet.load_config("tiny", overrides)
        model = wavenet.WaveNet(config.model).eval()
        codes = wavenet.generate(model, 40, generator=torch.Generator().manual_seed(0))
        audio = wavenet.decode(codes, config)
        assert audio.shape == (1, 40) and float(audio.abs().max()) <= 1.0


@pytest.mark.parametrize(
    "codes", [torch.tensor([0, 256]), torch.tensor([-1, 3])], ids=["above", "below"]
)
def test_codes_out_of_range_are_refused(codes: torch.Tensor) -> None:
    with pytest.raises(wavenet.InvalidArgumentError, match=r"lie in \[0, 255\], found"):
        wavenet.decode(codes, wavenet.load_config("tiny"))


@pytest.mark.parametrize(
    "codes, config, match",
    [
        (np.zeros(3, dtype=np.int64), "tiny", "torch.from_numpy"),
        (torch.zeros(3), "tiny", "integer codes"),
        (torch.zeros(3, dtype=torch.long), None, "Config or ModelConfig"),
    ],
)
def test_wrong_types_are_refused(codes: object, config: str | None, match: str) -> None:
    with pytest.raises(wavenet.InvalidTypeError, match=match):
        wavenet.decode(codes, wavenet.load_config(config) if config else {})  # type: ignore[arg-type]

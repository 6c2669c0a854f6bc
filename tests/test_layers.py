"""Invariants of the layers and the model: shapes, causality, exact receptive field."""

from __future__ import annotations

import re

import pytest
import torch

import wavenet
from wavenet import CausalConv1d, ModelConfig, ResidualBlock, WaveNet


@pytest.mark.parametrize("kernel_size,dilation", [(2, 1), (2, 4), (3, 2), (5, 1)])
def test_causal_conv_keeps_length_and_is_causal(kernel_size: int, dilation: int) -> None:
    torch.manual_seed(0)
    conv = CausalConv1d(3, 5, kernel_size, dilation)
    x = torch.randn(2, 3, 40)
    y = conv(x)
    assert y.shape == (2, 5, 40)
    t0 = 17
    x2 = x.clone()
    x2[:, :, t0:] = torch.randn(2, 3, 40 - t0)
    y2 = conv(x2)
    assert torch.equal(y[:, :, :t0], y2[:, :, :t0])
    assert not torch.equal(y[:, :, t0:], y2[:, :, t0:])


def test_causal_conv_reaches_exactly_its_span() -> None:
    conv = CausalConv1d(1, 1, kernel_size=3, dilation=4)
    x = torch.zeros(1, 1, 30, requires_grad=True)
    conv(x)[0, 0, -1].backward()
    assert x.grad is not None
    touched = (x.grad[0, 0] != 0).nonzero().flatten().tolist()
    assert touched == [29 - 8, 29 - 4, 29]


def test_residual_block_shapes() -> None:
    block = ResidualBlock(
        residual_channels=8, gate_channels=12, skip_channels=10, kernel_size=2, dilation=2
    )
    residual, skip = block(torch.randn(3, 8, 25))
    assert residual.shape == (3, 8, 25)
    assert skip.shape == (3, 10, 25)


def test_residual_block_rejects_odd_gate_channels() -> None:
    with pytest.raises(ValueError, match="even"):
        ResidualBlock(8, 7, 8, 2, 1)


def test_dilations_double_and_repeat() -> None:
    config = ModelConfig(layers_per_stack=4, stacks=3, kernel_size=2)
    assert config.dilations == (1, 2, 4, 8) * 3
    assert config.receptive_field == 1 + 3 * 15
    assert ModelConfig(kernel_size=3, layers_per_stack=3, stacks=1).receptive_field == 1 + 2 * 7


def test_model_output_shape(tiny_model: WaveNet) -> None:
    codes = torch.randint(0, 256, (3, 50))
    logits = tiny_model(codes)
    assert logits.shape == (3, 256, 50)
    assert logits.dtype == torch.float32


def test_model_rejects_wrong_rank(tiny_model: WaveNet) -> None:
    with pytest.raises(ValueError, match="batch, time"):
        tiny_model(torch.zeros(5, dtype=torch.long))


@pytest.mark.parametrize("shape", [(2, 0), (0, 5), (0, 0)])
def test_model_rejects_an_empty_batch_or_length(
    tiny_model: WaveNet, shape: tuple[int, int]
) -> None:
    """It raised RuntimeError 'cannot reshape tensor of 0 elements into shape [0, -1]'
    from deep inside wavenet/nn/fused.py, a vocoder's from its upsampler (the empty mel)."""
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"codes must be (batch, time) with batch >= 1 and time >= 1, got shape {shape}"
        ),
    ):
        tiny_model(torch.zeros(shape, dtype=torch.long))
    with pytest.raises(ValueError, match="batch >= 1 and time >= 1"):  # the public lower level
        tiny_model.forward_features(torch.zeros(shape, dtype=torch.long))
    vocoder = WaveNet(
        wavenet.load_config(
            "tiny",
            [
                "model.local_channels=8",
                "model.upsample_scales=4,4",
                "mel.n_mels=8",
                "mel.hop_length=16",
                "mel.n_fft=64",
                "mel.win_length=64",
            ],
        ).model
    )
    with pytest.raises(ValueError, match="batch >= 1 and time >= 1"):
        vocoder(torch.zeros(shape, dtype=torch.long), mel=torch.zeros(shape[0], 8, 0))


@pytest.mark.parametrize("preset", ["tiny", "default"])
def test_model_is_causal(preset: str) -> None:
    torch.manual_seed(0)
    model = WaveNet(wavenet.load_config(preset).model).eval()
    length = 300
    codes = torch.randint(0, 256, (2, length))
    t0 = 123
    changed = codes.clone()
    changed[:, t0:] = torch.randint(0, 256, (2, length - t0))
    with torch.no_grad():
        before, after = model(codes), model(changed)
    assert torch.equal(before[:, :, :t0], after[:, :, :t0])
    assert not torch.allclose(before[:, :, t0:], after[:, :, t0:])


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(
            residual_channels=4, gate_channels=8, skip_channels=4, layers_per_stack=3, stacks=2
        ),
        ModelConfig(
            residual_channels=4,
            gate_channels=8,
            skip_channels=4,
            kernel_size=3,
            layers_per_stack=4,
            stacks=1,
        ),
        ModelConfig(
            residual_channels=4, gate_channels=8, skip_channels=4, layers_per_stack=10, stacks=2
        ),
    ],
)
def test_receptive_field_is_exact(config: ModelConfig) -> None:
    """The last output depends on exactly receptive_field input positions, the last ones."""
    torch.manual_seed(0)
    model = WaveNet(config).double()
    length = config.receptive_field + 20
    codes = torch.randint(0, 256, (1, length))
    embedded = model.embedding(codes).transpose(1, 2).detach().requires_grad_(True)
    x, skips = embedded, 0
    for block in model.blocks:
        x, skip = block(x)
        skips = skips + skip
    assert isinstance(skips, torch.Tensor)
    model.head(skips)[0, :, -1].sum().backward()
    reached = (embedded.grad[0].abs().sum(0) != 0).nonzero().flatten()
    assert reached.numel() == config.receptive_field
    assert reached.min().item() == length - config.receptive_field
    assert reached.max().item() == length - 1


def test_receptive_field_by_perturbation(tiny_model: WaveNet) -> None:
    """Changing the code just outside the receptive field leaves the last logit unchanged;
    changing the oldest code inside it changes it."""
    rf = tiny_model.receptive_field
    codes = torch.randint(0, 256, (1, rf + 5))
    last = rf + 4
    with torch.no_grad():
        base = tiny_model(codes)[0, :, last]
        outside, inside = codes.clone(), codes.clone()
        outside[0, last - rf] = (codes[0, last - rf] + 1) % 256
        inside[0, last - rf + 1] = (codes[0, last - rf + 1] + 1) % 256
        assert torch.equal(tiny_model(outside)[0, :, last], base)
        assert not torch.equal(tiny_model(inside)[0, :, last], base)


def test_default_receptive_field() -> None:
    assert WaveNet(ModelConfig()).receptive_field == 2047

"""Reduced-precision weights for CPU generation: the definition the numba kernel is held to.

At batch 1 a generation step reads every weight of the network once (about 3 MB in
float32 for `default`), more than a core's L2 cache holds, so the step runs at the speed
weights stream in. Storing the products' weights in fewer bytes is the cheapest way to a
faster step:

    "float32"  the model as it is
    "bf16"     each weight rounded to bfloat16 (8 bits of mantissa), half the bytes
    "int8"     each output column c of a product W (K, N) as q[:, c] * s[c], with
               q = round(W / s) in [-127, 127] and s[c] = max |W[:, c]| / 127: a quarter

The products are the dilated convolutions (all taps of a layer together), the residual
and skip 1x1s and the head's two 1x1s. The embedding, biases, conditioning projections
and the upsampler stay float32: they are small or not read per sample.

`reduced_model(model, "int8")` is a float32 copy of the model whose weights are the
reduced values (q * s, or the rounded bfloat16): generating from it with the PyTorch
generators is what the kernel computes with `weights="int8"` (up to float rounding: the
kernel sums q x and scales the sum). Held-out bits of the copy say what the format costs.
"""

from __future__ import annotations

import copy

import torch

from ..errors import InvalidArgumentError
from ..nn.model import WaveNet

WEIGHT_FORMATS = ("float32", "bf16", "int8")

# The largest int8 magnitude used: symmetric, so -128 is never produced.
_INT8_LEVELS = 127


def check_format(weights: str) -> str:
    """`weights` if it names a format, else InvalidArgumentError."""
    if weights not in WEIGHT_FORMATS:
        raise InvalidArgumentError(
            f"weights must be one of {', '.join(WEIGHT_FORMATS)}, got {weights!r}"
        )
    return weights


def int8_columns(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, N) float -> (q (K, N) int8, s (N,) float32) with matrix ~ q * s, per column.

    A column of zeros gets s = 1 (q = 0), so that no scale divides by zero."""
    m = matrix.detach().to(torch.float32)
    peak = m.abs().amax(dim=0)
    scale = torch.where(peak > 0, peak / _INT8_LEVELS, torch.ones_like(peak))
    q = torch.round(m / scale).clamp_(-_INT8_LEVELS, _INT8_LEVELS).to(torch.int8)
    return q, scale


def bf16_bits(matrix: torch.Tensor) -> torch.Tensor:
    """float -> its bfloat16 rounding (round to nearest even) as raw 16-bit patterns."""
    return matrix.detach().to(torch.float32).to(torch.bfloat16).view(torch.int16)


def reduce_matrix(matrix: torch.Tensor, weights: str) -> torch.Tensor:
    """The values a (K, N) product matrix has in format `weights`, as float32."""
    check_format(weights)
    m = matrix.detach().to(torch.float32)
    if weights == "bf16":
        return m.to(torch.bfloat16).to(torch.float32)
    if weights == "int8":
        q, scale = int8_columns(m)
        return q.to(torch.float32) * scale
    return m


def _reduce_conv(weight: torch.Tensor, weights: str) -> torch.Tensor:
    """A conv weight (N out, K in, k taps) reduced as the kernel reads it: taps and inputs
    as the rows of one (k K, N) matrix whose columns are the output channels."""
    out_channels, in_channels, taps = weight.shape
    rows = weight.detach().permute(2, 1, 0).reshape(taps * in_channels, out_channels)
    reduced = reduce_matrix(rows, weights)
    return reduced.reshape(taps, in_channels, out_channels).permute(2, 1, 0).contiguous()


@torch.no_grad()
def reduced_model(model: WaveNet, weights: str) -> WaveNet:
    """A float32 copy of `model` whose product weights hold their reduced values."""
    check_format(weights)
    if not isinstance(model, WaveNet):
        raise InvalidArgumentError(
            f"reduced_model needs a wavenet.WaveNet, got {type(model).__name__}"
        )
    copied = copy.deepcopy(model).to(torch.float32)
    if weights == "float32":
        return copied
    convs = [copied.head_hidden, copied.head_out]
    for block in copied.residual_blocks():
        convs += [block.dilated, block.skip]
        if block.residual is not None:
            convs.append(block.residual)
    for conv in convs:
        conv.weight.copy_(_reduce_conv(conv.weight, weights))
    return copied

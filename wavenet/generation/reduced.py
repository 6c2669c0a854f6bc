"""Reduced-precision weights for CPU generation: the definition the numba kernel is held to.

At batch 1 a generation step reads every weight of the network once (about 3 MB in
float32 for `default`), more than a core's L2 cache holds, so the step runs at the speed
weights stream in. Storing the products' weights in fewer bytes is the cheapest way to a
faster step:

    "float32"  the model as it is
    "bf16"     each weight rounded to bfloat16 (8 bits of mantissa), half the bytes
    "int8"     each output column c of a product W (K, N) as q[:, c] * s[c], with
               q = round(W / s) in [-127, 127] and s[c] = max |W[:, c]| / 127: a quarter
    "bf16-dot" the weights of "bf16", and each product's inputs rounded to bfloat16 too
               (sums stay float32): what the CPU's `vdpbf16ps` multiplies, 32 products
               an instruction, on CPUs with AVX-512 BF16
    "int8-dot" the weights of "int8", and each product's inputs as int8 with one scale
               per time step (`int8_rows`): integer sums, scaled after; the CPU's
               `vpdpbusd` makes 64 products an instruction (AVX-512 VNNI)

The products are the dilated convolutions (all taps of a layer together), the residual
and skip 1x1s and the head's two 1x1s. The embedding, biases, conditioning projections
and the upsampler stay float32: they are small or not read per sample.

`reduced_model(model, "int8")` is a float32 copy of the model whose weights are the
reduced values (q * s, or the rounded bfloat16): generating from it with the PyTorch
generators is what the kernel computes with `weights="int8"` (up to float rounding: the
kernel sums q x and scales the sum). Held-out bits of the copy say what the format costs.
The "-dot" formats also reduce activations, which the copy's own forward does not:
`dot_logits(reduced_model(model, w), w, codes)` is their definition, and
`reduced_logits` gives any format's teacher-forced logits.
"""

from __future__ import annotations

import copy

import torch

from ..errors import InvalidArgumentError
from ..nn.layers import gated_activation
from ..nn.model import WaveNet

WEIGHT_FORMATS = ("float32", "bf16", "int8", "bf16-dot", "int8-dot")

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
    if weights in ("bf16", "bf16-dot"):
        return m.to(torch.bfloat16).to(torch.float32)
    if weights in ("int8", "int8-dot"):
        q, scale = int8_columns(m)
        return q.to(torch.float32) * scale
    return m


def _reduce_conv(weight: torch.Tensor, weights: str) -> torch.Tensor:
    """A conv weight (N out, K in, k taps) reduced as the kernel reads it: taps and inputs
    as the rows of one (k K, N) matrix whose columns are the output channels; for
    "int8-dot", whose kernel multiplies each tap separately, one (K, N) matrix a tap (a
    scale per tap and column)."""
    out_channels, in_channels, taps = weight.shape
    per_tap = weight.detach().permute(2, 1, 0)  # (k, K, N)
    if weights == "int8-dot":
        reduced = torch.stack([reduce_matrix(tap, weights) for tap in per_tap])
    else:
        rows = per_tap.reshape(taps * in_channels, out_channels)
        reduced = reduce_matrix(rows, weights).reshape(taps, in_channels, out_channels)
    return reduced.permute(2, 1, 0).contiguous()


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


def bf16_values(x: torch.Tensor) -> torch.Tensor:
    """x rounded to bfloat16 (to nearest, ties to even), kept in float32."""
    return x.to(torch.bfloat16).to(torch.float32)


def int8_rows(x: torch.Tensor) -> torch.Tensor:
    """Features x (B, C, T) as the "int8-dot" kernel reads each time step's C values: q *
    s with s = max |x| / 127 over the C (1 where all are 0) and q = round(x / s) in
    [-127, 127] (ties to even), kept in float32."""
    x = x.to(torch.float32)
    peak = x.abs().amax(dim=1, keepdim=True)
    scale = torch.where(peak > 0, peak / _INT8_LEVELS, torch.ones_like(peak))
    return torch.round(x / scale).clamp_(-_INT8_LEVELS, _INT8_LEVELS) * scale


# How each "-dot" format reduces a product's inputs (B, C, T).
_INPUT_REDUCTION = {"bf16-dot": bf16_values, "int8-dot": int8_rows}


@torch.no_grad()
def dot_logits(
    model: WaveNet,
    weights: str,
    codes: torch.Tensor,
    global_cond: torch.Tensor | None = None,
    mel: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits (B, O, T) of `model` (float32) for codes (B, T) with the inputs of every
    product reduced as format `weights` ("bf16-dot" or "int8-dot") reduces them: the
    block's input before its dilated convolution, the gate's output before the residual
    and skip 1x1s, the summed skips (after their ReLU) and the hidden features before the
    head's two 1x1s. Sums, biases, conditioning and activations stay float32. Pass
    `reduced_model(model, weights)` for the format's weights too."""
    if weights not in _INPUT_REDUCTION:
        raise InvalidArgumentError(f"dot_logits takes bf16-dot or int8-dot, got {weights!r}")
    reduce_input = _INPUT_REDUCTION[weights]
    global_features, local_features = model.conditioning_features(
        codes.shape[0], codes.shape[1], global_cond, mel
    )
    x = model.embed(codes).transpose(1, 2)  # (B, R, T)
    skips = None
    for layer, block in enumerate(model.residual_blocks()):
        z = block.dilated(reduce_input(x))
        term = model.layer_conditioning(layer, global_features, local_features)
        if term is not None:
            z = z + term
        h = reduce_input(gated_activation(z))
        skip = block.skip(h)
        skips = skip if skips is None else skips + skip
        if block.residual is not None:
            x = x + block.residual(h)
    assert skips is not None  # a model has at least one layer
    hidden = torch.relu(model.head_hidden(reduce_input(torch.relu(skips))))
    return model.head_out(reduce_input(hidden))


def reduced_logits(
    model: WaveNet,
    weights: str,
    codes: torch.Tensor,
    global_cond: torch.Tensor | None = None,
    mel: torch.Tensor | None = None,
) -> torch.Tensor:
    """Teacher-forced logits (B, O, T) of `model` with its products in format `weights`,
    as the CPU kernel computes them (up to float32 rounding)."""
    reduced = reduced_model(model, weights)
    if weights in _INPUT_REDUCTION:
        return dot_logits(reduced, weights, codes, global_cond, mel)
    with torch.no_grad():
        return reduced(codes, global_cond, mel)

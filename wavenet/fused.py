"""The WaveNet stack as a few large matrix products, channels-last.

`WaveNet.forward` runs through here. The parameters are the model's own `nn.Conv1d` /
`nn.Embedding` ones (state dicts do not change); only the arithmetic is arranged for
speed. Activations live as (B, T, C), so every layer is a plain matrix product over
B x T rows::

    x (B, T, R)            past = x shifted d steps later in time, zeros in front
    [past | x] (B*T, 2R)   @ [W_tap0 | W_tap1]^T (2R, G)  -> z (B*T, G)   one product
    h = tanh(z[:, :G/2]) * sigmoid(z[:, G/2:])             (B*T, G/2)
    x = x + h @ W_res^T                                    (B*T, R)
    skips = [h_1 | ... | h_L] @ [W_skip_1 | ... | W_skip_L]^T   one product for all layers

Measured (benchmarks/train.py, one thread, default size): the training step runs 1.12x
as fast as a plain nn.Conv1d WaveNet's in float32 (both are bound by float32 matrix
products) and 2.15x as fast under bf16 autocast, where these few large products reach
the CPU's bf16 instructions; the plain module's 1x1 convolutions ran through PyTorch's slow
generic convolution kernel (profiled).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .layers import gated_activation

if TYPE_CHECKING:  # the model imports this module; the type is only for annotations
    from .model import WaveNet


def _matrix(conv: torch.nn.Conv1d) -> torch.Tensor:
    """A 1x1 convolution's weight (C_out, C_in, 1) as the (C_in, C_out) right factor."""
    return conv.weight[:, :, 0].t()


def _shifted(x: torch.Tensor, d: int) -> torch.Tensor:
    """x (B, T, C) -> y with y[:, t] = x[:, t - d] and zeros for t < d."""
    return F.pad(x, (0, 0, d, 0))[:, : x.shape[1]]


def _gate_input(block: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Dilated causal convolution of x (B, T, R) as one product -> z (B*T, G).

    For kernel size k the taps read x[t - (k-1)d], ..., x[t - d], x[t]; tap j of the
    Conv1d weight (G, R, k) multiplies the input (k - 1 - j) * d steps back.
    """
    conv = block.dilated
    k, d = conv.kernel_size[0], block.dilation
    taps = [_shifted(x, (k - 1 - j) * d) if j < k - 1 else x for j in range(k)]
    columns = torch.cat(taps, dim=2).reshape(-1, k * x.shape[2])     # (B*T, kR)
    weight = conv.weight.permute(2, 1, 0).reshape(-1, conv.out_channels)  # (kR, G)
    return torch.addmm(conv.bias, columns, weight)


def stack_logits(model: WaveNet, codes: torch.Tensor,
                 global_features: torch.Tensor | None = None,
                 local_features: torch.Tensor | None = None) -> torch.Tensor:
    """codes (B, T) -> logits (B, T, O), channels-last; see `WaveNet.forward_features`.

    Conditioning: global (B, Cg), local (B, Cl, T), as `WaveNet.conditioning_features`
    returns them.
    """
    batch, length = codes.shape
    x = model.embed(codes)                                        # (B, T, R)
    local_rows = (local_features.transpose(1, 2).reshape(batch * length, -1)
                  if local_features is not None else None)        # (B*T, Cl)
    gated = []
    for layer, block in enumerate(model.blocks):
        z = _gate_input(block, x)                                 # (B*T, G)
        if global_features is not None:
            term = model.global_projections[layer](global_features)   # (B, G)
            z = (z.view(batch, length, -1) + term[:, None, :]).view(batch * length, -1)
        if local_rows is not None:
            z = torch.addmm(z, local_rows, _matrix(model.local_projections[layer]))
            z = z + model.local_projections[layer].bias
        h = gated_activation(z)                                   # (B*T, G/2)
        gated.append(h)
        if block.residual is not None:
            x = x + torch.addmm(block.residual.bias, h, _matrix(block.residual)).view_as(x)
    skip_weight = torch.cat([_matrix(block.skip) for block in model.blocks], dim=0)
    # A plain sum, not stack().sum(0): with the latter as addmm's bias, autograd (torch
    # 2.11) hands every skip bias one shared .grad tensor, so a second backward
    # (gradient accumulation) adds L times into each (tests/test_fused.py).
    skip_bias = sum(block.skip.bias for block in model.blocks[1:]) + model.blocks[0].skip.bias
    skips = torch.addmm(skip_bias, torch.cat(gated, dim=1), skip_weight)   # (B*T, S)
    hidden = torch.relu(torch.addmm(model.head_hidden.bias, torch.relu(skips),
                                    _matrix(model.head_hidden)))
    with model.output_precision():   # for "mol": float32 under bf16 autocast
        hidden = model.at_output_precision(hidden)
        logits = torch.addmm(model.head_out.bias, hidden, _matrix(model.head_out))
    return logits.view(batch, length, -1)

"""Building blocks: causal dilated convolution and the gated residual block.

Padding arithmetic for a causal convolution of kernel k and dilation d::

    input      x[0] x[1] ... x[T-1]
    left pad   (k - 1) * d zeros, nothing on the right
    output y[t] sees x[t - (k-1)d], ..., x[t - d], x[t]   (never the future)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def causal_padding(kernel_size: int, dilation: int) -> int:
    """Left padding that keeps a dilated convolution causal and length-preserving."""
    return (kernel_size - 1) * dilation


class CausalConv1d(nn.Conv1d):
    """Dilated 1-D convolution whose output at t depends only on inputs at <= t.

    forward: x (B, C_in, T) -> (B, C_out, T).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 dilation: int = 1, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, bias=bias)
        self.left_padding = causal_padding(kernel_size, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left_padding, 0)))


class ResidualBlock(nn.Module):
    """Gated residual block with a skip output.

    x -> dilated causal conv to gate_channels (+ conditioning) -> tanh(filter half) *
    sigmoid(gate half) = h; residual out = x + 1x1(h) to residual_channels; skip = 1x1(h)
    to skip_channels.

    forward: x (B, residual_channels, T), conditioning (B, gate_channels, T or 1) or None
      -> (residual (B, residual_channels, T), skip (B, skip_channels, T)).

    The last block of a stack feeds only its skip output onward: `has_residual=False`
    leaves out its residual projection (parameters that no loss would reach) and returns
    x unchanged as its residual output.
    """

    def __init__(self, residual_channels: int, gate_channels: int, skip_channels: int,
                 kernel_size: int, dilation: int, has_residual: bool = True) -> None:
        super().__init__()
        if gate_channels % 2:
            raise ValueError(f"gate_channels must be even, got {gate_channels}")
        self.dilation = dilation
        self.kernel_size = kernel_size
        self.dilated = CausalConv1d(residual_channels, gate_channels, kernel_size, dilation)
        self.residual = nn.Conv1d(gate_channels // 2, residual_channels, 1) if has_residual else None
        self.skip = nn.Conv1d(gate_channels // 2, skip_channels, 1)

    def forward(self, x: torch.Tensor, conditioning: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.dilated(x)
        if conditioning is not None:
            z = z + conditioning
        h = gated_activation(z)
        residual = x + self.residual(h) if self.residual is not None else x
        return residual, self.skip(h)


def gated_activation(z: torch.Tensor) -> torch.Tensor:
    """tanh(first half of channels) * sigmoid(second half): (B, 2C, ...) -> (B, C, ...)."""
    filter_half, gate_half = z.chunk(2, dim=1)
    return torch.tanh(filter_half) * torch.sigmoid(gate_half)

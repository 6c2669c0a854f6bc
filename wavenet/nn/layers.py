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

from ..config import causal_padding
from ..errors import InvalidArgumentError, InvalidTypeError

__all__ = ["CausalConv1d", "ResidualBlock", "bias_of", "causal_padding", "gated_activation"]


def _check_sizes(where: str, **sizes: object) -> None:
    """Each size must be an int >= 1 (InvalidTypeError / InvalidArgumentError naming it)."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidTypeError(f"{where} {name} must be an int, got {type(value).__name__}")
        if value < 1:
            raise InvalidArgumentError(f"{where} {name} must be >= 1, got {value}")


class CausalConv1d(nn.Conv1d):
    """Dilated 1-D convolution whose output at t depends only on inputs at <= t.

    forward: x (B, C_in, T), T >= 1, in the weights' dtype and on their device
      -> (B, C_out, T).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        dilation: int = 1,
        bias: bool = True,
    ) -> None:
        _check_sizes(
            "CausalConv1d",
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=kernel_size,
            dilation=dilation,
        )
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, bias=bias)
        self.left_padding = causal_padding(kernel_size, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.weight)
        return super().forward(F.pad(x, (self.left_padding, 0)))


def _check_input(x: object, weight: torch.Tensor) -> None:
    """x must be a (B, C_in, T >= 1) tensor in the weight's dtype (any, under autocast),
    on its device."""
    if not isinstance(x, torch.Tensor):
        raise InvalidTypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    channels = weight.shape[1]
    if x.dim() != 3 or x.shape[0] < 1 or x.shape[1] != channels or x.shape[2] < 1:
        raise InvalidArgumentError(
            f"x must be (batch, {channels}, time >= 1), got {tuple(x.shape)}"
        )
    if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
        raise InvalidTypeError(f"x must be a {weight.dtype} tensor, got {x.dtype}")
    if x.device != weight.device:
        raise InvalidArgumentError(f"x is on {x.device}, the weights on {weight.device}")


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

    def __init__(
        self,
        residual_channels: int,
        gate_channels: int,
        skip_channels: int,
        kernel_size: int,
        dilation: int,
        has_residual: bool = True,
    ) -> None:
        super().__init__()
        _check_sizes(
            "ResidualBlock",
            residual_channels=residual_channels,
            gate_channels=gate_channels,
            skip_channels=skip_channels,
            kernel_size=kernel_size,
            dilation=dilation,
        )
        if gate_channels % 2:
            raise InvalidArgumentError(f"gate_channels must be even, got {gate_channels}")
        self.dilation = dilation
        self.kernel_size = kernel_size
        self.dilated = CausalConv1d(residual_channels, gate_channels, kernel_size, dilation)
        self.residual = (
            nn.Conv1d(gate_channels // 2, residual_channels, 1) if has_residual else None
        )
        self.skip = nn.Conv1d(gate_channels // 2, skip_channels, 1)

    def forward(
        self, x: torch.Tensor, conditioning: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.dilated(x)
        if conditioning is not None:
            z = z + conditioning
        h = gated_activation(z)
        residual = x + self.residual(h) if self.residual is not None else x
        return residual, self.skip(h)


def bias_of(layer: nn.Conv1d | nn.Linear) -> torch.Tensor:
    """A layer's bias. Every convolution and linear layer of the model has one; torch
    types the bias as optional (for layers made with bias=False), so readers that pack
    weights (the generators) take it through here."""
    if layer.bias is None:
        raise InvalidArgumentError(f"this {type(layer).__name__} has no bias")
    return layer.bias


def gated_activation(z: torch.Tensor) -> torch.Tensor:
    """tanh(first half of channels) * sigmoid(second half): (B, 2C, ...) -> (B, C, ...)."""
    filter_half, gate_half = z.chunk(2, dim=1)
    return torch.tanh(filter_half) * torch.sigmoid(gate_half)

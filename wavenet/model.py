"""The WaveNet model: code embedding, stacks of gated residual blocks, output head."""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .layers import ResidualBlock


class WaveNet(nn.Module):
    """Autoregressive model of mu-law codes.

    forward: codes (B, T) long in [0, Q) -> logits (B, Q, T), where logits[:, :, t] is
    the distribution of code t + 1 and depends only on codes[:, :t + 1].
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else ModelConfig()
        c = self.config
        self.embedding = nn.Embedding(c.quantization_channels, c.residual_channels)
        self.blocks = nn.ModuleList(
            ResidualBlock(c.residual_channels, c.gate_channels, c.skip_channels,
                          c.kernel_size, dilation)
            for dilation in c.dilations)
        # ReLU -> 1x1 -> ReLU -> 1x1 on the sum of skips.
        self.head_hidden = nn.Conv1d(c.skip_channels, c.skip_channels, 1)
        self.head_out = nn.Conv1d(c.skip_channels, c.quantization_channels, 1)

    @property
    def receptive_field(self) -> int:
        return self.config.receptive_field

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        if codes.dim() != 2:
            raise ValueError(f"codes must be (batch, time), got shape {tuple(codes.shape)}")
        x = self.embedding(codes).transpose(1, 2)  # (B, R, T)
        skips = None
        for block in self.blocks:
            x, skip = block(x)
            skips = skip if skips is None else skips + skip
        return self.head(skips)

    def head(self, skips: torch.Tensor) -> torch.Tensor:
        """Output head: summed skips (B, S, T) -> logits (B, Q, T)."""
        hidden = torch.relu(self.head_hidden(torch.relu(skips)))
        return self.head_out(hidden)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

"""The naive generator: `model(codes)` over the last receptive_field codes for every step.

Slow (O(receptive field) per sample instead of O(layers)) and kept as the reference that
the incremental generators are tested against, and to measure their speed-up
(``method="naive"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..nn.model import WaveNet
from .incremental import CodeGenerator, StepConditioning


@dataclass
class NaiveState:
    """The codes a step still needs, and a clock.

    window: (B, W) long with W <= receptive_field: the codes fed at times
      position - W ... position - 1 (all of them while fewer than receptive_field were fed).
    position: how many codes have been fed so far.
    """

    window: torch.Tensor
    position: int = 0

    @property
    def batch_size(self) -> int:
        return self.window.shape[0]

    def reset(self) -> None:
        self.window = self.window[:, :0]
        self.position = 0


class NaiveGenerator(CodeGenerator):
    """Every step recomputes the full forward over the window; the `CodeGenerator` interface.

    The model is only read; it runs on its own device and in its own dtype.
    """

    state: NaiveState

    def __init__(
        self, model: WaveNet, batch_size: int = 1, conditioning: StepConditioning | None = None
    ) -> None:
        super().__init__(model, batch_size, conditioning)
        self.model = model
        device = model.embedding.weight.device
        self.state = NaiveState(torch.empty(batch_size, 0, dtype=torch.long, device=device))

    def _feed(self, codes: torch.Tensor) -> torch.Tensor:
        state = self.state
        # Codes older than the receptive field cannot change the logits, so they are dropped.
        window = torch.cat([state.window, codes.to(state.window.device)], dim=1)
        state.window = window[:, -self.model.receptive_field :]
        state.position += codes.shape[1]
        return self._logits()

    def _step(self, codes: torch.Tensor) -> torch.Tensor:
        return self._feed(codes[:, None])

    def _logits(self) -> torch.Tensor:
        """Logits (B, Q) for the code after the window's last one."""
        window, end = self.state.window, self.state.position
        with torch.inference_mode():
            if self.conditioning is None:
                return self.model(window)[:, :, -1]
            local = self.conditioning.local_features
            if local is not None:  # the mel features at the window's own times
                local = local[:, :, end - window.shape[1] : end]
            return self.model.forward_features(window, self.conditioning.global_features, local)[
                :, :, -1
            ]

"""The training objective: cross-entropy of each code given the codes before it.

    next_code_loss(model, batch, context)   what a training step minimises (nats)
    loss_context(config)                    how many leading positions of a crop it skips
    validation_bits(model, batches, R)      the same loss on full-context crops, in bits

Which positions of a crop are scored is the `context` (see the layout in crops.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .config import Config
from .crops import Batch, inputs_and_targets
from .evaluate import at_least_float32

LN2 = math.log(2.0)

# A loss function: (model as stepped, batch on the device, context) -> scalar loss in
# nats, where the first `context` input positions of each item are not scored.
# train_step takes it from StepSetup.loss, so another loss is one function.
LossFunction = Callable[[torch.nn.Module, Batch, int], torch.Tensor]


def next_code_loss(model: torch.nn.Module, batch: Batch, context: int) -> torch.Tensor:
    """Mean cross-entropy (nats) of each code given those before it, on the scored positions.

    batch.codes (B, context + N + 1): the model reads codes[:, :-1] and positions context
    ... context + N - 1 predict codes[:, context + 1:] (B, N); see the layout in crops.py.
    The logits are taken channels-last, as the fused forward makes them, so the
    cross-entropy reads (B N, Q) rows without a transposed copy.
    """
    inputs, targets = inputs_and_targets(batch.codes, context)
    logits = model(inputs, global_cond=batch.global_ids, mel=batch.mel)  # (B, Q, T)
    scored = logits[:, :, context:].transpose(1, 2).reshape(-1, logits.shape[1])
    return F.cross_entropy(at_least_float32(scored), targets.reshape(-1))


def loss_context(config: Config) -> int:
    """Unscored input positions per training crop: receptive_field - 1 with
    data.full_context (every scored position sees a full receptive field of audio), else
    0 (every computed position is scored; see crops.py)."""
    return config.model.receptive_field - 1 if config.data.full_context else 0


@torch.no_grad()
def validation_bits(model: torch.nn.Module, batches: list[Batch], receptive_field: int,
                    device: torch.device) -> float:
    """Mean bits per sample over fixed validation crops, each scored position with a full
    receptive field of context (as `wavenet eval` scores), whatever the training crops."""
    was_training = model.training
    model.eval()
    total = sum(next_code_loss(model, b.to(device), receptive_field - 1).item()
                for b in batches)
    model.train(was_training)
    return total / len(batches) / LN2

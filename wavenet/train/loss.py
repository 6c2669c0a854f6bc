"""The training objective: cross-entropy of each code given the codes before it.

    next_code_loss(model, batch, context)   what a training step minimises (nats)
    next_sample_loss(model, batch, context) the same for a "mol" model: -log P of each
                                            16-bit sample under the logistic mixture
                                            (wavenet/coding/logistic.py), so its bits are bits per
                                            16-bit sample, comparable with lossless coders
    loss_function(model_config)             which of the two a model trains with
    loss_context(config)                    how many leading positions of a crop it skips
    validation_bits(model, batches, R)      the same loss on full-context crops, in bits

Which positions of a crop are scored is the `context` (see the layout in crops.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..coding.logistic import mixture_log_prob
from ..config import Config, ModelConfig
from ..data.crops import Batch, inputs_and_targets
from ..nn.model import WaveNet, at_least_float32

LN2 = math.log(2.0)

# A loss function: (model as stepped, batch on the device, context) -> scalar loss in
# nats, where the first `context` input positions of each item are not scored.
# train_step takes it from StepSetup.loss, so another loss is one function.
LossFunction = Callable[[torch.nn.Module, Batch, int], torch.Tensor]


def next_code_loss(model: torch.nn.Module, batch: Batch, context: int) -> torch.Tensor:
    """Mean cross-entropy (nats) of each code given those before it, on the scored positions.

    batch.codes (B, context + N + 1): the model reads codes[:, :-1] and positions context
    ... context + N - 1 predict codes[:, context + 1:] (B, N); see the layout in crops.py.
    The logits are taken time-major, as the fused forward lays them out, so the
    cross-entropy reads (N B, Q) rows without a transposed copy.
    """
    scored, targets = _scored_rows(model, batch, context)
    return F.cross_entropy(scored, targets)


def next_sample_loss(model: torch.nn.Module, batch: Batch, context: int) -> torch.Tensor:
    """Mean -log P (nats) of each 16-bit sample code given those before it, for a "mol"
    model: `next_code_loss` with the mixture's likelihood in place of the softmax's."""
    scored, targets = _scored_rows(model, batch, context)
    return -mixture_log_prob(scored, targets).mean()


def _scored_rows(
    model: torch.nn.Module, batch: Batch, context: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (outputs of the scored positions (N B, O), at least float32; their targets (N B,))."""
    inputs, targets = inputs_and_targets(batch.codes, context)
    logits = model(inputs, global_cond=batch.global_ids, mel=batch.mel)  # (B, O, T)
    # Rows in time-major order (the fused forward's memory layout: no copy); the mean
    # does not depend on the order, only on targets following the same one.
    scored = logits[:, :, context:].permute(2, 0, 1).reshape(-1, logits.shape[1])
    return at_least_float32(scored), targets.t().reshape(-1)


def loss_function(config: ModelConfig) -> LossFunction:
    """The loss a model trains with, by its output."""
    return next_sample_loss if config.output == "mol" else next_code_loss


def loss_context(config: Config) -> int:
    """Unscored input positions per training crop: receptive_field - 1 with
    data.full_context (every scored position sees a full receptive field of audio), else
    0 (every computed position is scored; see crops.py)."""
    return config.model.receptive_field - 1 if config.data.full_context else 0


@torch.no_grad()
def validation_bits(
    model: WaveNet, batches: list[Batch], receptive_field: int, device: torch.device
) -> float:
    """Mean bits per sample over fixed validation crops, each scored position with a full
    receptive field of context (as `wavenet eval` scores), whatever the training crops."""
    was_training = model.training
    model.eval()
    loss = loss_function(model.config)
    total = sum(loss(model, b.to(device), receptive_field - 1).item() for b in batches)
    model.train(was_training)
    return total / len(batches) / LN2

"""A discretized mixture of logistics over the 65,536 values of 16-bit audio.

The head of a "mol" model emits, per position, 3K numbers (K = model.mixtures)::

    params[..., 0:K]     mixture logits w         (softmax -> the weights pi)
    params[..., K:2K]    means mu                 (on the [-1, 1] scale of pcm.code_values)
    params[..., 2K:3K]   log-scales log s         (clamped below at LOG_SCALE_MIN)

Code k (value v_k = -1 + 2k/65535, bin [v_k - h, v_k + h], h = 1/65535) has probability

    P(k) = sum_i pi_i (sigma((v_k + h - mu_i) / s_i) - sigma((v_k - h - mu_i) / s_i))

with the edge bins taking the tails: P(0) uses sigma(...) alone (everything below bin 0's
top), P(65535) uses 1 - sigma(...) (everything above bin 65535's bottom); the 65,536
probabilities sum to 1. log(sigma(a) - sigma(b)) is computed as
log sigma(a) + log sigma(-b) + log(1 - exp(b - a)), exact and free of cancellation for
any a > b, so no bin width or scale needs a special case.

Sampling (`sample_mixture`, one uniform u per row): u picks component i by inverse CDF of
the weights; the rest of u within that component's slice, u' in [0, 1), gives the
logistic's value mu_i + s_i (log u' - log(1 - u')), which is rounded to the nearest bin
centre and clipped to [0, 65535]: an exact draw from P. Temperature T divides the
mixture logits by T and multiplies the scales by T (T = 1: the model's distribution;
T < 1 sharper); T = 0 takes the mean of the heaviest component, rounded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import PCM16_CLASSES
from ..errors import InvalidArgumentError
from .pcm import HALF_BIN, code_values

# Below e^-14 (8e-7, 1/36 of a bin) a component already holds all its mass in one bin;
# smaller scales would only flatten its gradients.
LOG_SCALE_MIN = -14.0
# A new model's log-scales start here (its head's log-scale biases; the weights keep
# their usual small init): s = e^-3 = 0.05, the spread of audio at a usual level (mean
# |x| 0.05 to 0.07 on the benchmark's speech and piano; a logistic's is 1.39 s). The
# usual init, s ~ 1, spreads each component over the whole range: ~17 bits per sample
# at the start, and slower learning (docs/decisions.md).
INITIAL_LOG_SCALE = -3.0
LAST_CODE = PCM16_CLASSES - 1


def split_params(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """params (..., 3K) -> (mixture logits, means, clamped log-scales), each (..., K)."""
    if params.shape[-1] % 3:
        raise InvalidArgumentError(
            f"mixture parameters come in threes, got {params.shape[-1]} channels"
        )
    logits, means, log_scales = params.chunk(3, dim=-1)
    return logits, means, log_scales.clamp(min=LOG_SCALE_MIN)


def mixture_log_prob(params: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """log P(code) in nats: params (N, 3K), codes (N,) long in [0, 65536) -> (N,).

    Computed in params' dtype (the loss upcasts bf16 to float32 first)."""
    logits, means, log_scales = split_params(params)
    centred = code_values(codes, params.dtype).unsqueeze(-1) - means  # (N, K)
    inverse_scales = torch.exp(-log_scales)
    upper = inverse_scales * (centred + HALF_BIN)
    lower = inverse_scales * (centred - HALF_BIN)
    below_upper = F.logsigmoid(upper)  # log CDF at the bin's top
    above_lower = F.logsigmoid(-lower)  # log (1 - CDF at the bin's bottom)
    inside = below_upper + above_lower + torch.log(-torch.expm1(lower - upper))
    k = codes.unsqueeze(-1)
    component = torch.where(k == 0, below_upper, torch.where(k == LAST_CODE, above_lower, inside))
    return torch.logsumexp(F.log_softmax(logits, dim=-1) + component, dim=-1)


def sample_mixture(
    params: torch.Tensor, temperature: float, uniforms: torch.Tensor | None
) -> torch.Tensor:
    """Draw one code per row: params (B, 3K), uniforms (B,) float64 in [0, 1) -> codes (B,).

    The rule of the module docstring, in float64; the generation kernel
    (`kernel._sample_mixture_row`) does the same arithmetic in the same order.
    """
    logits, means, log_scales = split_params(params.to(torch.float64))
    if temperature == 0:
        best = logits.argmax(dim=-1, keepdim=True)
        values = means.gather(-1, best).squeeze(-1)
    else:
        if uniforms is None:
            raise InvalidArgumentError("uniforms are needed when temperature > 0")
        cdf = torch.cumsum(
            torch.exp((logits - logits.amax(dim=-1, keepdim=True)) / temperature), dim=-1
        )
        target = uniforms.to(cdf.device, torch.float64).unsqueeze(-1) * cdf[:, -1:]
        last = logits.shape[-1] - 1
        index = torch.searchsorted(cdf, target, right=True).clamp_(max=last)
        high = cdf.gather(-1, index)
        low = torch.where(
            index > 0, cdf.gather(-1, (index - 1).clamp(min=0)), torch.zeros_like(high)
        )
        inner = ((target - low) / (high - low)).squeeze(-1).clamp(0.0, 1.0)
        scales = torch.exp(log_scales.gather(-1, index).squeeze(-1)) * temperature
        values = means.gather(-1, index).squeeze(-1) + scales * (
            torch.log(inner) - torch.log1p(-inner)
        )
    return value_to_code(values)


def value_to_code(values: torch.Tensor) -> torch.Tensor:
    """values (...) float64 on the model's scale -> the nearest codes (...) long, clipped
    to [0, 65535] (+-inf go to the edges; NaN, from a model whose outputs are NaN, is read
    as 0.0, as the generation kernel reads it)."""
    position = (torch.nan_to_num(values, nan=0.0) + 1.0) * (LAST_CODE / 2.0) + 0.5
    return torch.floor(position.clamp(0.0, float(LAST_CODE))).to(torch.long)

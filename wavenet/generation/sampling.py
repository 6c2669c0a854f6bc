"""How every generation method draws codes: one sampling rule and one stream of uniforms.

Sampling is inverse-CDF sampling from one uniform number per stream per step, drawn from
the caller's generator in the same chunks by every method (`uniform_chunks`), so two
methods whose logits agree draw the same codes (in float64 they agree to ~1e-12).

A "mol" model's outputs are mixture parameters, drawn from by
`wavenet.coding.logistic.sample_mixture` from the same one uniform per stream per step;
`sample_rule(config)` gives the rule for a model. This module knows nothing of the model;
the generators that use it are in `wavenet.generation.incremental` (the interface and the
PyTorch loop), `wavenet.generation.naive` and `wavenet.generation.fastpath`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch

from ..coding.logistic import sample_mixture
from ..config import ModelConfig
from ..errors import InvalidArgumentError

# Uniform numbers are drawn this many steps at a time (one per stream per step), and
# `progress` is called after each such chunk of samples.
UNIFORM_CHUNK = 1024

Progress = Callable[[int, int], object]

# A sampling rule: (outputs (B, O), temperature, uniforms (B,) float64 or None) -> codes (B,).
SampleRule = Callable[[torch.Tensor, float, torch.Tensor | None], torch.Tensor]

# What `uniform_chunks` yields: (start, stop, uniforms (stop - start, B) float64 or None).
Uniforms = Iterable[tuple[int, int, torch.Tensor | None]]
# Receives each chunk of drawn codes (B, n), in order, as soon as it is drawn (streaming).
CodesSink = Callable[[torch.Tensor], object]


def sample_codes(
    logits: torch.Tensor, temperature: float, uniforms: torch.Tensor | None
) -> torch.Tensor:
    """Draw one code per row: logits (B, Q), uniforms (B,) float64 in [0, 1) -> codes (B,) long.

    temperature 0 takes the argmax (first one on ties; `uniforms` is not used). Otherwise
    the code is the first index whose cumulative sum of exp((logits - max) / temperature),
    computed in float64, exceeds uniform * total (inverse-CDF sampling).
    """
    if temperature == 0:
        return logits.argmax(dim=-1)
    if uniforms is None:
        raise InvalidArgumentError("uniforms are needed when temperature > 0")
    z = logits.to(torch.float64)  # the difference first: no temperature overflows it
    cdf = torch.cumsum(torch.exp((z - z.amax(dim=-1, keepdim=True)) / temperature), dim=-1)
    target = uniforms.to(cdf.device).unsqueeze(-1) * cdf[:, -1:]
    codes = torch.searchsorted(cdf, target, right=True).squeeze(-1)
    return codes.clamp_(max=logits.shape[-1] - 1)


def sample_rule(config: ModelConfig) -> SampleRule:
    """How codes are drawn from a model's outputs: `sample_codes` for a categorical
    model, `logistic.sample_mixture` for "mol"."""
    return sample_mixture if config.output == "mol" else sample_codes


def uniform_chunks(
    n_samples: int, batch_size: int, temperature: float, generator: torch.Generator | None
) -> Iterator[tuple[int, int, torch.Tensor | None]]:
    """Yield (start, stop, uniforms (stop - start, batch_size) float64 on the CPU, or None).

    Every method draws its random numbers through this, UNIFORM_CHUNK steps at a time, so
    they see the same numbers for the same generator state. Nothing is drawn at
    temperature 0.
    """
    chunk = UNIFORM_CHUNK
    device = generator.device if generator is not None else torch.device("cpu")
    for start in range(0, n_samples, chunk):
        stop = min(start + chunk, n_samples)
        uniforms = None
        if temperature > 0:
            uniforms = torch.rand(
                (stop - start, batch_size), generator=generator, dtype=torch.float64, device=device
            ).cpu()
        yield start, stop, uniforms

"""Incremental generation: the generator interface, an explicit state, and the PyTorch step.

One step of one residual block (kernel k, dilation d) for a batch of B streams::

    ring of the block   its last (k-1)*d inputs; the input of time s sits in slot s % ((k-1)*d)
                        (no ring for k = 1: the block is a 1x1 of the current input)
    taps at time t      x[t-(k-1)d] ... x[t-d] read from the ring, x[t] the current input
    z = sum_j W_j tap_j + b                     (B, gate_channels)  <- conditioning adds here
    h = tanh(z[:, :G/2]) * sigmoid(z[:, G/2:])  (B, gate_channels / 2)
    next block's input  x[t] + W_res h + b_res;     skips += W_skip h + b_skip
    then x[t] overwrites slot t % ((k-1)*d), which held the oldest tap, just read

Rings start at zero, which is exactly the causal zero padding of the full forward, so a
fresh state fed codes c_0, c_1, ... returns the same logits as `model(codes)` column by
column, and each step costs O(layers) instead of O(receptive field).

`CodeGenerator` is what every generation method implements; `FastGenerator` (the plain
PyTorch loop over the blocks above) is the reference for every optimised one and the path
used on CUDA and for dtypes other than float32 and float64.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from ..config import ModelConfig
from ..errors import InvalidArgumentError, InvalidTypeError
from ..nn.layers import bias_of, causal_padding, gated_activation
from ..nn.model import WaveNet
from .sampling import CodesSink, Progress, Uniforms, sample_rule


def takes_conditioning(config: ModelConfig) -> bool:
    """Whether a model with this config is conditioned (speaker ids and/or a mel)."""
    return config.global_classes is not None or config.local_channels is not None


def check_conditioning(config: ModelConfig, given: bool) -> None:
    """The one rule for conditioning in generation, wherever it is made or taken: a
    conditioned model needs its conditioning, an unconditioned one takes none."""
    needed = takes_conditioning(config)
    if needed and not given:
        raise InvalidArgumentError(
            "this model is conditioned (speaker ids and/or mel): pass "
            "a StepConditioning (generate takes global_cond= and mel=)"
        )
    if given and not needed:
        raise InvalidArgumentError(
            "this model takes no conditioning (global_cond and mel must be None)"
        )


class StepConditioning:
    """Each block's conditioning term at each time step of generation.

    Built from a conditioned model and its inputs: global_cond (B,) ids and/or mel
    (B, n_mels, frames), which the model checks. Time step t (the step that feeds the t-th
    code, counting from 0 at the first prime code) gets upsampled mel feature t, as
    position t does in `model(codes, mel=mel)`. Terms are computed a chunk of steps at a time.

    terms(start, stop) -> (stop - start, layers, B, gate_channels) in the model's dtype.
    """

    def __init__(
        self,
        model: WaveNet,
        batch_size: int,
        length: int,
        global_cond: torch.Tensor | None = None,
        mel: torch.Tensor | None = None,
    ) -> None:
        check_conditioning(model.config, given=True)
        self.model = model
        with torch.inference_mode():
            self.global_features, self.local_features = model.conditioning_features(
                batch_size, length, global_cond, mel
            )
        self.length = length
        self.constant = self.local_features is None
        layers, gate = len(model.blocks), model.config.gate_channels
        # Chunks of at most ~4 MB of terms, whatever the batch.
        self.chunk = max(16, (1 << 20) // (layers * batch_size * gate))
        self._cached: tuple[int, int, torch.Tensor] | None = None

    @property
    def enabled(self) -> bool:
        return self.global_features is not None or self.local_features is not None

    def terms(self, start: int, stop: int) -> torch.Tensor:
        if self.local_features is not None and stop > self.local_features.shape[2]:
            raise InvalidArgumentError(
                f"the mel covers {self.local_features.shape[2]} steps; step "
                f"{stop - 1} was asked for"
            )
        with torch.inference_mode():
            local = None if self.local_features is None else self.local_features[:, :, start:stop]
            terms = self.model.conditioning_terms(self.global_features, local)  # (T' or 1, L, B, G)
            return terms.expand(stop - start, -1, -1, -1).contiguous()

    def at(self, t: int) -> torch.Tensor:
        """(layers, B, G) for step t (chunks are computed once and kept)."""
        if self._cached is None or not self._cached[0] <= t < self._cached[1]:
            stop = (
                t + self.chunk
                if self.local_features is None
                else min(t + self.chunk, self.local_features.shape[2])
            )
            self._cached = (t, stop, self.terms(t, max(stop, t + 1)))
        return self._cached[2][t - self._cached[0]]


class GeneratorState(Protocol):
    """What a generator's state offers whatever it holds: a clock, a batch, a reset."""

    position: int

    @property
    def batch_size(self) -> int: ...

    def reset(self) -> None: ...


class CodeGenerator(ABC):
    """The generator interface: B streams of one model, one code per stream per step.

    Every generation method is one subclass (`FastGenerator`, `naive.NaiveGenerator`,
    `fastpath.NumbaGenerator`), and `generate` only builds one and calls `sample`::

        gen.reset()                        # back to time 0, nothing fed
        logits = gen.feed(codes)           # teacher forcing: (B, T) -> logits (B, O) after the last
        logits = gen.step(codes)           # (B,) -> logits (B, O) for the next code
        out = gen.sample(prime, n, temperature, uniforms, progress)   # (B, T) -> (B, n)

    A subclass builds `state` (a `GeneratorState`, owned by the generator; nothing is kept
    on the model) and implements `_feed` and `_step`, which get checked codes; `sample`
    loops over `_step` in Python unless the subclass has a faster loop of its own.
    """

    state: GeneratorState

    def __init__(
        self, model: WaveNet, batch_size: int, conditioning: StepConditioning | None
    ) -> None:
        if batch_size < 1:
            raise InvalidArgumentError(f"batch_size must be >= 1, got {batch_size}")
        check_conditioning(model.config, given=conditioning is not None)
        self.config = model.config
        self.conditioning = conditioning
        self._sample_rule = sample_rule(model.config)

    @property
    def batch_size(self) -> int:
        return self.state.batch_size

    @property
    def position(self) -> int:
        return self.state.position

    def reset(self) -> None:
        self.state.reset()

    @abstractmethod
    def _feed(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, T >= 1) long -> logits (B, Q) after the last one."""

    @abstractmethod
    def _step(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B,) long -> logits (B, Q) for the next code."""

    def step(self, codes: torch.Tensor) -> torch.Tensor:
        """Feed one code per stream: codes (B,) long -> logits (B, Q) for the next code."""
        if codes.shape != (self.batch_size,):
            raise InvalidArgumentError(
                f"codes must have shape ({self.batch_size},), got {tuple(codes.shape)}"
            )
        if codes.dtype in (torch.bool,) or codes.is_floating_point() or codes.is_complex():
            raise InvalidTypeError(f"codes must be an integer tensor, got dtype {codes.dtype}")
        self._check_values(codes)
        return self._step(codes)

    def feed(self, codes: torch.Tensor) -> torch.Tensor:
        """Teacher-force codes (B, T), T >= 1, one step at a time -> the last logits (B, Q)."""
        if codes.dim() != 2 or codes.shape[0] != self.batch_size or codes.shape[1] < 1:
            raise InvalidArgumentError(
                f"codes must be (batch_size={self.batch_size}, T >= 1), "
                f"got shape {tuple(codes.shape)}"
            )
        if codes.dtype in (torch.bool,) or codes.is_floating_point() or codes.is_complex():
            raise InvalidTypeError(f"codes must be an integer tensor, got dtype {codes.dtype}")
        self._check_values(codes)
        return self._feed(codes)

    def _check_values(self, codes: torch.Tensor) -> None:
        low, high = (int(v) for v in torch.aminmax(codes))
        if low < 0 or high >= self.config.classes:
            raise InvalidArgumentError(
                f"codes must be in [0, {self.config.classes - 1}], found values in [{low}, {high}]"
            )

    def sample(
        self,
        prime: torch.Tensor,
        n_samples: int,
        temperature: float,
        uniforms: Uniforms,
        progress: Progress | None = None,
        on_codes: CodesSink | None = None,
    ) -> torch.Tensor:
        """Feed prime (B, T >= 1), then draw n_samples codes per stream -> (B, n_samples) long.

        Each drawn code is fed back except the last. `uniforms` yields (start, stop,
        uniforms (stop - start, B) float64 or None), as `sampling.uniform_chunks` does;
        after each of those chunks on_codes(codes (B, stop - start)) receives its codes
        (for streaming) and progress(stop, n_samples) is called.
        """
        logits = self.feed(prime)
        out = torch.empty(self.batch_size, n_samples, dtype=torch.long, device=prime.device)
        for start, stop, chunk in uniforms:
            for i in range(start, stop):
                codes = self._sample_rule(
                    logits, temperature, None if chunk is None else chunk[i - start]
                )
                out[:, i] = codes
                if i + 1 < n_samples:
                    logits = self._step(codes)
            if on_codes is not None:
                on_codes(out[:, start:stop])
            if progress is not None:
                progress(stop, n_samples)
        return out


@dataclass
class IncrementalState:
    """What a batch of streams remembers between steps: one ring buffer per block, a clock.

    rings[l]: (span_l, B, residual_channels) with span_l = (kernel_size - 1) * dilation_l;
      slot s % span_l holds block l's input at time s (zeros before time 0).
    position: how many codes have been fed so far (the time of the next step).
    """

    rings: list[torch.Tensor]
    position: int = 0

    @classmethod
    def zeros(
        cls,
        config: ModelConfig,
        batch_size: int,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> IncrementalState:
        with torch.inference_mode():
            rings = [
                torch.zeros(
                    causal_padding(config.kernel_size, dilation),
                    batch_size,
                    config.residual_channels,
                    device=device,
                    dtype=dtype,
                )
                for dilation in config.dilations
            ]
        return cls(rings)

    @property
    def batch_size(self) -> int:
        return self.rings[0].shape[1]

    def reset(self) -> None:
        """Back to time 0: all rings zero."""
        with torch.inference_mode():
            for ring in self.rings:
                ring.zero_()
        self.position = 0


@dataclass(frozen=True)
class _BlockWeights:
    """One block's weights as matrices (views of the module's parameters, no copies)."""

    dilation: int
    taps: tuple[torch.Tensor, ...]  # kernel_size x (G, R); taps[-1] acts on the current input
    dilated_bias: torch.Tensor  # (G,)
    residual_weight: torch.Tensor | None  # (R, G/2); None in the last block
    residual_bias: torch.Tensor | None  # (R,)
    skip_weight: torch.Tensor  # (S, G/2)
    skip_bias: torch.Tensor  # (S,)


def _block_weights(model: WaveNet) -> list[_BlockWeights]:
    weights = []
    for block in model.residual_blocks():
        conv = block.dilated
        weights.append(
            _BlockWeights(
                dilation=block.dilation,
                taps=tuple(conv.weight[:, :, j] for j in range(conv.weight.shape[2])),
                dilated_bias=bias_of(conv),
                residual_weight=None if block.residual is None else block.residual.weight[:, :, 0],
                residual_bias=None if block.residual is None else bias_of(block.residual),
                skip_weight=block.skip.weight[:, :, 0],
                skip_bias=bias_of(block.skip),
            )
        )
    return weights


def _block_step(
    w: _BlockWeights,
    x: torch.Tensor,
    ring: torch.Tensor,
    t: int,
    conditioning: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One block at time t: x (B, R) -> (next block's input (B, R), skip (B, S)).

    Reads the past taps from `ring`, then stores x in it. `conditioning` (B, G), when
    given, is added to the dilated convolution's output before the gate.
    """
    span = ring.shape[0]  # 0 for kernel_size 1: a 1x1 keeps no past inputs
    kernel_size = len(w.taps)
    z = F.linear(x, w.taps[-1], w.dilated_bias)
    for j in range(kernel_size - 1):
        past = t - (kernel_size - 1 - j) * w.dilation
        z = z + F.linear(ring[past % span], w.taps[j])
    if conditioning is not None:
        z = z + conditioning
    h = gated_activation(z)
    if span:
        ring[t % span] = x
    skip = F.linear(h, w.skip_weight, w.skip_bias)
    if w.residual_weight is None:
        return x, skip
    return x + F.linear(h, w.residual_weight, w.residual_bias), skip


class FastGenerator(CodeGenerator):
    """Incremental WaveNet with plain PyTorch ops: one code per stream in, logits out.

    The generator owns its `IncrementalState`; the model is only read (its parameters are
    used as they are at each step, on their device and in their dtype). Teacher forcing::

        gen = FastGenerator(model, batch_size=B)
        logits_t = gen.step(codes[:, t])   # (B,) -> (B, Q), equals model(codes)[:, :, t]

    Everything runs under `torch.inference_mode()`, so the logits are inference tensors.
    """

    state: IncrementalState

    def __init__(
        self, model: WaveNet, batch_size: int = 1, conditioning: StepConditioning | None = None
    ) -> None:
        super().__init__(model, batch_size, conditioning)
        self.model = model
        parameter = model.embedding.weight
        self.device, self.dtype = parameter.device, parameter.dtype
        self._blocks = _block_weights(model)
        self.state = IncrementalState.zeros(
            self.config, batch_size, device=self.device, dtype=self.dtype
        )

    def _step(self, codes: torch.Tensor) -> torch.Tensor:
        model, state, t = self.model, self.state, self.state.position
        with torch.inference_mode():
            x = model.embed(codes.to(self.device))
            terms = self.conditioning.at(t) if self.conditioning is not None else None
            skips = None
            for layer, (w, ring) in enumerate(zip(self._blocks, state.rings)):
                x, skip = _block_step(w, x, ring, t, None if terms is None else terms[layer])
                skips = skip if skips is None else skips + skip
            assert skips is not None
            hidden = torch.relu(
                F.linear(
                    torch.relu(skips), model.head_hidden.weight[:, :, 0], model.head_hidden.bias
                )
            )
            logits = F.linear(hidden, model.head_out.weight[:, :, 0], model.head_out.bias)
        state.position = t + 1
        return logits

    def _feed(self, codes: torch.Tensor) -> torch.Tensor:
        logits = None
        for t in range(codes.shape[1]):
            logits = self._step(codes[:, t])
        assert logits is not None
        return logits

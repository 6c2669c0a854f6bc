"""Autoregressive generation: an explicit incremental state, sampling, and `generate`.

One step of one residual block (kernel k, dilation d) for a batch of B streams::

    ring of the block   its last (k-1)*d inputs; the input of time s sits in slot s % ((k-1)*d)
    taps at time t      x[t-(k-1)d] ... x[t-d] read from the ring, x[t] the current input
    z = sum_j W_j tap_j + b                     (B, gate_channels)  <- conditioning adds here
    h = tanh(z[:, :G/2]) * sigmoid(z[:, G/2:])  (B, gate_channels / 2)
    next block's input  x[t] + W_res h + b_res;     skips += W_skip h + b_skip
    then x[t] overwrites slot t % ((k-1)*d), which held the oldest tap, just read

Rings start at zero, which is exactly the causal zero padding of the full forward, so a
fresh state fed codes c_0, c_1, ... returns the same logits as `model(codes)` column by
column, and each step costs O(layers) instead of O(receptive field).

Three ways to run the same step, all giving the same codes for the same seed:

- `FastGenerator` (``method="fast-torch"``): the plain PyTorch loop over blocks above; the
  reference for every optimised path, and the path used on CUDA and for other dtypes.
- `wavenet.fastpath.NumbaGenerator` (``method="fast-numba"``): the same arithmetic with
  packed weights in one compiled kernel that runs many steps per call (CPU, float32 and
  float64). ``method="fast"`` picks it when it applies.
- ``method="naive"``: `model(codes)` over the last receptive_field codes for every sample.

Sampling is inverse-CDF sampling from one uniform number per stream per step, drawn from
the caller's generator in the same chunks by every method (`uniform_chunks`), so fast and
naive generation agree exactly whenever their logits agree (in float64 they do to ~1e-12).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .config import ModelConfig
from .layers import gated_activation
from .model import WaveNet

logger = logging.getLogger(__name__)

METHODS = ("fast", "fast-numba", "fast-torch", "naive")

# Uniform numbers are drawn this many steps at a time (one per stream per step), and
# `progress` is called after each such chunk of samples.
UNIFORM_CHUNK = 1024

Progress = Callable[[int, int], object]


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
    def zeros(cls, config: ModelConfig, batch_size: int, *, device: torch.device | str = "cpu",
              dtype: torch.dtype = torch.float32) -> IncrementalState:
        with torch.inference_mode():
            rings = [torch.zeros((config.kernel_size - 1) * dilation, batch_size,
                                 config.residual_channels, device=device, dtype=dtype)
                     for dilation in config.dilations]
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
    dilated_bias: torch.Tensor      # (G,)
    residual_weight: torch.Tensor | None  # (R, G/2); None in the last block
    residual_bias: torch.Tensor | None    # (R,)
    skip_weight: torch.Tensor       # (S, G/2)
    skip_bias: torch.Tensor         # (S,)


def _block_weights(model: WaveNet) -> list[_BlockWeights]:
    weights = []
    for block in model.blocks:
        conv = block.dilated
        weights.append(_BlockWeights(
            dilation=block.dilation,
            taps=tuple(conv.weight[:, :, j] for j in range(conv.weight.shape[2])),
            dilated_bias=conv.bias,
            residual_weight=None if block.residual is None else block.residual.weight[:, :, 0],
            residual_bias=None if block.residual is None else block.residual.bias,
            skip_weight=block.skip.weight[:, :, 0],
            skip_bias=block.skip.bias))
    return weights


def _block_step(w: _BlockWeights, x: torch.Tensor, ring: torch.Tensor, t: int,
                conditioning: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One block at time t: x (B, R) -> (next block's input (B, R), skip (B, S)).

    Reads the past taps from `ring`, then stores x in it. `conditioning` (B, G), when
    given, is added to the dilated convolution's output before the gate.
    """
    span = ring.shape[0]
    kernel_size = len(w.taps)
    z = F.linear(x, w.taps[-1], w.dilated_bias)
    for j in range(kernel_size - 1):
        past = t - (kernel_size - 1 - j) * w.dilation
        z = z + F.linear(ring[past % span], w.taps[j])
    if conditioning is not None:
        z = z + conditioning
    h = gated_activation(z)
    ring[t % span] = x
    skip = F.linear(h, w.skip_weight, w.skip_bias)
    if w.residual_weight is None:
        return x, skip
    return x + F.linear(h, w.residual_weight, w.residual_bias), skip


class StepConditioning:
    """Each block's conditioning term at each time step of generation.

    Built from a conditioned model and its inputs: global_cond (B,) ids and/or mel
    (B, n_mels, frames). Time step t (the step that feeds the t-th code, counting from 0
    at the first prime code) gets upsampled mel feature t, as position t does in
    `model(codes, mel=mel)`. Terms are computed a chunk of steps at a time.

    terms(start, stop) -> (stop - start, layers, B, gate_channels) in the model's dtype.
    """

    def __init__(self, model: WaveNet, batch_size: int, length: int,
                 global_cond: torch.Tensor | None = None, mel: torch.Tensor | None = None) -> None:
        self.model = model
        with torch.inference_mode():
            self.global_features, self.local_features = model.conditioning_features(
                batch_size, length, global_cond, mel)
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
            raise ValueError(f"the mel covers {self.local_features.shape[2]} steps; step "
                             f"{stop - 1} was asked for")
        model = self.model
        with torch.inference_mode():
            local = (None if self.local_features is None
                     else self.local_features[:, :, start:stop])
            per_layer = [model.layer_conditioning(layer, self.global_features, local)
                         for layer in range(len(model.blocks))]
            stacked = torch.stack(per_layer)  # (L, B, G, T' or 1)
            return stacked.expand(-1, -1, -1, stop - start).permute(3, 0, 1, 2).contiguous()

    def at(self, t: int) -> torch.Tensor:
        """(layers, B, G) for step t (chunks are computed once and kept)."""
        if self._cached is None or not self._cached[0] <= t < self._cached[1]:
            stop = t + self.chunk if self.local_features is None else \
                min(t + self.chunk, self.local_features.shape[2])
            self._cached = (t, stop, self.terms(t, max(stop, t + 1)))
        return self._cached[2][t - self._cached[0]]


class StatefulGenerator:
    """What every incremental generator shares: it owns `state`, an IncrementalState."""

    state: IncrementalState

    @property
    def batch_size(self) -> int:
        return self.state.batch_size

    @property
    def position(self) -> int:
        return self.state.position

    def reset(self) -> None:
        self.state.reset()


class FastGenerator(StatefulGenerator):
    """Incremental WaveNet with plain PyTorch ops: one code per stream in, logits out.

    The generator owns its `IncrementalState`; the model is only read (its parameters are
    used as they are at each step, on their device and in their dtype). Teacher forcing::

        gen = FastGenerator(model, batch_size=B)
        logits_t = gen.step(codes[:, t])   # (B,) -> (B, Q), equals model(codes)[:, :, t]

    Everything runs under `torch.inference_mode()`, so the logits are inference tensors.
    """

    def __init__(self, model: WaveNet, batch_size: int = 1,
                 conditioning: StepConditioning | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.conditioning = _check_conditioning(model, conditioning)
        self.model = model
        self.config = model.config
        parameter = model.embedding.weight
        self.device, self.dtype = parameter.device, parameter.dtype
        self._blocks = _block_weights(model)
        self.state = IncrementalState.zeros(self.config, batch_size, device=self.device,
                                            dtype=self.dtype)

    def step(self, codes: torch.Tensor) -> torch.Tensor:
        """Feed one code per stream: codes (B,) long -> logits (B, Q) for the next code."""
        _check_step_codes(codes, self.batch_size)
        return self._step(codes)

    def _step(self, codes: torch.Tensor) -> torch.Tensor:
        model, state, t = self.model, self.state, self.state.position
        with torch.inference_mode():
            x = F.embedding(codes.to(self.device), model.embedding.weight)
            terms = self.conditioning.at(t) if self.conditioning is not None else None
            skips = None
            for layer, (w, ring) in enumerate(zip(self._blocks, state.rings)):
                x, skip = _block_step(w, x, ring, t, None if terms is None else terms[layer])
                skips = skip if skips is None else skips + skip
            assert skips is not None
            hidden = torch.relu(F.linear(torch.relu(skips), model.head_hidden.weight[:, :, 0],
                                         model.head_hidden.bias))
            logits = F.linear(hidden, model.head_out.weight[:, :, 0], model.head_out.bias)
        state.position = t + 1
        return logits

    def feed(self, codes: torch.Tensor) -> torch.Tensor:
        """Teacher-force codes (B, T), T >= 1, one step at a time; returns the last logits (B, Q)."""
        if codes.dim() != 2 or codes.shape[0] != self.batch_size or codes.shape[1] < 1:
            raise ValueError(f"codes must be (batch_size={self.batch_size}, T >= 1), "
                             f"got shape {tuple(codes.shape)}")
        logits = None
        for t in range(codes.shape[1]):
            logits = self._step(codes[:, t])
        assert logits is not None
        return logits


def _check_step_codes(codes: torch.Tensor, batch_size: int) -> None:
    if codes.shape != (batch_size,):
        raise ValueError(f"codes must have shape ({batch_size},), got {tuple(codes.shape)}")
    if codes.dtype in (torch.bool,) or codes.is_floating_point() or codes.is_complex():
        raise ValueError(f"codes must be an integer tensor, got dtype {codes.dtype}")


def sample_codes(logits: torch.Tensor, temperature: float, uniforms: torch.Tensor | None
                 ) -> torch.Tensor:
    """Draw one code per row: logits (B, Q), uniforms (B,) float64 in [0, 1) -> codes (B,) long.

    temperature 0 takes the argmax (first one on ties; `uniforms` is not used). Otherwise
    the code is the first index whose cumulative sum of exp((logits - max) / temperature),
    computed in float64, exceeds uniform * total (inverse-CDF sampling).
    """
    if temperature == 0:
        return logits.argmax(dim=-1)
    if uniforms is None:
        raise ValueError("uniforms are needed when temperature > 0")
    z = logits.to(torch.float64) / temperature
    cdf = torch.cumsum(torch.exp(z - z.amax(dim=-1, keepdim=True)), dim=-1)
    target = uniforms.to(cdf.device).unsqueeze(-1) * cdf[:, -1:]
    codes = torch.searchsorted(cdf, target, right=True).squeeze(-1)
    return codes.clamp_(max=logits.shape[-1] - 1)


def uniform_chunks(n_samples: int, batch_size: int, temperature: float,
                   generator: torch.Generator | None
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
            uniforms = torch.rand((stop - start, batch_size), generator=generator,
                                  dtype=torch.float64, device=device).cpu()
        yield start, stop, uniforms


def _prime_codes(prime: torch.Tensor | None, batch_size: int, quantization_channels: int,
                 device: torch.device) -> torch.Tensor:
    """The codes fed before sampling, as (batch_size, T) long: the prime or one silent code."""
    if prime is None:
        # mu-law code of 0.0 is Q // 2.
        return torch.full((batch_size, 1), quantization_channels // 2, dtype=torch.long,
                          device=device)
    if not isinstance(prime, torch.Tensor):
        raise ValueError(f"prime must be a LongTensor of codes, got {type(prime).__name__}")
    if prime.dtype == torch.bool or prime.is_floating_point() or prime.is_complex():
        raise ValueError(f"prime must hold integer codes, got dtype {prime.dtype}")
    if prime.dim() == 1:
        prime = prime.unsqueeze(0).expand(batch_size, -1)
    elif prime.dim() != 2 or prime.shape[0] != batch_size:
        raise ValueError(f"prime must be (T,) or (batch_size={batch_size}, T), "
                         f"got shape {tuple(prime.shape)}")
    if prime.shape[1] < 1:
        raise ValueError("prime must hold at least one code (leave it None to start from silence)")
    low, high = int(prime.min()), int(prime.max())
    if low < 0 or high >= quantization_channels:
        raise ValueError(f"prime codes must be in [0, {quantization_channels - 1}], "
                         f"found values in [{low}, {high}]")
    return prime.to(device=device, dtype=torch.long).contiguous()


def _check_conditioning(model: WaveNet, conditioning: StepConditioning | None
                        ) -> StepConditioning | None:
    """A conditioned model needs its conditioning; an unconditioned one takes none."""
    c = model.config
    needed = c.global_classes is not None or c.local_channels is not None
    if needed and conditioning is None:
        raise ValueError("this model is conditioned (speaker ids and/or mel): pass a "
                         "StepConditioning (generate takes global_cond= and mel=)")
    if conditioning is not None and not needed:
        raise ValueError("this model takes no conditioning")
    return conditioning


def _check_arguments(model: WaveNet, n_samples: int, batch_size: int, temperature: float,
                     generator: torch.Generator | None, method: str,
                     progress: Progress | None) -> None:
    if not isinstance(model, WaveNet):
        raise TypeError(f"model must be a wavenet.WaveNet, got {type(model).__name__}")
    for name, value in (("n_samples", n_samples), ("batch_size", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if (not isinstance(temperature, (int, float)) or isinstance(temperature, bool)
            or not temperature >= 0 or temperature == float("inf")):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; methods: {', '.join(METHODS)}")
    if progress is not None and not callable(progress):
        raise ValueError("progress must be callable as progress(done, total) or None")


def generate(model: WaveNet, n_samples: int, *, batch_size: int = 1, temperature: float = 1.0,
             prime: torch.Tensor | None = None, generator: torch.Generator | None = None,
             method: str = "fast", progress: Progress | None = None,
             global_cond: torch.Tensor | None = None, mel: torch.Tensor | None = None
             ) -> torch.Tensor:
    """Sample `n_samples` codes for each of `batch_size` independent streams.

    Returns codes (batch_size, n_samples) long on the model's device; decode them with
    `mu_law_decode`. The model is only read; it runs in its own device and dtype, under
    `torch.inference_mode()`.

    prime: codes fed before sampling starts, (T,) for the same prime in every stream or
      (batch_size, T), long in [0, Q). The first returned code follows the prime's last
      code; the prime itself is not returned. Without a prime every stream starts from one
      silent code (Q // 2, the mu-law code of 0.0), which is not returned either.
    temperature: logits are divided by it before sampling; 0 takes the most likely code.
    generator: the source of randomness (one uniform number per stream per sample); the
      same generator state gives the same codes, whatever the method. None uses torch's
      global generator.
    method: "fast" uses "fast-numba" (a compiled kernel running every step on one CPU
      thread) when the model is on the CPU in float32 or float64 and numba can be imported,
      and "fast-torch" (the plain PyTorch incremental loop) otherwise, e.g. on CUDA or in
      bfloat16; a missing numba is logged as a warning. "naive" recomputes `model(codes)`
      over the last receptive_field codes for every sample: slow, kept as the reference.
    progress: called as progress(done, total) after every chunk of samples; the library
      itself never prints.
    global_cond: (batch_size,) ids for a model with global conditioning (speakers).
    mel: (batch_size, n_mels, frames) log-mel for a vocoder; generated sample j is
      predicted with mel frame j // hop_length, so frames * hop_length samples at most
      (`wavenet.features.log_mel_of_waveform` computes it from audio). A vocoder starts
      from silence: prime is not taken with mel.
    """
    _check_arguments(model, n_samples, batch_size, temperature, generator, method, progress)
    config = model.config
    device = model.embedding.weight.device
    if mel is not None and prime is not None:
        raise ValueError("prime is not taken with mel: a vocoder starts from silence, its "
                         "first sample predicted with mel frame 0")
    codes_in = _prime_codes(prime, batch_size, config.quantization_channels, device)
    conditioning = None
    if config.global_classes is not None or config.local_channels is not None:
        steps = codes_in.shape[1] + n_samples - 1  # every step that feeds a code
        conditioning = StepConditioning(model, batch_size, steps, global_cond, mel)
    elif global_cond is not None or mel is not None:
        raise ValueError("this model takes no conditioning (global_cond and mel must be None)")
    temperature = float(temperature)
    if method == "fast":
        method = _pick_fast_method(model)
    logger.debug("generating %d samples x %d streams with method %s", n_samples, batch_size, method)
    chunks = uniform_chunks(n_samples, batch_size, temperature, generator)
    with torch.inference_mode():
        if method == "fast-numba":
            from .fastpath import NumbaGenerator

            numba_gen = NumbaGenerator(model, batch_size, conditioning)
            return numba_gen.generate(codes_in, n_samples, temperature, chunks, progress)
        if method == "fast-torch":
            return _generate_fast_torch(model, codes_in, n_samples, temperature, chunks, progress,
                                        conditioning)
        return _generate_naive(model, codes_in, n_samples, temperature, chunks, progress,
                               conditioning)


def _pick_fast_method(model: WaveNet) -> str:
    parameter = model.embedding.weight
    if parameter.device.type != "cpu" or parameter.dtype not in (torch.float32, torch.float64):
        return "fast-torch"
    try:
        import numba  # noqa: F401
    except ImportError:
        logger.warning("numba is not installed: generating with the slower plain PyTorch "
                       "incremental loop (pip install numba for the compiled kernel)")
        return "fast-torch"
    return "fast-numba"


def _generate_fast_torch(model: WaveNet, codes_in: torch.Tensor, n_samples: int,
                         temperature: float, chunks: Iterator[tuple[int, int, torch.Tensor | None]],
                         progress: Progress | None,
                         conditioning: StepConditioning | None = None) -> torch.Tensor:
    batch_size = codes_in.shape[0]
    gen = FastGenerator(model, batch_size, conditioning)
    logits = gen.feed(codes_in)
    out = torch.empty(batch_size, n_samples, dtype=torch.long, device=codes_in.device)
    for start, stop, uniforms in chunks:
        for i in range(start, stop):
            codes = sample_codes(logits, temperature, None if uniforms is None else uniforms[i - start])
            out[:, i] = codes
            if i + 1 < n_samples:
                logits = gen._step(codes)
        if progress is not None:
            progress(stop, n_samples)
    return out


def _generate_naive(model: WaveNet, codes_in: torch.Tensor, n_samples: int, temperature: float,
                    chunks: Iterator[tuple[int, int, torch.Tensor | None]],
                    progress: Progress | None,
                    conditioning: StepConditioning | None = None) -> torch.Tensor:
    batch_size, n_prime = codes_in.shape
    history = torch.cat([codes_in, codes_in.new_empty(batch_size, n_samples)], dim=1)
    receptive_field = model.receptive_field
    for start, stop, uniforms in chunks:
        for i in range(start, stop):
            end = n_prime + i
            window_start = max(0, end - receptive_field)
            if conditioning is None:
                logits = model(history[:, window_start:end])[:, :, -1]
            else:
                local = conditioning.local_features
                logits = model.forward_features(
                    history[:, window_start:end], conditioning.global_features,
                    None if local is None else local[:, :, window_start:end])[:, :, -1]
            history[:, end] = sample_codes(logits, temperature,
                                           None if uniforms is None else uniforms[i - start])
        if progress is not None:
            progress(stop, n_samples)
    return history[:, n_prime:].clone()

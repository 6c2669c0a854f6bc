"""`generate`: check the arguments once, then sample with one of the generators.

Every method is a `wavenet.generation.incremental.CodeGenerator` and gives the same codes for the
same seed (they share the sampling rule and the uniform numbers of `wavenet.generation.sampling`):

- ``"fast-numba"``: `wavenet.generation.fastpath.NumbaGenerator`, the compiled CPU kernel (float32
  and float64), many steps per call;
- ``"fast-torch"``: `wavenet.generation.incremental.FastGenerator`, the plain PyTorch loop over the
  blocks: the reference for the kernel, and the path on CUDA and for other dtypes;
- ``"naive"``: `wavenet.generation.naive.NaiveGenerator`, `model(codes)` over the last
  receptive_field codes for every sample;
- ``"fast"`` picks fast-numba where it applies and fast-torch elsewhere.

A new method is one more `CodeGenerator` subclass and one more entry in `_generator_class`.
"""

from __future__ import annotations

import itertools
import logging

import torch

from ..coding.pcm import silence_code
from ..errors import InvalidArgumentError, InvalidTypeError
from ..nn.model import WaveNet
from ..util.hardware import memory_limit
from .incremental import CodeGenerator, FastGenerator, StepConditioning, takes_conditioning
from .naive import NaiveGenerator
from .reduced import check_format, reduced_model
from .sampling import CodesSink, Progress, uniform_chunks

logger = logging.getLogger(__name__)

METHODS = ("fast", "fast-numba", "fast-torch", "naive")
# What generation holds per code of every stream: the int64 codes, and the kernel's
# time-major copy of them.
BYTES_PER_CODE = 16


def generate(
    model: WaveNet,
    n_samples: int,
    *,
    batch_size: int = 1,
    temperature: float = 1.0,
    prime: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    method: str = "fast",
    progress: Progress | None = None,
    global_cond: torch.Tensor | None = None,
    mel: torch.Tensor | None = None,
    on_codes: CodesSink | None = None,
    weights: str = "float32",
) -> torch.Tensor:
    """Sample `n_samples` codes for each of `batch_size` independent streams.

    Returns codes (batch_size, n_samples) long on the model's device; decode them with
    `mu_law_decode` (a "mol" model's codes are 16-bit samples + 32768: `pcm.pcm16_decode`,
    or `pcm.pcm16_samples` for the int16 values themselves). The model is only read; it
    runs in its own device and dtype, under `torch.inference_mode()`.

    prime: codes fed before sampling starts, (T,) for the same prime in every stream or
      (batch_size, T), long in [0, Q) (Q = config.classes). The first returned code follows
      the prime's last code; the prime itself is not returned. Only its last
      receptive_field codes are fed (no generated code depends on earlier ones). Without a
      prime every stream starts from one silent code (Q // 2: the mu-law code of 0.0, or
      the 16-bit sample 0), which is not returned either.
    temperature: logits are divided by it before sampling; 0 takes the most likely code.
      For "mol", mixture logits are divided by it and the logistics' scales multiplied by
      it; 0 takes the mean of the heaviest component (wavenet/coding/logistic.py).
    generator: the source of randomness (one uniform number per stream per sample); the
      same generator state gives the same codes, whatever the method. None uses torch's
      global generator.
    method: "fast" uses "fast-numba" (a compiled kernel running every step on one CPU
      thread) when the model is on the CPU in float32 or float64, and "fast-torch" (the
      plain PyTorch incremental loop) otherwise, e.g. on CUDA or in bfloat16. "naive"
      recomputes `model(codes)` over the last receptive_field codes for every sample:
      slow, kept as the reference.
    progress: called as progress(done, total) after every chunk of samples; the library
      itself never prints.
    on_codes: called with each chunk of codes (batch_size, n) as soon as it is drawn, in
      order, so that a caller can write audio while the rest is generated (streaming).
    weights: the product weights' format, "float32" (the model's own), "bf16" or "int8"
      (wavenet/generation/reduced.py: fewer bytes per step, a faster CPU kernel at small
      batches, at a measured cost in bits). Every method computes the same reduced model.
      "bf16-dot" and "int8-dot" also reduce each product's inputs, to bfloat16 or to
      int8 (the CPU's `vdpbf16ps` or `vpdpbusd`: AVX-512 BF16 or VNNI): "fast-numba" only.
      "auto": the fastest format measured to cost under 0.001 bits where it can run
      (`resolve_weights`), so that a seed's codes depend on the CPU; the default,
      "float32", is the model's own arithmetic.
    global_cond: (batch_size,) ids for a model with global conditioning (speakers).
    mel: (batch_size, n_mels, frames) log-mel for a vocoder; generated sample j is
      predicted with mel frame j // hop_length, so frames * hop_length samples at most
      (`wavenet.data.features.log_mel_of_waveform` computes it from audio). A vocoder starts
      from silence: prime is not taken with mel.
    """
    _check_arguments(model, n_samples, batch_size, temperature, generator, method, progress)
    if on_codes is not None and not callable(on_codes):
        raise InvalidTypeError("on_codes must be callable as on_codes(codes) or None")
    _check_memory(n_samples, batch_size)
    _check_finite_weights(model)
    if mel is not None and prime is not None:
        raise InvalidArgumentError(
            "prime is not taken with mel: a vocoder starts from silence, "
            "its first sample predicted with mel frame 0"
        )
    _check_finite_mel(mel)
    codes_in = _prime_codes(prime, batch_size, model.config.classes, model.embedding.weight.device)
    # Only the prime's last receptive_field codes reach any generated code: the rest
    # would be fed one step at a time for nothing (a minute of prime, a minute of steps).
    codes_in = codes_in[:, -model.receptive_field :]
    steps = codes_in.shape[1] + n_samples - 1  # every step that feeds a code
    conditioning = _conditioning(model, batch_size, steps, global_cond, mel)
    temperature = float(temperature)
    if method == "fast":
        method = _pick_fast_method(model)
    logger.debug("generating %d samples x %d streams with method %s", n_samples, batch_size, method)
    uniforms = uniform_chunks(n_samples, batch_size, temperature, generator)
    weights = resolve_weights(model, weights, method)
    # Generation is inference: no dropout, whatever mode the caller's model is in (a
    # training run's samples come from the model being trained).
    caller_model, was_training = model, model.training
    model.eval()
    try:
        with torch.inference_mode():
            if method == "fast-numba":
                # Imported here, so that `import wavenet` does not load numba.
                from .fastpath import NumbaGenerator

                gen: CodeGenerator = NumbaGenerator(
                    model, batch_size, conditioning, weights=weights
                )
            else:
                if weights.endswith("-dot"):
                    raise InvalidArgumentError(
                        f"weights={weights!r} is the CPU kernel's format: method {method!r} "
                        "cannot run it (use a float32 model on the CPU, method 'fast')"
                    )
                if weights != "float32":  # the PyTorch paths run the reduced model itself
                    model = reduced_model(model, weights)
                    conditioning = _conditioning(model, batch_size, steps, global_cond, mel)
                gen = _generator_class(method)(model, batch_size, conditioning)
            return gen.sample(codes_in, n_samples, temperature, uniforms, progress, on_codes)
    finally:
        caller_model.train(was_training)


def _conditioning(
    model: WaveNet,
    batch_size: int,
    steps: int,
    global_cond: torch.Tensor | None,
    mel: torch.Tensor | None,
) -> StepConditioning | None:
    """The run's conditioning for `steps` steps, or None when neither the model nor the
    caller has any; `StepConditioning` and the model check it (`check_conditioning`)."""
    if global_cond is None and mel is None and not takes_conditioning(model.config):
        return None
    return StepConditioning(model, batch_size, steps, global_cond, mel)


def resolve_weights(model: WaveNet, weights: str, method: str = "fast") -> str:
    """The product format `generate` runs for `weights`: a named format (checked) as it
    is; "auto" is "int8-dot" where the compiled CPU kernel runs a float32 categorical
    model on a CPU with AVX-512 VNNI, else "float32". Measured (docs/decisions.md): about
    twice float32's samples/s at batch 1, and 0.0002-0.0007 more held-out bits/sample
    on speech, recorded speech and piano. A mixture head is left in float32: its means
    resolve 16-bit steps, which int8 inputs to its last product were not measured to keep."""
    if weights != "auto":
        return check_format(weights)
    if method == "fast":
        method = _pick_fast_method(model)
    if (
        method != "fast-numba"
        or model.embedding.weight.dtype != torch.float32
        or model.config.output != "categorical"
    ):
        return "float32"
    from .fastpath import dot_supported  # numba is loaded only where the kernel runs

    return "int8-dot" if dot_supported("int8-dot") else "float32"


def _pick_fast_method(model: WaveNet) -> str:
    parameter = model.embedding.weight
    if parameter.device.type == "cpu" and parameter.dtype in (torch.float32, torch.float64):
        return "fast-numba"
    return "fast-torch"


def _generator_class(method: str) -> type[CodeGenerator]:
    """The CodeGenerator subclass that runs `method` (any of METHODS but "fast")."""
    if method == "fast-numba":
        # Imported here, so that `import wavenet` does not load numba.
        from .fastpath import NumbaGenerator

        return NumbaGenerator
    return {"fast-torch": FastGenerator, "naive": NaiveGenerator}[method]


def _prime_codes(
    prime: torch.Tensor | None, batch_size: int, classes: int, device: torch.device
) -> torch.Tensor:
    """The codes fed before sampling, as (batch_size, T) long: the prime or one silent code."""
    if prime is None:
        # The mu-law code of 0.0, or the 16-bit sample 0.
        return torch.full((batch_size, 1), silence_code(classes), dtype=torch.long, device=device)
    if not isinstance(prime, torch.Tensor):
        raise InvalidTypeError(f"prime must be a LongTensor of codes, got {type(prime).__name__}")
    if prime.dtype == torch.bool or prime.is_floating_point() or prime.is_complex():
        raise InvalidTypeError(f"prime must hold integer codes, got dtype {prime.dtype}")
    if prime.dim() == 1:
        prime = prime.unsqueeze(0).expand(batch_size, -1)
    elif prime.dim() != 2 or prime.shape[0] != batch_size:
        raise InvalidArgumentError(
            f"prime must be (T,) or (batch_size={batch_size}, T), got shape {tuple(prime.shape)}"
        )
    if prime.shape[1] < 1:
        raise InvalidArgumentError(
            "prime must hold at least one code (leave it None to start from silence)"
        )
    low, high = int(prime.min()), int(prime.max())
    if low < 0 or high >= classes:
        raise InvalidArgumentError(
            f"prime codes must be in [0, {classes - 1}], found values in [{low}, {high}]"
        )
    return prime.to(device=device, dtype=torch.long).contiguous()


def _check_arguments(
    model: WaveNet,
    n_samples: int,
    batch_size: int,
    temperature: float,
    generator: torch.Generator | None,
    method: str,
    progress: Progress | None,
) -> None:
    if not isinstance(model, WaveNet):
        raise InvalidTypeError(f"model must be a wavenet.WaveNet, got {type(model).__name__}")
    for name, value in (("n_samples", n_samples), ("batch_size", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidTypeError(f"{name} must be an int >= 1, got {value!r}")
        if value < 1:
            raise InvalidArgumentError(f"{name} must be an int >= 1, got {value!r}")
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool):
        raise InvalidTypeError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if not temperature >= 0 or temperature == float("inf"):
        raise InvalidArgumentError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise InvalidTypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    if method not in METHODS:
        raise InvalidArgumentError(f"unknown method {method!r}; methods: {', '.join(METHODS)}")
    if progress is not None and not callable(progress):
        raise InvalidTypeError("progress must be callable as progress(done, total) or None")


def _check_memory(n_samples: int, batch_size: int) -> None:
    """InvalidArgumentError when the codes alone need more than this process may allocate
    (`hardware.memory_limit`: RAM, rlimits, cgroup)."""
    needed, limit = n_samples * batch_size * BYTES_PER_CODE, memory_limit()
    if limit is not None and needed > limit:
        raise InvalidArgumentError(
            f"{batch_size:,} x {n_samples:,} codes need about "
            f"{needed / 2**30:,.1f} GiB, more than the "
            f"{limit / 2**30:,.1f} GiB this process may use"
        )


def _check_finite_weights(model: WaveNet) -> None:
    """InvalidArgumentError when a weight or buffer holds NaN or inf (every code it would
    draw would be the last one, silently)."""
    bad = [
        name
        for name, value in itertools.chain(model.named_parameters(), model.named_buffers())
        if value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]
    if bad:
        raise InvalidArgumentError(
            f"the model holds NaN or infinite weights ({len(bad)} "
            f"tensor(s), the first {bad[0]}): it cannot generate; load a "
            f"checkpoint saved before training diverged"
        )


def _check_finite_mel(mel: object) -> None:
    """InvalidArgumentError for a float mel with NaN or infinite values (the model checks
    its type and shape)."""
    if isinstance(mel, torch.Tensor) and mel.is_floating_point():
        bad = int((~torch.isfinite(mel)).sum())
        if bad:
            raise InvalidArgumentError(
                f"the mel holds {bad} NaN or infinite value(s) out of {mel.numel()}"
            )

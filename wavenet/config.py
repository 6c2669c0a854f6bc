"""Configuration dataclasses, presets and `section.key=value` overrides.

This module does not import torch: a config can be read, checked and printed cheaply.

A full config has three sections, each a frozen dataclass::

    Config(model=ModelConfig(...), data=DataConfig(...), train=TrainConfig(...))

Dicts are turned into configs by `from_dict`, which rejects unknown keys and wrong types
with a `ConfigError` that names the allowed keys or the expected type.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError

# Limits that hold on any machine. Sample rates above 768 kHz do not exist in audio
# hardware; a seed must fit torch's 64-bit generator with room for seed + 1; 1 TiB is
# more memory than any one machine this package targets has (an estimate above it is a
# typo such as target_length=1e9, refused before anything is allocated).
MAX_SAMPLE_RATE = 768_000
MAX_SEED = 2**63 - 1
MAX_N_FFT = 1 << 16
MAX_BYTES = 1 << 40
# What the head can predict (ModelConfig.output), and the values of a 16-bit sample.
OUTPUTS = ("categorical", "mol")
PCM16_CLASSES = 1 << 16
# Mel feature definitions (MelConfig.format), see wavenet/data/features.py.
MEL_FORMATS = ("wavenet", "hifigan")


def causal_padding(kernel_size: int, dilation: int) -> int:
    """Past inputs a causal convolution of kernel k and dilation d reads besides the
    current one, (k - 1) * d: its left padding (`wavenet.nn.layers`), a layer's history
    in generation (its ring buffer), and summed over the layers, plus one, the receptive
    field (`ModelConfig.receptive_field`). The one place this formula is written."""
    return (kernel_size - 1) * dilation


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a WaveNet. Defaults equal the `default` preset.

    Dilations run 1, 2, 4 ... 2**(layers_per_stack - 1), repeated `stacks` times.
    `gate_channels` is split in halves: one for tanh (filter), one for sigmoid (gate).

    `output` is what the head predicts: "categorical", a softmax over the
    `quantization_channels` mu-law codes (the model reads an embedding of each code), or
    "mol", a discretized mixture of `mixtures` logistics over the 65,536 values of 16-bit
    audio (the model reads an embedding of each past sample's mu-law code, of
    `quantization_channels` codes, plus the sample's value through a 1x1). See
    wavenet/coding/logistic.py.
    """

    quantization_channels: int = 256
    residual_channels: int = 64
    gate_channels: int = 128
    skip_channels: int = 256
    kernel_size: int = 2
    layers_per_stack: int = 10
    stacks: int = 2
    # Global conditioning (speaker or class id): None = off.
    global_classes: int | None = None
    global_channels: int = 32
    # Local conditioning (a mel-spectrogram vocoder): mel bins, None = off; the frames are
    # upsampled by these factors in turn, whose product must equal mel.hop_length.
    local_channels: int | None = None
    upsample_scales: tuple[int, ...] = ()
    output: str = "categorical"
    mixtures: int = 10
    # Dropout on the head's hidden features while training (0: none); generation and
    # evaluation never drop.
    dropout: float = 0.0

    def __post_init__(self) -> None:
        _check_fields(self)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.output not in OUTPUTS:
            raise ConfigError(
                f"model.output must be one of {', '.join(OUTPUTS)}, got {self.output!r}"
            )
        if self.mixtures < 1:
            raise ConfigError(f"model.mixtures must be >= 1, got {self.mixtures}")
        if self.global_classes is not None and self.global_classes < 1:
            raise ConfigError(
                f"model.global_classes must be >= 1 or none, got {self.global_classes}"
            )
        if self.local_channels is not None and self.local_channels < 1:
            raise ConfigError(
                f"model.local_channels must be >= 1 or none, got {self.local_channels}"
            )
        if any(scale < 1 for scale in self.upsample_scales):
            raise ConfigError(
                f"model.upsample_scales must all be >= 1, got {list(self.upsample_scales)}"
            )
        for name in (
            "quantization_channels",
            "residual_channels",
            "gate_channels",
            "skip_channels",
            "kernel_size",
            "layers_per_stack",
            "stacks",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.quantization_channels < 2:
            raise ConfigError("model.quantization_channels must be >= 2")
        if self.gate_channels % 2:
            raise ConfigError(
                f"model.gate_channels must be even (split into tanh and sigmoid halves), "
                f"got {self.gate_channels}"
            )
        if self.global_channels < 1:
            raise ConfigError(f"model.global_channels must be >= 1, got {self.global_channels}")
        weights = 4 * model_parameters(self)
        if weights > MAX_BYTES:
            raise ConfigError(
                f"the model's {model_parameters(self):,} parameters need "
                f"{_gib(weights)} as float32, more than the {_gib(MAX_BYTES)} "
                f"this package allows; use fewer or smaller layers"
            )

    @property
    def dilations(self) -> tuple[int, ...]:
        return tuple(2**i for i in range(self.layers_per_stack)) * self.stacks

    @property
    def receptive_field(self) -> int:
        """Number of input samples that the output at one position depends on."""
        return 1 + sum(causal_padding(self.kernel_size, d) for d in self.dilations)

    @property
    def upsample_factor(self) -> int:
        return math.prod(self.upsample_scales)

    @property
    def classes(self) -> int:
        """How many values a code takes: quantization_channels (mu-law codes), or 65,536
        for "mol" (16-bit samples, see wavenet/coding/pcm.py)."""
        return PCM16_CLASSES if self.output == "mol" else self.quantization_channels

    @property
    def coding(self) -> str:
        """How audio becomes codes: "mu-law" (categorical) or "pcm16" (mol)."""
        return "pcm16" if self.output == "mol" else "mu-law"

    @property
    def output_channels(self) -> int:
        """Channels the head emits per position: Q logits, or 3 x mixtures for "mol"
        (weights, means and log-scales)."""
        return 3 * self.mixtures if self.output == "mol" else self.quantization_channels


@dataclass(frozen=True)
class DataConfig:
    """How audio becomes training items."""

    sample_rate: int = 16000
    # Samples per training item on which the loss is taken.
    target_length: int = 4000
    # True: each item also carries receptive_field - 1 samples of unscored context, so
    # every scored position sees a full receptive field of audio (costs that much more
    # compute per item). False: every position computed is scored, the first ones
    # seeing zero padding as at the start of a file. See wavenet/data/crops.py.
    full_context: bool = False
    # Fraction of files held out for validation (by file, never by crop).
    val_fraction: float = 0.1
    trim_silence: bool = False
    silence_threshold_db: float = -50.0
    # A training file's trailing silence (below silence_threshold_db) is cut to this many
    # ms after its last loud sample (None: kept whole). That pause's end was never
    # recorded: trained on, it teaches the model that a pause longer than the receptive
    # field never ends, and generation falls silent for good (docs/decisions.md). Only
    # training files are cut; validation and `wavenet eval` score files whole.
    tail_silence_ms: float | None = 50.0
    # A new run adapts its recipe to its training audio's duration (augmentation under
    # 10 minutes, a smaller model under 2: wavenet/train/recipe.py) and logs what it chose.
    adapt_to_duration: bool = False
    # Training items changed before coding (wavenet/data/augment.py): speed by up to this
    # fraction either way (resampled: pitch and tempo together), gain by up to this many
    # dB either way, polarity flipped half the time. 0 / false: off.
    augment_speed: float = 0.0
    augment_gain_db: float = 0.0
    augment_polarity: bool = False

    def __post_init__(self) -> None:
        _check_fields(self)
        if not 1 <= self.sample_rate <= MAX_SAMPLE_RATE:
            raise ConfigError(
                f"data.sample_rate must be in [1, {MAX_SAMPLE_RATE}] Hz, got {self.sample_rate}"
            )
        if self.target_length < 1:
            raise ConfigError(f"data.target_length must be >= 1, got {self.target_length}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.tail_silence_ms is not None and not (
            math.isfinite(self.tail_silence_ms) and self.tail_silence_ms >= 0
        ):
            raise ConfigError(
                f"data.tail_silence_ms must be >= 0 or none, got {self.tail_silence_ms}"
            )
        if not 0.0 <= self.augment_speed <= 0.5:
            raise ConfigError(f"data.augment_speed must be in [0, 0.5], got {self.augment_speed}")
        if not 0.0 <= self.augment_gain_db <= 40.0:
            raise ConfigError(
                f"data.augment_gain_db must be in [0, 40] dB, got {self.augment_gain_db}"
            )
        if self.silence_threshold_db > 0:
            raise ConfigError(
                f"data.silence_threshold_db must be <= 0 (dB below full scale), "
                f"got {self.silence_threshold_db}"
            )


# A budgeted run without train.early_stop_patience stops after this many validations in a
# row without a new best: a small folder memorized early (best at step 500, worse at every
# validation after) is not trained on for the rest of the budget.
EARLY_STOP_PATIENCE = 4
# A run whose train.val_every is none validates about this many times, at least every
# MIN_VAL_EVERY steps apart.
VALIDATIONS_PER_RUN = 40
MIN_VAL_EVERY = 10


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping."""

    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 200
    # Learning rate decays by cosine from lr to lr * min_lr_ratio over the run.
    min_lr_ratio: float = 0.1
    grad_clip: float | None = 1.0
    ema_decay: float | None = None
    seed: int = 0
    checkpoint_every: int = 500
    # Validate every this many steps; None: scaled to the run, about VALIDATIONS_PER_RUN
    # validations over its total steps (wavenet.train.schedule.validation_interval), so a
    # small folder memorized in its first few hundred steps is seen there.
    val_every: int | None = None
    val_batches: int = 8
    log_every: int = 10
    grad_accum: int = 1
    # Audio samples while training (RUN/samples/step-NNNNNNN.wav + .png, wavenet.train.samples):
    # every this many steps, 0 = never; each is sample_seconds long (a vocoder's: that
    # much of a held-out clip resynthesized from its mel).
    sample_every: int = 500
    sample_seconds: float = 2.0
    # bf16 autocast for the matrix products: None chooses by hardware, on where it was
    # measured to pay (wavenet.util.hardware.bf16_pays: CUDA with bf16, CPUs with bf16
    # matrix instructions); true or false forces it.
    bf16: bool | None = None
    compile: bool = False
    # Where a fine-tuned run's weights came from (`train --init-from`): the source's path
    # and sha256 (a checkpoint file's bytes, or an export's weights file's); None for a run
    # trained from scratch. A record, not a setting: `wavenet info` shows it.
    init_from: str | None = None
    init_from_sha256: str | None = None
    # Early stopping: the run ends (a checkpoint saved, best.pt kept) once this many
    # validations in a row have not improved on the best. None: off, except in a budgeted
    # run (--minutes), which uses EARLY_STOP_PATIENCE; 0: off everywhere.
    early_stop_patience: int | None = None

    def __post_init__(self) -> None:
        _check_fields(self)
        if self.early_stop_patience is not None and self.early_stop_patience < 0:
            raise ConfigError(
                f"train.early_stop_patience must be >= 0 or none, got {self.early_stop_patience}"
            )
        for name in (
            "batch_size",
            "checkpoint_every",
            "val_batches",
            "log_every",
            "grad_accum",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.val_every is not None and self.val_every < 1:
            raise ConfigError(f"train.val_every must be >= 1 or none, got {self.val_every}")
        if self.sample_every < 0:
            raise ConfigError(
                f"train.sample_every must be >= 0 (0 = no samples), got {self.sample_every}"
            )
        if not (math.isfinite(self.sample_seconds) and 0 < self.sample_seconds <= 600):
            raise ConfigError(
                f"train.sample_seconds must be in (0, 600], got {self.sample_seconds}"
            )
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"train.lr must be a finite number > 0, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"train.weight_decay must be >= 0, got {self.weight_decay}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"train.betas must be two numbers in [0, 1), got {list(self.betas)}")
        if self.warmup_steps < 0:
            raise ConfigError(f"train.warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"train.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.grad_clip is not None and not (
            math.isfinite(self.grad_clip) and self.grad_clip > 0
        ):
            raise ConfigError(f"train.grad_clip must be > 0 or none, got {self.grad_clip}")
        if not 0 <= self.seed < MAX_SEED:
            raise ConfigError(f"train.seed must be in [0, 2**63 - 1), got {self.seed}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ConfigError(f"train.ema_decay must be in (0, 1) or absent, got {self.ema_decay}")


@dataclass(frozen=True)
class MelConfig:
    """Log-mel features for local conditioning (used when model.local_channels is set).

    Frame i covers samples [i * hop_length, (i + 1) * hop_length).
    format: "wavenet" (this package's own: log-mel of the mu-law audio, HTK mel scale,
    scaled to [0, ~1]) or "hifigan" (the mel of the HiFi-GAN family and the TTS models that
    feed it: from the float audio, Slaney mel filterbank, natural log of the magnitude
    clamped at 1e-5); wavenet/data/features.py holds both definitions.
    """

    n_mels: int = 80
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    f_min: float = 0.0
    f_max: float | None = None
    format: str = "wavenet"

    def __post_init__(self) -> None:
        _check_fields(self)
        if self.format not in MEL_FORMATS:
            raise ConfigError(
                f"mel.format must be one of {', '.join(MEL_FORMATS)}, got {self.format!r}"
            )
        for name in ("n_mels", "n_fft", "hop_length", "win_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"mel.{name} must be >= 1, got {getattr(self, name)}")
        if self.win_length > self.n_fft:
            raise ConfigError(
                f"mel.win_length ({self.win_length}) must be <= mel.n_fft ({self.n_fft})"
            )
        if self.hop_length > self.n_fft:
            raise ConfigError(
                f"mel.hop_length ({self.hop_length}) must be <= mel.n_fft ({self.n_fft})"
            )
        if self.n_fft > MAX_N_FFT:
            raise ConfigError(f"mel.n_fft must be <= {MAX_N_FFT}, got {self.n_fft}")
        if self.f_min < 0:
            raise ConfigError(f"mel.f_min must be >= 0, got {self.f_min}")
        if self.f_max is not None and self.f_max <= self.f_min:
            raise ConfigError(f"mel.f_max ({self.f_max}) must be above mel.f_min ({self.f_min})")


def _check_fields(section: object) -> None:
    """Check every field of a config dataclass against its annotation (ConfigError naming
    the field, the expected type and the value found), storing the coerced value (an int
    where a float is expected becomes a float, a list a tuple): `ModelConfig(
    residual_channels=16.5)` is refused here, not deep inside torch."""
    cls: type = type(section)
    prefix = _SECTIONS.get(cls.__name__, "")
    for name, annotation in _field_types(cls).items():
        value = getattr(section, name)
        checked = _check_value(value, annotation, f"{prefix}{name}")
        if checked is not value:
            object.__setattr__(section, name, checked)


_SECTIONS = {
    "ModelConfig": "model.",
    "DataConfig": "data.",
    "TrainConfig": "train.",
    "MelConfig": "mel.",
}


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _gib(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:,.1f} GiB"


def model_parameters(m: ModelConfig) -> int:
    """Exact number of parameters of `WaveNet(m)`, from the config alone (no torch).

    embedding Q x R (for "mol" plus the value's 1x1, 2R); per layer: dilated conv
    R x G x K + G, residual 1x1 (G/2) x R + R (not in the last layer), skip 1x1
    (G/2) x S + S, conditioning projections; head S x S + S + S x O + O, O the output
    channels.
    """
    r, g, s, q = m.residual_channels, m.gate_channels, m.skip_channels, m.output_channels
    layers = m.stacks * m.layers_per_stack
    count = (
        m.quantization_channels * r
        + (2 * r if m.output == "mol" else 0)
        + layers * (r * g * m.kernel_size + g + (g // 2) * s + s)
    )
    count += (layers - 1) * ((g // 2) * r + r) + s * s + s + s * q + q
    if m.global_classes is not None:
        count += m.global_classes * m.global_channels + layers * (m.global_channels * g + g)
    if m.local_channels is not None:
        count += sum(m.local_channels * (2 * scale + 1) for scale in m.upsample_scales)
        count += layers * (m.local_channels * g + g)
    return count


@dataclass(frozen=True)
class MemoryEstimate:
    """A lower bound on what one training process holds, in bytes (float32)."""

    parameters: int
    parameter_bytes: int  # weights, gradients, two AdamW moments (and an EMA copy)
    activation_bytes: int  # what the forward pass keeps for backward, one micro-batch

    @property
    def total_bytes(self) -> int:
        return self.parameter_bytes + self.activation_bytes

    def __str__(self) -> str:
        return (
            f"{_gib(self.total_bytes)} ({self.parameters:,} parameters: "
            f"{_gib(self.parameter_bytes)}; activations: {_gib(self.activation_bytes)})"
        )


def training_memory(config: Config, *, bf16: bool = False) -> MemoryEstimate:
    """Estimate the memory of training `config` (pure arithmetic, nothing allocated).

    Activations: batch_size x (context + target_length) input samples (context =
    receptive_field - 1 with data.full_context, else 0: the crops training reads), each
    keeping per layer its input (R), the gate pre-activation and tanh/sigmoid halves
    (2G), the gated output (G/2), residual and skip outputs (R + S); plus the embedding
    (R) and the head (2S + 2Q, Q the output channels). Activations in float32, or in 2
    bytes with `bf16` (autocast); weights, gradients and optimizer moments in float32.
    A lower bound (no workspace, no framework overhead).
    """
    m, tc = config.model, config.train
    parameters = model_parameters(m)
    copies = 4 + (1 if tc.ema_decay is not None else 0)
    layers = m.stacks * m.layers_per_stack
    context = m.receptive_field - 1 if config.data.full_context else 0
    samples = tc.batch_size * (context + config.data.target_length)
    r, g, s, q = m.residual_channels, m.gate_channels, m.skip_channels, m.output_channels
    per_sample = layers * (2 * r + 2 * g + g // 2 + s) + r + 2 * s + 2 * q
    activation = 2 if bf16 else 4
    return MemoryEstimate(parameters, 4 * copies * parameters, activation * samples * per_sample)


def check_fits(
    config: Config,
    available_bytes: int | None,
    *,
    bf16: bool = False,
    where: str = "this machine's",
) -> None:
    """ConfigError when training `config` (activations in bf16 or float32) needs more than
    `available_bytes` (None: skip); `where` names the memory in the message ("cuda:0's
    free")."""
    estimate = training_memory(config, bf16=bf16)
    if available_bytes is not None and estimate.total_bytes > available_bytes:
        raise ConfigError(
            f"training needs about {estimate}, more than {where} "
            f"{_gib(available_bytes)} of memory: lower train.batch_size, "
            f"data.target_length or the model size"
        )


def physical_memory() -> int | None:
    """This machine's RAM in bytes, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    mel: MelConfig = field(default_factory=MelConfig)

    def __post_init__(self) -> None:
        _check_fields(self)
        estimate = training_memory(self)
        if estimate.total_bytes > MAX_BYTES:
            raise ConfigError(
                f"training needs about {estimate}; more than the "
                f"{_gib(MAX_BYTES)} this package allows: lower "
                f"train.batch_size, data.target_length or the model size"
            )
        m = self.model
        if m.local_channels is None:
            return
        if self.data.augment_speed > 0 or self.data.augment_gain_db > 0:
            raise ConfigError(
                "data.augment_speed and data.augment_gain_db would change the audio under "
                "its mel frames: a vocoder (model.local_channels) allows only "
                "data.augment_polarity"
            )
        if m.local_channels != self.mel.n_mels:
            raise ConfigError(
                f"model.local_channels ({m.local_channels}) must equal mel.n_mels "
                f"({self.mel.n_mels})"
            )
        if m.upsample_factor != self.mel.hop_length:
            raise ConfigError(
                f"the product of model.upsample_scales {list(m.upsample_scales)} is "
                f"{m.upsample_factor}; it must equal mel.hop_length ({self.mel.hop_length})"
            )
        if self.mel.f_max is not None and self.mel.f_max > self.data.sample_rate / 2:
            raise ConfigError(
                f"mel.f_max ({self.mel.f_max}) is above the Nyquist frequency "
                f"({self.data.sample_rate / 2:g} Hz)"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


T = TypeVar("T")


def _check_value(value: Any, annotation: Any, where: str) -> Any:
    """Return `value` coerced to `annotation` (int -> float, list -> tuple) or raise."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_value(value, arg, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(
            errors[0]
            if len(errors) == 1
            else f"{where}: expected {_type_name(annotation)}, got {value!r}"
        )
    if origin is tuple:
        args = _tuple_args(annotation, value)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{where}: expected {_type_name(annotation)}, got {value!r}")
        return tuple(
            _check_value(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args))
        )
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif annotation is str:
        if isinstance(value, str):
            return value
    elif isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if isinstance(value, dict):
            return from_dict(annotation, value, where)
        if isinstance(value, annotation):
            return value
    else:  # pragma: no cover - a field type this module does not know yet
        raise TypeError(f"unsupported config field type {annotation!r}")
    raise ConfigError(f"{where}: expected {_type_name(annotation)}, got {value!r}")


def _tuple_args(annotation: Any, value: Any) -> tuple[Any, ...]:
    """Element types of a tuple annotation; `tuple[int, ...]` repeats to the value's length."""
    args = typing.get_args(annotation)
    if len(args) == 2 and args[1] is Ellipsis:
        return (args[0],) * (len(value) if isinstance(value, (list, tuple)) else 0)
    return args


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(
            "none" if a is type(None) else _type_name(a) for a in typing.get_args(annotation)
        )
    if origin is tuple:
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"[{_type_name(args[0])}, ...]"
        return "[" + ", ".join(_type_name(a) for a in args) + "]"
    if dataclasses.is_dataclass(annotation):
        return "a table"
    return getattr(annotation, "__name__", str(annotation))


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from a dict; missing keys take defaults.

    Raises ConfigError for an unknown key (listing the allowed ones) or a wrong type.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(names))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown config key {prefix}{unknown[0]}; allowed keys"
            f"{' in ' + where if where else ''}: {', '.join(names)}"
        )
    kwargs = {
        key: _check_value(value, hints[key], f"{where}.{key}" if where else key)
        for key, value in data.items()
    }
    return cls(**kwargs)


def _parse_override_value(text: str, annotation: Any, where: str) -> Any:
    """Turn the text after `=` into a value of the field's type."""
    text = text.strip()
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if text.lower() in ("none", "null", ""):
            return None
        inner = [a for a in args if a is not type(None)]
        return _parse_override_value(text, inner[0], where)
    if origin is tuple:
        parts = [p for p in text.strip("()[]").split(",") if p.strip()]
        args = _tuple_args(annotation, parts)
        if len(parts) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} comma-separated values, got {text!r}")
        return [_parse_override_value(p, a, where) for p, a in zip(parts, args)]
    if annotation is bool:
        lowered = text.lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        raise ConfigError(f"{where}: expected bool (true/false), got {text!r}")
    if annotation is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{where}: expected int, got {text!r}") from None
    if annotation is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{where}: expected float, got {text!r}") from None
    return text


def apply_overrides(data: dict[str, Any], overrides: typing.Iterable[str]) -> dict[str, Any]:
    """Apply `section.key=value` strings to a config dict, checking keys and types.

    Returns a new dict; `data` is not changed.
    """
    for section, values in data.items():
        if not isinstance(values, dict):
            raise ConfigError(f"config section {section!r} must be a table, got {values!r}"[:200])
    result = {section: dict(values) for section, values in data.items()}
    sections = {f.name: f.type for f in dataclasses.fields(Config)}
    section_types = typing.get_type_hints(Config)
    for item in overrides:
        key, sep, text = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        if section not in sections:
            raise ConfigError(
                f"unknown config section {section!r} in {item!r}; "
                f"allowed sections: {', '.join(sections)}"
            )
        section_cls = section_types[section]
        hints = typing.get_type_hints(section_cls)
        if name not in hints:
            raise ConfigError(
                f"unknown config key {section}.{name}; allowed keys in {section}: "
                f"{', '.join(f.name for f in dataclasses.fields(section_cls))}"
            )
        value = _parse_override_value(text, hints[name], f"{section}.{name}")
        result.setdefault(section, {})[name] = value
    return result


def config_from_dict(data: dict[str, Any]) -> Config:
    return from_dict(Config, data)


def preset_names() -> list[str]:
    """Names of the presets shipped with the package (`tiny`, `default`, ...)."""
    folder = resources.files("wavenet.configs")
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def read_config_dict(name_or_path: str | Path) -> dict[str, Any]:
    """Read a preset by name, or a `.toml` / `.json` file by path, into a plain dict.

    A preset's name wins over a file or folder of that name in the working directory
    (a run folder called `demo` must not hide the `demo` preset).
    """
    text_name = str(name_or_path)
    if not text_name:  # Path("") is the working directory, which no config is
        raise ConfigError(
            f"the config name is empty: give a preset ({', '.join(preset_names())}) "
            f"or a path to a .toml or .json file"
        )
    path = Path(text_name)
    is_preset_name = text_name in preset_names() and path.name == text_name
    if path.suffix.lower() in (".toml", ".json") or (path.exists() and not is_preset_name):
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            raw = path.read_text(encoding="utf-8")
            data = json.loads(raw) if path.suffix.lower() == ".json" else tomllib.loads(raw)
        except UnicodeDecodeError as error:
            raise ConfigError(
                f"config file {path} is not UTF-8 text (byte {error.start})"
            ) from None
        except (json.JSONDecodeError, tomllib.TOMLDecodeError, RecursionError) as error:
            first = (str(error).splitlines() or ["too deeply nested"])[0]
            raise ConfigError(f"cannot parse config file {path}: {first}") from None
        except OSError as error:
            raise ConfigError(
                f"cannot read config file {path}: {error.strerror or error}"
            ) from None
        if not isinstance(data, dict):
            raise ConfigError(
                f"config file {path} must hold a table of sections, got a {type(data).__name__}"
            )
        return data
    names = preset_names()
    if text_name not in names:
        raise ConfigError(
            f"unknown preset {text_name!r}; presets: {', '.join(names)} "
            f"(or give a path to a .toml or .json file)"
        )
    raw = (resources.files("wavenet.configs") / f"{text_name}.toml").read_text(encoding="utf-8")
    return tomllib.loads(raw)


def load_config(
    name_or_path: str | Path = "default", overrides: typing.Iterable[str] = ()
) -> Config:
    """Load a preset or file, apply `section.key=value` overrides, and check every field.

    Whether training it fits in memory is not checked here (a config is read by commands
    that never train, on machines that never will): training checks it when it starts,
    against the memory of the device it trains on (`wavenet.util.hardware.check_training_memory`).
    """
    return config_from_dict(apply_overrides(read_config_dict(name_or_path), overrides))

"""Configuration dataclasses, presets and `section.key=value` overrides.

This module does not import torch: a config can be read, checked and printed cheaply.

A full config has three sections, each a frozen dataclass::

    Config(model=ModelConfig(...), data=DataConfig(...), train=TrainConfig(...))

Dicts are turned into configs by `from_dict`, which rejects unknown keys and wrong types
with a `ConfigError` that names the allowed keys or the expected type.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from .errors import WavenetError


class ConfigError(WavenetError, ValueError):
    """A config file, preset name or override is wrong; the message says how."""


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a WaveNet. Defaults equal the `default` preset.

    Dilations run 1, 2, 4 ... 2**(layers_per_stack - 1), repeated `stacks` times.
    `gate_channels` is split in halves: one for tanh (filter), one for sigmoid (gate).
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

    def __post_init__(self) -> None:
        if self.global_classes is not None and self.global_classes < 1:
            raise ConfigError(f"model.global_classes must be >= 1 or none, got {self.global_classes}")
        if self.local_channels is not None and self.local_channels < 1:
            raise ConfigError(f"model.local_channels must be >= 1 or none, got {self.local_channels}")
        if any(scale < 1 for scale in self.upsample_scales):
            raise ConfigError(f"model.upsample_scales must all be >= 1, got {list(self.upsample_scales)}")
        for name in ("quantization_channels", "residual_channels", "gate_channels",
                     "skip_channels", "kernel_size", "layers_per_stack", "stacks"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.quantization_channels < 2:
            raise ConfigError("model.quantization_channels must be >= 2")
        if self.gate_channels % 2:
            raise ConfigError(
                f"model.gate_channels must be even (split into tanh and sigmoid halves), "
                f"got {self.gate_channels}")

    @property
    def dilations(self) -> tuple[int, ...]:
        return tuple(2**i for i in range(self.layers_per_stack)) * self.stacks

    @property
    def receptive_field(self) -> int:
        """Number of input samples that the output at one position depends on."""
        return 1 + (self.kernel_size - 1) * sum(self.dilations)

    @property
    def upsample_factor(self) -> int:
        return math.prod(self.upsample_scales)


@dataclass(frozen=True)
class DataConfig:
    """How audio becomes training items."""

    sample_rate: int = 16000
    # Samples per training item on which the loss is taken; each item also carries
    # receptive_field - 1 samples of context before them.
    target_length: int = 4000
    # Fraction of files held out for validation (by file, never by crop).
    val_fraction: float = 0.1
    trim_silence: bool = False
    silence_threshold_db: float = -50.0

    def __post_init__(self) -> None:
        if self.sample_rate < 1:
            raise ConfigError(f"data.sample_rate must be >= 1, got {self.sample_rate}")
        if self.target_length < 1:
            raise ConfigError(f"data.target_length must be >= 1, got {self.target_length}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction must be in [0, 1), got {self.val_fraction}")


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
    val_every: int = 500
    val_batches: int = 8
    log_every: int = 10
    grad_accum: int = 1
    bf16: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        for name in ("batch_size", "checkpoint_every", "val_every", "val_batches",
                     "log_every", "grad_accum"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"train.lr must be > 0, got {self.lr}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ConfigError(f"train.ema_decay must be in (0, 1) or absent, got {self.ema_decay}")


@dataclass(frozen=True)
class MelConfig:
    """Log-mel features for local conditioning (used when model.local_channels is set).

    Frame i covers samples [i * hop_length, (i + 1) * hop_length).
    """

    n_mels: int = 80
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    f_min: float = 0.0
    f_max: float | None = None

    def __post_init__(self) -> None:
        for name in ("n_mels", "n_fft", "hop_length", "win_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"mel.{name} must be >= 1, got {getattr(self, name)}")
        if self.win_length > self.n_fft:
            raise ConfigError(f"mel.win_length ({self.win_length}) must be <= mel.n_fft ({self.n_fft})")
        if self.hop_length > self.n_fft:
            raise ConfigError(f"mel.hop_length ({self.hop_length}) must be <= mel.n_fft ({self.n_fft})")


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    mel: MelConfig = field(default_factory=MelConfig)

    def __post_init__(self) -> None:
        m = self.model
        if m.local_channels is None:
            return
        if m.local_channels != self.mel.n_mels:
            raise ConfigError(f"model.local_channels ({m.local_channels}) must equal mel.n_mels "
                              f"({self.mel.n_mels})")
        if m.upsample_factor != self.mel.hop_length:
            raise ConfigError(f"the product of model.upsample_scales {list(m.upsample_scales)} is "
                              f"{m.upsample_factor}; it must equal mel.hop_length ({self.mel.hop_length})")
        if self.mel.f_max is not None and self.mel.f_max > self.data.sample_rate / 2:
            raise ConfigError(f"mel.f_max ({self.mel.f_max}) is above the Nyquist frequency "
                              f"({self.data.sample_rate / 2:g} Hz)")

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
        raise ConfigError(errors[0] if len(errors) == 1 else
                          f"{where}: expected {_type_name(annotation)}, got {value!r}")
    if origin is tuple:
        args = _tuple_args(annotation, value)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{where}: expected {_type_name(annotation)}, got {value!r}")
        return tuple(_check_value(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
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
    elif dataclasses.is_dataclass(annotation):
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
        return " or ".join("none" if a is type(None) else _type_name(a)
                           for a in typing.get_args(annotation))
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
            f"{' in ' + where if where else ''}: {', '.join(names)}")
    kwargs = {key: _check_value(value, hints[key], f"{where}.{key}" if where else key)
              for key, value in data.items()}
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
    result = {section: dict(values) for section, values in data.items()}
    sections = {f.name: f.type for f in dataclasses.fields(Config)}
    section_types = typing.get_type_hints(Config)
    for item in overrides:
        key, sep, text = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        if section not in sections:
            raise ConfigError(f"unknown config section {section!r} in {item!r}; "
                              f"allowed sections: {', '.join(sections)}")
        section_cls = section_types[section]
        hints = typing.get_type_hints(section_cls)
        if name not in hints:
            raise ConfigError(f"unknown config key {section}.{name}; allowed keys in {section}: "
                              f"{', '.join(f.name for f in dataclasses.fields(section_cls))}")
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
    """Read a preset by name, or a `.toml` / `.json` file by path, into a plain dict."""
    text_name = str(name_or_path)
    path = Path(text_name)
    if path.suffix.lower() in (".toml", ".json") or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        raw = path.read_text(encoding="utf-8")
        try:
            return json.loads(raw) if path.suffix.lower() == ".json" else tomllib.loads(raw)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"cannot parse config file {path}: {error}") from None
    names = preset_names()
    if text_name not in names:
        raise ConfigError(f"unknown preset {text_name!r}; presets: {', '.join(names)} "
                          f"(or give a path to a .toml or .json file)")
    raw = (resources.files("wavenet.configs") / f"{text_name}.toml").read_text(encoding="utf-8")
    return tomllib.loads(raw)


def load_config(name_or_path: str | Path = "default", overrides: typing.Iterable[str] = ()) -> Config:
    """Load a preset or file, apply `section.key=value` overrides, and check everything."""
    return config_from_dict(apply_overrides(read_config_dict(name_or_path), overrides))

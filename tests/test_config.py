"""Configs: presets load and build, overrides are type-checked, unknown keys are refused."""

from __future__ import annotations

import json

import pytest

import wavenet
from wavenet import ConfigError, ModelConfig, load_config
from wavenet.config import config_from_dict, from_dict


def test_presets_include_tiny_and_default() -> None:
    assert {"tiny", "default"} <= set(wavenet.preset_names())


@pytest.mark.parametrize("name", wavenet.preset_names())
def test_every_preset_loads_and_builds(name: str) -> None:
    config = load_config(name)
    model = wavenet.WaveNet(config.model)
    assert model.receptive_field == config.model.receptive_field
    assert wavenet.parameter_count(model) > 0


def test_default_preset_equals_model_defaults() -> None:
    config = load_config("default")
    assert config.model == ModelConfig()
    assert config.data.sample_rate == 16000
    assert (config.model.stacks, config.model.layers_per_stack) == (2, 10)


def test_unknown_key_lists_allowed_keys() -> None:
    with pytest.raises(ConfigError) as error:
        from_dict(ModelConfig, {"residual_chanels": 32})
    message = str(error.value)
    assert "residual_chanels" in message
    assert "residual_channels" in message and "skip_channels" in message


def test_unknown_section_is_refused() -> None:
    with pytest.raises(ConfigError, match="allowed keys: model, data, train"):
        config_from_dict({"modle": {}})


def test_wrong_type_is_refused() -> None:
    with pytest.raises(ConfigError, match="model.kernel_size: expected int"):
        config_from_dict({"model": {"kernel_size": "two"}})
    with pytest.raises(ConfigError, match="expected int"):
        config_from_dict({"model": {"kernel_size": 2.5}})


def test_odd_gate_channels_refused() -> None:
    with pytest.raises(ConfigError, match="even"):
        ModelConfig(gate_channels=33)


def test_overrides_are_typed() -> None:
    config = load_config(
        "tiny",
        [
            "model.residual_channels=24",
            "train.lr=3e-4",
            "train.ema_decay=0.999",
            "data.trim_silence=true",
        ],
    )
    assert config.model.residual_channels == 24
    assert config.train.lr == pytest.approx(3e-4)
    assert config.train.ema_decay == pytest.approx(0.999)
    assert config.data.trim_silence is True
    assert load_config("tiny", ["train.grad_clip=none"]).train.grad_clip is None


@pytest.mark.parametrize(
    "override,match",
    [
        ("model.residual_chanels=3", "allowed keys in model: quantization_channels"),
        ("model.residual_channels=abc", "model.residual_channels: expected int"),
        ("train.bf16=maybe", "expected bool"),
        ("nosection=3", "section.key=value"),
        ("optim.lr=3", "allowed sections"),
    ],
)
def test_bad_overrides_fail_clearly(override: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config("tiny", [override])


def test_config_from_file(tmp_path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"model": {"layers_per_stack": 3, "stacks": 1}}))
    config = load_config(path)
    assert config.model.receptive_field == 1 + 7
    toml_path = tmp_path / "mine.toml"
    toml_path.write_text("[model]\nresidual_channels = 8\n")
    assert load_config(toml_path).model.residual_channels == 8


def test_preset_name_wins_over_a_folder_of_that_name(tmp_path, monkeypatch) -> None:
    (tmp_path / "demo").mkdir()  # e.g. a run folder named after the preset
    monkeypatch.chdir(tmp_path)
    assert load_config("demo").data.sample_rate == 4000
    (tmp_path / "mine").mkdir()
    with pytest.raises(ConfigError, match="config file not found"):
        load_config("mine")


def test_unknown_preset_names_the_presets() -> None:
    with pytest.raises(ConfigError, match="tiny"):
        load_config("huge")


def test_round_trip_through_dict() -> None:
    config = load_config("tiny")
    assert config_from_dict(json.loads(json.dumps(config.to_dict()))) == config

"""Shared fixtures: tiny models and deterministic seeds."""

from __future__ import annotations

import pytest
import torch

import wavenet


@pytest.fixture
def tiny_config() -> wavenet.Config:
    return wavenet.load_config("tiny")


@pytest.fixture
def tiny_model(tiny_config: wavenet.Config) -> wavenet.WaveNet:
    torch.manual_seed(0)
    return wavenet.WaveNet(tiny_config.model).eval()

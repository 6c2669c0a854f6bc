"""Shared fixtures: tiny models and deterministic seeds."""

from __future__ import annotations

import importlib.metadata

import pytest
import torch

import wavenet


def pytest_report_header() -> str:
    """The versions the suite runs against, at the top of every run's output."""
    names = ["torch", "torchaudio", "soxr", "soundfile", "numpy", "numba", "click"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return "dependencies: " + ", ".join(found)


@pytest.fixture
def tiny_config() -> wavenet.Config:
    return wavenet.load_config("tiny")


@pytest.fixture
def tiny_model(tiny_config: wavenet.Config) -> wavenet.WaveNet:
    torch.manual_seed(0)
    return wavenet.WaveNet(tiny_config.model).eval()

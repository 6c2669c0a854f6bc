"""Shared fixtures: tiny models and deterministic seeds."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator

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


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and on a busy machine threads that wait on
    each other make tests many times slower: torch on one thread for the test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

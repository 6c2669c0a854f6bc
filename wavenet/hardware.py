"""What the machine offers that changes how the package should run on it.

`bf16_pays(device)`: whether bf16 autocast speeds training up there. Measured with
benchmarks/train.py (docs/decisions.md has the figures): on a CPU whose cores have bf16
matrix instructions (x86 `avx512_bf16`; `amx_bf16` tile units are faster still) the fused
step runs about twice as fast in bf16, with the same held-out bits (a categorical model:
2.15x the float32 reference's step; a mol model's body: 1.85x its float32 step, its value
input, last projection and loss staying float32). CPUs without them are
left in float32: their bf16 products take slower conversion paths (not measured here).
On CUDA devices that support bf16 it is the usual mixed-precision choice (not measured
here either: no GPU figures exist yet).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where that does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def bf16_pays(device: torch.device) -> bool:
    """True where bf16 autocast makes training faster (see the module docstring)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return any(flag in cpu_flags() for flag in BF16_CPU_FLAGS)
    return False


def use_bf16(setting: bool | None, device: torch.device) -> bool:
    """A config's `train.bf16` (None: automatic) resolved for `device`."""
    return bf16_pays(device) if setting is None else setting

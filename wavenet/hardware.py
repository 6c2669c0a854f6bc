"""What the machine offers that changes how the package should run on it.

`bf16_pays(device)`: whether bf16 autocast speeds training up there. Measured with
benchmarks/train.py (docs/decisions.md has the figures): on a CPU whose cores have bf16
matrix instructions (x86 `avx512_bf16`; `amx_bf16` tile units are faster still) the fused
step runs about twice as fast in bf16, with the same held-out bits (a categorical model:
1.89x its float32 step, 2.29x the plain float32 reference's; a mol model's body: 1.72x
its float32 step, its value input, last projection and loss staying float32). CPUs
without them are left in float32: their bf16 products take slower conversion paths (not measured here).
On CUDA devices that support bf16 it is the usual mixed-precision choice (not measured
here either: no GPU figures exist yet).

`keep_freed_memory()`: the CLI calls it first thing. A training step allocates and frees
hundreds of MB of tensors; glibc's malloc serves blocks over its mmap threshold (at most
32 MB, sized dynamically) with fresh pages from the kernel and hands them back when freed,
so every step pays a page fault per 4 KB touched. Measured on this project's 2-core VM:
filling a freshly allocated 8 MB tensor took 3.4 ms against 0.5 ms for reused memory, and
the `default` bf16 training step ran ~20% faster with freed memory kept for reuse
(docs/decisions.md).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import sys
from pathlib import Path

import torch

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")

# glibc's mallopt parameters (malloc.h) and the largest value an int argument can carry.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_LARGEST = 2**31 - 1

logger = logging.getLogger(__name__)


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


def keep_freed_memory() -> bool:
    """Make glibc's malloc serve large blocks from its heap and keep freed memory for
    reuse (mmap and trim thresholds at 2 GiB), so that tensors allocated every step reuse
    pages already mapped (see the module docstring). Process-wide: for the process that
    trains or generates, which the CLI owns. The cost: the process keeps its peak memory
    until it exits. -> whether it took effect (False on non-glibc systems)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        logger.debug("no glibc mallopt here; malloc left as it is")
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    done = (mallopt(_M_MMAP_THRESHOLD, _LARGEST) == 1) & (mallopt(_M_TRIM_THRESHOLD, _LARGEST) == 1)
    logger.debug("malloc keeps freed memory for reuse: %s", done)
    return bool(done)

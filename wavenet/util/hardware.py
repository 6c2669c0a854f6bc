"""What the machine offers that changes how the package should run on it.

`bf16_pays(device)`: whether bf16 autocast speeds training up there. Measured with
benchmarks/train.py (docs/decisions.md has the figures): on a CPU whose cores have bf16
matrix instructions (x86 `avx512_bf16`; `amx_bf16` tile units are faster still) the fused
step runs about twice as fast in bf16, with the same held-out bits (a categorical model:
1.89x its float32 step, 2.29x the plain float32 reference's; a mol model's body: 1.72x
its float32 step, its value input, last projection and loss staying float32). CPUs
without them are left in float32: their bf16 products take slower conversion paths (not
measured here). On CUDA devices that support bf16 it is the usual mixed-precision choice
(not measured here either: no GPU figures exist yet).

`memory_limit()`: the memory this process may use, the least of the RAM, its rlimits and
its cgroup's limit (`ulimit -v`, a container), which is what an allocation runs into;
`device_memory(device)` that, or a GPU's free memory; `check_training_memory` compares a
config's training estimate with it at the start of training, at the precision used.
`check_device` turns a device name into a torch.device or one clear error.

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

from ..config import Config, check_fits, physical_memory
from ..errors import InvalidArgumentError, InvalidTypeError

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


# cgroup v1 reports "no limit" as a huge number (a page-rounded 2**63 - 1).
_CGROUP_FILES = ("memory.max", "memory.limit_in_bytes")


def _cgroup_limits(proc_cgroup: Path, cgroup_root: Path) -> list[int]:
    """The memory limits of this process's cgroups (v2 memory.max, v1
    memory.limit_in_bytes), from its own cgroup up to the root, in bytes."""
    try:
        lines = proc_cgroup.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    folders = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # v2: one unified hierarchy
            folders.append(cgroup_root / path.lstrip("/"))
        elif "memory" in controllers.split(","):
            folders.append(cgroup_root / "memory" / path.lstrip("/"))
    folders += [cgroup_root, cgroup_root / "memory"]  # a container sees its own at the root
    limits = []
    for folder in folders:
        for here in (folder, *folder.parents):
            if cgroup_root not in (here, *here.parents):
                break
            for name in _CGROUP_FILES:
                try:
                    text = (here / name).read_text(encoding="utf-8").strip()
                except OSError:
                    continue
                if text.isdigit():
                    limits.append(int(text))
    return limits


def memory_limit(
    *, proc_cgroup: Path = Path("/proc/self/cgroup"), cgroup_root: Path = Path("/sys/fs/cgroup")
) -> int | None:
    """The bytes this process can allocate at most: the least of the machine's RAM, the
    soft RLIMIT_AS and RLIMIT_DATA (`ulimit -v`, `ulimit -d`) and its cgroup's memory limit
    (a container's memory.max); None where none of them is known."""
    limits = [] if (ram := physical_memory()) is None else [ram]
    try:
        import resource

        for which in (resource.RLIMIT_AS, resource.RLIMIT_DATA):
            soft = resource.getrlimit(which)[0]
            if soft != resource.RLIM_INFINITY and soft > 0:
                limits.append(soft)
    except (ImportError, AttributeError, OSError, ValueError):
        pass
    limits += _cgroup_limits(proc_cgroup, cgroup_root)
    return min(limits) if limits else None


def check_device(device: object) -> torch.device:
    """`device` (a name or a torch.device) as a torch.device this machine has: cpu, or
    cuda (cuda:N within its GPU count) where CUDA is available; InvalidArgumentError (or
    InvalidTypeError for neither a str nor a torch.device) naming what was found."""
    if not isinstance(device, (str, torch.device)):
        raise InvalidTypeError(
            f"device must be a str or a torch.device, got {type(device).__name__}"
        )
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        parsed = None
    if parsed is None or parsed.type not in ("cpu", "cuda"):
        raise InvalidArgumentError(f"device {device}: give cpu or cuda (cuda:N for the N-th GPU)")
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InvalidArgumentError(f"device {device}: no CUDA device is available")
        if parsed.index is not None and parsed.index >= count:
            raise InvalidArgumentError(
                f"device {device}: this machine has {count} CUDA "
                f"device(s), cuda:0 to cuda:{count - 1}"
            )
    return parsed


def device_memory(device: torch.device) -> int | None:
    """Bytes free for tensors on `device`: a GPU's free memory (torch.cuda.mem_get_info),
    else this process's `memory_limit`."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return memory_limit()


def check_training_memory(config: Config, device: torch.device) -> None:
    """ConfigError when training `config` on `device`, at the precision it will use there
    (`use_bf16`), needs more memory than the device has free (`config.check_fits`)."""
    where = f"{device}'s free" if device.type == "cuda" else "this process's"
    check_fits(config, device_memory(device), bf16=use_bf16(config.train.bf16, device), where=where)

"""Training speed: the model's step against a plain PyTorch WaveNet, then `wavenet train`.

    python benchmarks/train.py                    # both parts, `default` size, batch 4 x 8000
    python benchmarks/train.py --repeats 5 --skip-end-to-end
    python benchmarks/train.py --device cuda      # on a GPU (adds a compiled bf16 step)
    python benchmarks/train.py --compile          # adds torch.compile'd steps (train.compile)
    python benchmarks/train.py --preset mol --skip-end-to-end  # the mol step, bf16 body

Part 1, model level, one process and one thread (on CPU), all in one process with the
variants taking turns in every repeat so that their ratios compare runs made at the same
moment: forward + cross-entropy on every position + backward + AdamW step, on random
codes, for
  (a) `reference`: a straightforward WaveNet written here and frozen (nn.Conv1d layers,
      tanh * sigmoid, skips summed layer by layer), of the same size as the preset;
  (b) `fp32`: the package's training step in float32;
  (c) `bf16`: the same step under bf16 autocast (float32 master weights); for a mol
      preset the body only (its value input, last projection and loss stay float32);
  (d) with --compile (and on CUDA): those steps with the model under torch.compile, as
      `train.compile = true` runs it, with the first step's extra seconds (compiling).
Part 1b, ceiling (CPU only): the package's fp32 and bf16 steps profiled (torch.profiler,
two steps): the time and FLOPs of their matrix products, and the targets/s those products
alone would allow, at their own rate and at the best rate this CPU shows for a large
product of the same dtype; as ratios to the reference's rate from part 1.
Part 2, end to end: `wavenet train` on a synthetic folder (data cache, crops, AdamW,
EMA if the preset has it, metrics, a checkpoint at the end), target samples per second
read from the run's metrics, as 1 process x 1 thread, 1 x 2 and 2 x 1 under torchrun.

The model level sets glibc malloc's thresholds as the wavenet CLI does, for every variant
(--system-malloc leaves them alone: the allocator's share of a step, wavenet/util/hardware.py).
Prints a table with the CPU model and its matrix-unit flags; writes JSON
(default benchmarks/results/train.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import cast

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from machine import (  # benchmarks/machine.py (the script's folder is on sys.path)
    cpu_flags,
    cpu_model,
)
from torch import nn


class PlainBlock(nn.Module):
    """Frozen reference: the gated residual block as most WaveNet code writes it."""

    def __init__(self, residual: int, gate: int, skip: int, dilation: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.dilated = nn.Conv1d(residual, gate, 2, dilation=dilation)
        self.residual = nn.Conv1d(gate // 2, residual, 1)
        self.skip = nn.Conv1d(gate // 2, skip, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.dilated(F.pad(x, (self.dilation, 0)))
        a, b = z.chunk(2, dim=1)
        h = torch.tanh(a) * torch.sigmoid(b)
        return x + self.residual(h), self.skip(h)


class PlainWaveNet(nn.Module):
    """Frozen reference WaveNet: embedding, blocks, ReLU-1x1-ReLU-1x1 head; (B, T) -> (B, Q, T)."""

    def __init__(
        self, quantization: int, residual: int, gate: int, skip: int, dilations: tuple[int, ...]
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(quantization, residual)
        self.blocks = nn.ModuleList(PlainBlock(residual, gate, skip, d) for d in dilations)
        self.hidden = nn.Conv1d(skip, skip, 1)
        self.out = nn.Conv1d(skip, quantization, 1)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        x = self.embedding(codes).transpose(1, 2)
        total = torch.zeros(())
        for block in self.blocks:
            x, skip = block(x)
            total = total + skip
        return self.out(torch.relu(self.hidden(torch.relu(total))))


def reference_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, codes: torch.Tensor
) -> float:
    loss = F.cross_entropy(model(codes[:, :-1]), codes[:, 1:])
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def package_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, codes: torch.Tensor, bf16: bool
) -> float:
    """What `wavenet train` runs per micro-batch: the package's loss (cross-entropy, or
    the mixture's likelihood for a mol preset), backward, AdamW."""
    from wavenet.data.crops import Batch
    from wavenet.train.loss import loss_function

    loss_of = loss_function(getattr(model, "_orig_mod", model).config)  # type: ignore[arg-type]
    with torch.autocast(codes.device.type, dtype=torch.bfloat16, enabled=bf16):
        loss = loss_of(model, Batch(codes), 0)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def model_level(
    preset: str, batch: int, length: int, repeats: int, device: str, compiled: tuple[str, ...]
) -> list[dict]:
    import wavenet

    config = wavenet.load_config(preset).model
    torch.manual_seed(0)
    reference = PlainWaveNet(
        config.quantization_channels,
        config.residual_channels,
        config.gate_channels,
        config.skip_channels,
        config.dilations,
    ).to(device)
    package = wavenet.WaveNet(config).to(device)
    Step = Callable[[nn.Module, torch.optim.Optimizer, torch.Tensor], float]
    variants: dict[str, tuple[nn.Module, Step]] = {
        "reference": (reference, lambda m, o, c: reference_step(m, o, c)),
        "fp32": (package, lambda m, o, c: package_step(m, o, c, bf16=False)),
        "bf16": (package, lambda m, o, c: package_step(m, o, c, bf16=True)),
    }
    # What train.compile = true runs: the same module under torch.compile (its parameters
    # shared with `package`), once per precision asked for.
    for precision in compiled:
        variants[f"{precision}+compile"] = (
            cast(nn.Module, torch.compile(package)),
            partial(package_step, bf16=precision == "bf16"),
        )
    optimizers = {
        name: torch.optim.AdamW(model.parameters(), lr=1e-4)
        for name, (model, _) in variants.items()
    }
    # A mol preset's package model reads 16-bit codes; the reference stays categorical.
    codes = torch.randint(0, config.classes, (batch, length + 1), device=device)
    reference_codes = torch.randint(
        0, config.quantization_channels, (batch, length + 1), device=device
    )
    times: dict[str, list[float]] = {name: [] for name in variants}
    first: dict[str, float] = {}
    for repeat in range(repeats + 1):  # the first round warms up (and compiles)
        for name, (model, step) in variants.items():
            _sync(device)
            start = time.perf_counter()
            step(model, optimizers[name], reference_codes if name == "reference" else codes)
            _sync(device)
            if repeat:
                times[name].append(time.perf_counter() - start)
            else:
                first[name] = time.perf_counter() - start
    reference_rate = batch * length / statistics.median(times["reference"])
    rows = []
    for name, seconds in times.items():
        rate = batch * length / statistics.median(seconds)
        row = {
            "part": "model",
            "variant": name,
            "preset": preset,
            "device": device,
            "batch": batch,
            "length": length,
            "targets_per_s": rate,
            "x_reference": rate / reference_rate,
            "seconds": seconds,
        }
        if name.endswith("+compile"):  # the first step's extra time: tracing and compiling
            row["compile_s"] = first[name] - statistics.median(seconds)
        rows.append(row)
    return rows


# The matrix products of a step, as the profiler names them (CPU ops).
PRODUCT_OPS = ("aten::mm", "aten::addmm", "aten::addmm_")


def _product_flops(name: str, shapes: list[list[int]]) -> int:
    """2 m k n for one call of a product op, from the profiler's input shapes."""
    a, b = (shapes[0], shapes[1]) if name == "aten::mm" else (shapes[1], shapes[2])
    return 2 * a[0] * a[1] * b[1]


def best_product_rate(dtype: torch.dtype, repeats: int) -> tuple[float, str]:
    """This CPU's best matrix-product rate in `dtype` (FLOP/s, one thread) over a few large
    shapes, one of them the step's widest (32000 x 1280 x 256): the ceiling for any step."""
    best, where = 0.0, ""
    for m, k, n in ((2048, 2048, 2048), (32000, 256, 256), (32000, 1280, 256)):
        a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
        seconds = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            torch.mm(a, b)
            seconds.append(time.perf_counter() - start)
        rate = 2 * m * k * n / min(seconds[1:])
        if rate > best:
            best, where = rate, f"{m} x {k} x {n}"
    return best, where


def ceiling(
    preset: str, batch: int, length: int, repeats: int, reference_rate: float
) -> list[dict]:
    """Where the package's CPU step spends its time, and what that allows: its matrix
    products' share and rate (torch.profiler over two steps, after a warm-up), and the
    targets/s a step made of nothing but those FLOPs would reach at the best product rate
    this CPU shows (`best_product_rate`). Both bounds are ratios to the reference's rate
    measured in the model-level part of the same run."""
    from torch.profiler import ProfilerActivity, profile

    import wavenet

    config = wavenet.load_config(preset).model
    torch.manual_seed(0)
    model = wavenet.WaveNet(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    codes = torch.randint(0, config.classes, (batch, length + 1))
    rows = []
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        bf16 = precision == "bf16"
        package_step(model, optimizer, codes, bf16)  # warm-up: allocations
        steps = 2
        prof = profile(activities=[ProfilerActivity.CPU], record_shapes=True)
        with warnings.catch_warnings():  # the profiler's note on clearing events per cycle
            warnings.simplefilter("ignore", UserWarning)
            with prof:
                start = time.perf_counter()
                for _ in range(steps):
                    package_step(model, optimizer, codes, bf16)
                step_s = (time.perf_counter() - start) / steps
        products_s = flops = 0.0
        for event in prof.events():
            if event.name in PRODUCT_OPS:
                products_s += event.self_cpu_time_total / 1e6 / steps
                flops += _product_flops(event.name, event.input_shapes) / steps
        peak, peak_shape = best_product_rate(dtype, repeats)
        targets = batch * length
        rows.append(
            {
                "part": "ceiling",
                "variant": precision,
                "preset": preset,
                "device": "cpu",
                "batch": batch,
                "length": length,
                "step_s_profiled": step_s,
                "products_s": products_s,
                "products_share": products_s / step_s,
                "products_flop_per_s": flops / products_s,
                "flop_per_target": flops / targets,
                "best_product_flop_per_s": peak,
                "best_product_shape": peak_shape,
                "products_alone_targets_per_s": targets / products_s,
                "products_alone_x_reference": targets / products_s / reference_rate,
                "at_best_rate_targets_per_s": peak * targets / flops,
                "at_best_rate_x_reference": peak * targets / flops / reference_rate,
            }
        )
    return rows


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def write_data(folder: Path, sample_rate: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(20 * sample_rate) / sample_rate
    for i in range(4):
        audio = 0.2 * np.sum(
            [np.sin(2 * np.pi * f * (i + 1) * t) for f in (110.0, 138.6, 164.8)], 0
        )
        sf.write(folder / f"clip{i}.wav", audio.astype(np.float32), sample_rate)


def end_to_end(
    preset: str,
    batch: int,
    length: int,
    steps: int,
    processes: int,
    threads: int,
    device: str,
    extra: list[str],
    work: Path,
    label: str,
) -> dict:
    """Train a fresh run with the CLI; samples/s from metrics.jsonl after the first interval."""
    import wavenet

    config = wavenet.load_config(preset)
    data = work / f"data{config.data.sample_rate}"
    if not data.exists():
        write_data(data, config.data.sample_rate)
    out = work / f"{preset}-{label}"
    log_every = max(1, steps // 4)
    command = [sys.executable, "-m", "wavenet_cli"]
    if processes > 1:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={processes}",
            "-m",
            "wavenet_cli",
        ]
    command += [
        "train",
        "--data",
        str(data),
        "--out",
        str(out),
        "--config",
        preset,
        "--steps",
        str(steps),
        "--device",
        device,
        "--cache-dir",
        str(work / "cache"),
        "--set",
        f"train.batch_size={batch // processes}",
        "--set",
        f"data.target_length={length}",
        "--set",
        f"train.log_every={log_every}",
        "--set",
        f"train.val_every={steps}",
        "--set",
        f"train.checkpoint_every={steps}",
        "--set",
        "train.val_batches=1",
        *extra,
    ]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"benchmark run failed:\n{result.stdout}\n{result.stderr}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["samples_per_s"] for r in records[1:] if r["step"] % log_every == 0]
    return {
        "part": "end-to-end",
        "variant": label,
        "preset": preset,
        "device": device,
        "processes": processes,
        "threads_per_process": threads,
        "batch": batch,
        "length": length,
        "steps": steps,
        "targets_per_s": float(np.median(rates)),
        "options": extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--length", type=int, default=8000, help="target samples per crop")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=12, help="steps per end-to-end run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="add torch.compile'd fp32 and bf16 steps (train.compile = true) "
        "and an end-to-end run with it (always on with --device cuda, "
        "bf16 only)",
    )
    parser.add_argument(
        "--system-malloc",
        action="store_true",
        help="model level: leave glibc malloc's thresholds as they are (by "
        "default they are set as the wavenet CLI sets them, for every "
        "variant alike: wavenet.util.hardware.keep_freed_memory)",
    )
    parser.add_argument("--skip-model", action="store_true")
    parser.add_argument("--skip-end-to-end", action="store_true")
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "train.json"
    )
    args = parser.parse_args()

    torch.set_num_threads(1)
    from wavenet.util.hardware import keep_freed_memory

    flags = cpu_flags()
    machine = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "malloc_keeps_freed_memory": not args.system_malloc and keep_freed_memory(),
        "bf16_matrix_units": {f: f in flags for f in ("amx_bf16", "avx512_bf16")},
    }
    if args.device.startswith("cuda"):
        machine["gpu"] = torch.cuda.get_device_name()
    print(
        f"cpu: {machine['cpu']} ({machine['cores']} cores), torch {torch.__version__}, "
        f"amx_bf16={'amx_bf16' in flags}, avx512_bf16={'avx512_bf16' in flags}, "
        f"malloc keeps freed memory: {machine['malloc_keeps_freed_memory']}"
    )
    if not {"amx_bf16", "avx512_bf16"} & flags and args.device == "cpu":
        print(
            "note: this CPU has no bf16 matrix instructions (avx512_bf16, amx_bf16): wavenet "
            "train stays in float32 here; the bf16 row measures what bf16 would give"
        )
    rows: list[dict] = []
    if not args.skip_model:
        compiled = (
            ("fp32", "bf16")
            if args.compile
            else ("bf16",)
            if args.device.startswith("cuda")
            else ()
        )
        rows += model_level(
            args.preset, args.batch, args.length, args.repeats, args.device, compiled
        )
        print_rows([r for r in rows if r["part"] == "model"])
        if args.device == "cpu":
            reference = next(r for r in rows if r["variant"] == "reference")
            rows += ceiling(
                args.preset, args.batch, args.length, args.repeats, reference["targets_per_s"]
            )
            print_ceilings([r for r in rows if r["part"] == "ceiling"])
    if not args.skip_end_to_end:
        rows += run_end_to_end(args)
    report = {"machine": machine, "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


def run_end_to_end(args: argparse.Namespace) -> list[dict]:
    cores = os.cpu_count() or 1
    setups = (
        [("1x1", 1, 1, []), (f"1x{cores}", 1, cores, []), (f"{cores}x1 torchrun", cores, 1, [])]
        if args.device == "cpu"
        else [
            ("fp32", 1, 1, ["--set", "train.bf16=false"]),
            ("bf16", 1, 1, ["--set", "train.bf16=true"]),
        ]
    )
    if args.compile:
        setups.append(("1x1 compile", 1, 1, ["--set", "train.compile=true"]))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, processes, threads, extra in setups:
            rows.append(
                end_to_end(
                    args.preset,
                    args.batch,
                    args.length,
                    args.steps,
                    processes,
                    threads,
                    args.device,
                    extra,
                    Path(tmp),
                    label,
                )
            )
            print_rows(rows[-1:])
    return rows


def print_rows(rows: list[dict]) -> None:
    for row in rows:
        ratio = f"{row['x_reference']:5.2f}x" if "x_reference" in row else ""
        compiling = f"  (first step +{row['compile_s']:.0f} s)" if "compile_s" in row else ""
        print(
            f"{row['part']:10s} {row['preset']:8s} {row['device']:5s} {row['variant']:14s} "
            f"batch {row['batch']} x {row['length']}: {row['targets_per_s']:10,.0f} targets/s "
            f"{ratio}{compiling}",
            flush=True,
        )


def print_ceilings(rows: list[dict]) -> None:
    for row in rows:
        print(
            f"ceiling    {row['preset']:8s} cpu   {row['variant']:5s} matrix products "
            f"{row['products_s'] * 1e3:,.0f} of {row['step_s_profiled'] * 1e3:,.0f} ms a step "
            f"({row['products_share']:.0%}, profiled) at {row['products_flop_per_s'] / 1e9:.0f} "
            f"GFLOP/s, {row['flop_per_target'] / 1e6:.2f} MFLOP a target: by themselves "
            f"{row['products_alone_targets_per_s']:,.0f} targets/s "
            f"({row['products_alone_x_reference']:.2f}x); at this CPU's best product rate "
            f"({row['best_product_flop_per_s'] / 1e9:.0f} GFLOP/s, {row['best_product_shape']}) "
            f"{row['at_best_rate_targets_per_s']:,.0f} ({row['at_best_rate_x_reference']:.2f}x)",
            flush=True,
        )


if __name__ == "__main__":
    main()

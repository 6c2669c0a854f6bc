"""Generation speed: samples per second of `wavenet.generate` by method, preset and batch.

    python benchmarks/generate.py                      # default and tiny, one CPU thread
    python benchmarks/generate.py --presets default --repeats 5
    python benchmarks/generate.py --threads 2 --out /tmp/generate.json
    python benchmarks/generate.py --presets default mol    # categorical vs mol, same body
    python benchmarks/generate.py --presets default vocoder-22k   # a mel vocoder, same body
    python benchmarks/generate.py --weights           # float32 weights only (no bf16/int8)

Methods: "fast-numba" (what method="fast" runs on the CPU), "fast-torch" (the plain
per-layer PyTorch incremental loop: the baseline) and "naive" (model(codes) over the last
receptive_field codes per sample, primed with a full receptive field so every window is
full). "fast-numba+bf16" and "fast-numba+int8" are the kernel with the products' weights
in bfloat16 or int8, "+bf16-dot" and "+int8-dot" with their inputs too, on the CPU's
dot-product instructions (`generate(..., weights=...)`); what each costs in held-out bits
is measured on trained models by `weights_bits.py` (or `quality.py --weights`) and printed
after the table from its JSON. Models have random weights (the speed does not depend on
them), float32, CPU.
Each figure is the median of --repeats timed runs after a warm-up, with the methods and
presets interleaved in every repeat so that ratios compare runs made at the same time
(the machine may be shared). The numba kernel always runs on one thread; --threads sets
torch's threads (and the BLAS / OpenMP variables, before torch is imported).

The `mol` preset is the `default` body with a mixture-of-logistics head (3 x 10 outputs
instead of 256) and a value input; with both presets the table ends with mol's
samples/s over default's for each method and batch ("mol_vs_categorical" in the JSON).
`vocoder-22k` is the `default` body conditioned on an 80-band mel, generated from a random
mel covering the samples (the time includes computing each layer's conditioning terms);
beside `default` the table ends with its samples/s over default's ("vocoder_vs_plain").

Prints a table and writes JSON (default benchmarks/results/generate.json).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model  # benchmarks/machine.py (the script's folder is on sys.path)

# (method, batch sizes, samples per stream per timed run) for each preset.
PLAN: dict[str, list[tuple[str, tuple[int, ...], tuple[int, ...]]]] = {
    "default": [
        ("fast-numba", (1, 16, 64), (8000, 2000, 1000)),
        ("fast-torch", (1, 16, 64), (800, 400, 200)),
        ("naive", (1,), (30,)),
    ],
    "mol": [
        ("fast-numba", (1, 16, 64), (8000, 2000, 1000)),
        ("fast-torch", (1, 16, 64), (800, 400, 200)),
        ("naive", (1,), (30,)),
    ],
    "tiny": [
        ("fast-numba", (1, 16, 64), (40000, 8000, 4000)),
        ("fast-torch", (1, 16, 64), (2000, 1000, 500)),
        ("naive", (1,), (400,)),
    ],
    "vocoder-22k": [
        ("fast-numba", (1, 16, 64), (8000, 2000, 1000)),
        ("fast-torch", (1, 16, 64), (800, 400, 200)),
    ],
}

# Presets with default's body, compared with it: their JSON key, and what differs.
COMPARED_WITH_DEFAULT = {"mol": "mol_vs_categorical", "vocoder-22k": "vocoder_vs_plain"}
COMPARISON = {
    "mol_vs_categorical": "3 x 10 mixture head, embedding + value input, vs a 256-way head "
    "and embedding",
    "vocoder_vs_plain": "an 80-band mel's terms added in every layer, vs no conditioning",
}

COMPILE_SNIPPET = """
import time, torch, wavenet
model = wavenet.WaveNet(wavenet.load_config("tiny").model)
start = time.perf_counter()
wavenet.generate(model, 10, method="fast-numba")
print(time.perf_counter() - start)
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["default", "tiny"], choices=sorted(PLAN))
    parser.add_argument("--threads", type=int, default=1, help="torch / BLAS threads (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure (median)")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every sample count (e.g. 0.2 for a quick look)",
    )
    parser.add_argument(
        "--weights",
        nargs="*",
        choices=("bf16", "int8", "bf16-dot", "int8-dot"),
        default=["bf16", "int8", "bf16-dot", "int8-dot"],
        help="also time fast-numba with the products' weights in these formats "
        "(method fast-numba+bf16, ...; wavenet/generation/reduced.py) [default: all]",
    )
    parser.add_argument(
        "--bits-from",
        type=Path,
        default=Path(__file__).resolve().parent / "results" / "weights_bits.json",
        help="weights_bits.py's JSON, whose held-out bits cost of each format is printed "
        "beside the speeds [default: results/weights_bits.json]",
    )
    parser.add_argument(
        "--no-compile-time",
        action="store_true",
        help="skip measuring the numba compile time in a fresh cache",
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "results" / "generate.json"
    )
    return parser.parse_args()


def compile_time(threads: int) -> float:
    """Seconds of the first fast-numba call in a new process with an empty numba cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run(
            [sys.executable, "-c", COMPILE_SNIPPET],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
    return float(out.stdout.split()[-1])


def main() -> None:
    args = parse_args()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[name] = str(args.threads)

    import numba
    import torch

    import wavenet

    torch.set_num_threads(args.threads)
    results: dict = {
        "cpu": cpu_model(),
        "threads": args.threads,
        "numba_threads": 1,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numba": numba.__version__,
        "repeats": args.repeats,
        "dtype": "float32",
        "temperature": 1.0,
        "presets": {},
    }

    first_call = time.perf_counter()
    tiny = wavenet.WaveNet(wavenet.load_config("tiny").model)
    wavenet.generate(tiny, 10, method="fast-numba")
    results["first_call_s"] = round(time.perf_counter() - first_call, 2)
    if not args.no_compile_time:
        results["compile_s"] = round(compile_time(args.threads), 2)

    # Every run of every preset, timed in turn within each repeat: a ratio between presets
    # (mol over categorical) then compares runs made at the same time.
    models, runs = {}, []
    for preset in args.presets:
        config = wavenet.load_config(preset)
        torch.manual_seed(0)
        model = wavenet.WaveNet(config.model).eval()
        models[preset] = (config, model)
        for method, batches, counts in PLAN[preset]:
            for batch, count in zip(batches, counts):
                n = max(1, round(count * args.scale))
                prime = None
                if method == "naive":
                    prime = torch.randint(
                        0,
                        config.model.classes,
                        (model.receptive_field,),
                        generator=torch.Generator().manual_seed(0),
                    )
                formats = ["float32"] + (args.weights if method == "fast-numba" else [])
                for weights in formats:
                    runs.append(
                        {
                            "preset": preset,
                            "method": method,
                            "label": method if weights == "float32" else f"{method}+{weights}",
                            "weights": weights,
                            "batch_size": batch,
                            "n_samples": n,
                            "prime": prime,
                            "times": [],
                        }
                    )

    def once(run: dict, n: int) -> float:
        generator = torch.Generator().manual_seed(1)
        model = models[run["preset"]][1]
        mel = None
        if model.config.local_channels is not None:  # a vocoder: a random mel covering n
            hop = math.prod(model.config.upsample_scales)
            mel = torch.randn(
                run["batch_size"],
                model.config.local_channels,
                -(-n // hop),
                generator=torch.Generator().manual_seed(2),
            )
        start = time.perf_counter()
        wavenet.generate(
            model,
            n,
            batch_size=run["batch_size"],
            prime=run["prime"],
            generator=generator,
            method=run["method"],
            mel=mel,
            weights=run["weights"],
        )
        return time.perf_counter() - start

    for run in runs:  # warm-up: compile, allocate, fill caches
        once(run, max(1, run["n_samples"] // 10))
    for _ in range(args.repeats):
        for run in runs:
            run["times"].append(once(run, run["n_samples"]))

    for preset, (config, model) in models.items():
        rows = {}
        for run in runs:
            if run["preset"] != preset:
                continue
            seconds = statistics.median(run["times"])
            rate = run["n_samples"] * run["batch_size"] / seconds
            rows[(run["label"], run["batch_size"])] = {
                "method": run["label"],
                "weights": run["weights"],
                "batch_size": run["batch_size"],
                "n_samples": run["n_samples"],
                "seconds": [round(t, 4) for t in run["times"]],
                "samples_per_s": round(rate, 1),
                "real_time_factor": round(rate / config.data.sample_rate, 3),
            }
        for (method, batch), row in rows.items():
            baseline = rows.get(("fast-torch", batch))
            if method.startswith("fast-numba") and baseline is not None:
                row["x_fast_torch"] = round(row["samples_per_s"] / baseline["samples_per_s"], 2)
            naive = rows.get(("naive", 1))
            if method != "naive" and naive is not None and batch == 1:
                row["x_naive"] = round(row["samples_per_s"] / naive["samples_per_s"], 1)
        results["presets"][preset] = {
            "sample_rate": config.data.sample_rate,
            "receptive_field": model.receptive_field,
            "parameters": wavenet.parameter_count(model),
            "rows": list(rows.values()),
        }

    presets = results["presets"]
    for preset, key in COMPARED_WITH_DEFAULT.items():
        if "default" in presets and preset in presets:
            plain = {
                (r["method"], r["batch_size"]): r["samples_per_s"]
                for r in presets["default"]["rows"]
            }
            results[key] = [
                {
                    "method": r["method"],
                    "batch_size": r["batch_size"],
                    "ratio": round(r["samples_per_s"] / plain[(r["method"], r["batch_size"])], 3),
                }
                for r in presets[preset]["rows"]
                if (r["method"], r["batch_size"]) in plain
            ]
    results["weights_bits_cost"] = measured_bits_cost(args.bits_from)
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


def measured_bits_cost(path: Path) -> dict[str, dict[str, float]] | None:
    """Held-out bits each reduced format cost trained models (`weights_bits.py`'s JSON):
    the largest and the mean over its runs; None when there is no such file. The speed
    runs here use random weights, whose bits mean nothing."""
    if not path.is_file():
        return None
    rows = json.loads(path.read_text())["rows"]
    formats = sorted({f for r in rows for f in r["cost"]})
    return {
        f: {
            "largest": max(r["cost"][f] for r in rows if f in r["cost"]),
            "mean": statistics.mean(r["cost"][f] for r in rows if f in r["cost"]),
            "runs": sum(f in r["cost"] for r in rows),
        }
        for f in formats
    }


def print_table(results: dict) -> None:
    print(
        f"CPU: {results['cpu']}; torch threads: {results['threads']} "
        f"(numba kernel: 1 thread); float32, temperature 1; median of {results['repeats']}"
    )
    compile_s = results.get("compile_s")
    print(
        f"first fast-numba call in this process: {results['first_call_s']} s"
        + (f"; with an empty numba cache (compiling): {compile_s} s" if compile_s else "")
    )
    header = (
        f"{'preset':11} {'method':16} {'batch':>5} {'samples/s':>11} {'x real time':>11} "
        f"{'x fast-torch':>12} {'x naive':>8}"
    )
    for preset, info in results["presets"].items():
        print(
            f"\n{preset}: receptive field {info['receptive_field']}, "
            f"{info['parameters']:,} parameters, {info['sample_rate']} Hz"
        )
        print(header)
        for row in info["rows"]:
            ratio = row.get("x_fast_torch")
            naive = row.get("x_naive")
            print(
                f"{preset:11} {row['method']:16} {row['batch_size']:>5} "
                f"{row['samples_per_s']:>11,.0f} {row['real_time_factor']:>11.2f} "
                f"{'' if ratio is None else f'{ratio:.1f}':>12} "
                f"{'' if naive is None else f'{naive:.0f}':>8}"
            )
    for preset, key in COMPARED_WITH_DEFAULT.items():
        if key in results:
            print(f"\n{preset} / default samples/s (same body; {COMPARISON[key]}):")
            for row in results[key]:
                print(f"  {row['method']:16} batch {row['batch_size']:>3}: {row['ratio']:.2f}")
    cost = results.get("weights_bits_cost")
    if cost:
        print("\nheld-out bits/sample each format costs trained models (weights_bits.py):")
        for fmt, c in cost.items():
            print(
                f"  fast-numba+{fmt:9} largest {c['largest']:+.4f}, mean {c['mean']:+.4f} "
                f"over {c['runs']} runs"
            )


if __name__ == "__main__":
    main()

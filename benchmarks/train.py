"""Training throughput: target samples per second for presets, on CPU processes or a GPU.

    python benchmarks/train.py                       # tiny and default, 1 vs 2 CPU processes
    python benchmarks/train.py --presets tiny --steps 30
    python benchmarks/train.py --device cuda         # fp32 vs bf16 on a GPU

Each configuration trains a fresh run on a synthetic folder (a chord of sines) with the
real `wavenet train` path (data cache, crops, AdamW, checkpoints at the end), and reads
samples/s from the run's metrics log, leaving out the first log interval (warm-up).
Prints a table and writes JSON (default benchmarks/results/train.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from machine import cpu_model  # benchmarks/machine.py (the script's folder is on sys.path)

import numpy as np
import soundfile as sf


def write_data(folder: Path, sample_rate: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(20 * sample_rate) / sample_rate
    for i in range(4):
        audio = 0.2 * sum(np.sin(2 * np.pi * f * (i + 1) * t) for f in (110.0, 138.6, 164.8))
        sf.write(folder / f"clip{i}.wav", audio.astype(np.float32), sample_rate)


def run(preset: str, steps: int, processes: int, threads: int, device: str, bf16: bool,
        work: Path) -> dict:
    import wavenet

    config = wavenet.load_config(preset)
    data = work / f"data{config.data.sample_rate}"
    if not data.exists():
        write_data(data, config.data.sample_rate)
    out = work / f"{preset}-{processes}p-{threads}t-{device}-{'bf16' if bf16 else 'fp32'}"
    log_every = max(1, steps // 5)
    command = [sys.executable, "-m", "wavenet_cli"]
    if processes > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={processes}", "-m", "wavenet_cli"]
    command += ["train", "--data", str(data), "--out", str(out), "--config", preset,
                "--steps", str(steps), "--device", device, "--cache-dir", str(work / "cache"),
                "--set", f"train.log_every={log_every}", "--set", f"train.val_every={steps}",
                "--set", f"train.checkpoint_every={steps}", "--set", "train.val_batches=1",
                "--set", f"train.bf16={'true' if bf16 else 'false'}"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"benchmark run failed:\n{result.stdout}\n{result.stderr}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["samples_per_s"] for r in records[1:] if r["step"] % log_every == 0]
    return {"preset": preset, "processes": processes, "threads_per_process": threads,
            "device": device, "bf16": bf16, "steps": steps,
            "batch_per_process": config.train.batch_size,
            "target_length": config.data.target_length,
            "samples_per_s": float(np.median(rates))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "default"])
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per run [default: 60 for tiny, 10 for others]")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "train.json")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for preset in args.presets:
            steps = args.steps or (60 if preset == "tiny" else 10)
            if args.device == "cpu":
                cores = os.cpu_count() or 1
                setups = [(1, 1), (1, cores), (2, max(1, cores // 2))]
                for processes, threads in setups:
                    rows.append(run(preset, steps, processes, threads, "cpu", False, work))
                    print_row(rows[-1])
            else:
                for bf16 in (False, True):
                    rows.append(run(preset, steps, 1, 1, args.device, bf16, work))
                    print_row(rows[-1])
    report = {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
              "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"\ncpu: {report['cpu']} ({report['cores']} cores); wrote {args.json}")


def print_row(row: dict) -> None:
    if not hasattr(print_row, "header"):
        print(f"{'preset':8s} {'device':6s} {'procs':>5s} {'threads':>7s} {'precision':>9s} "
              f"{'samples/s':>10s}")
        print_row.header = True
    print(f"{row['preset']:8s} {row['device']:6s} {row['processes']:5d} "
          f"{row['threads_per_process']:7d} {'bf16' if row['bf16'] else 'fp32':>9s} "
          f"{row['samples_per_s']:10,.0f}", flush=True)


if __name__ == "__main__":
    main()

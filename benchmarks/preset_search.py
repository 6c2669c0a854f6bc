"""Screen training recipes for a CPU time budget by held-out bits/sample (issue 14's search).

    python benchmarks/preset_search.py --minutes 7.5 --jobs 2 CANDIDATE [CANDIDATE ...]
    python benchmarks/preset_search.py --list

A 15-minute trial of every recipe, one after the other on a quiet machine, would take the
whole machine for hours; trials that share the machine would measure the sharing. So a
trial here is fixed in *steps*, not minutes: each recipe's cost is one step's CPU time on
one thread (`time.thread_time`, which other jobs hardly change), its steps are
`budget x 2-thread speed-up / that cost`, and it trains with `--steps` on one thread, so
two trials can run side by side (`--jobs 2`) and give the same bits as alone. The step
counts are estimates of what a quiet `--minutes` run makes (small models use two threads
less well than big ones, so small recipes get a little too many steps); the winner is
then confirmed by `quality.py --minutes 15` on the quiet machine.

Every trial trains on the speech (or piano) set of quality.py with `wavenet train --data
TRAIN --val-data TEST --config default --set ... --steps N` and is scored by `wavenet eval`
on every held-out set. Results are appended to --json (default
benchmarks/results/preset_search.jsonl), one line per trial.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import piano_data
import torch
from machine import cpu_model
from quality import DataSet, evaluate, piano_set, speech_set, wavenet_cli

# Two threads of a `wavenet train` step, as a multiple of one, measured on the 2-core
# machine of issue 14 for `default` at batch 8 x 4000 (31,358 / 19,028 targets/s).
TWO_THREAD_SPEEDUP = 1.65

# Recipes as overrides of `default` (batch 8 x 4000, lr 1e-3, 2 x 10 layers, skip 256).
CANDIDATES: dict[str, list[str]] = {
    "default": [],
    "b4": ["train.batch_size=4"],
    "b4-lr2e-3": ["train.batch_size=4", "train.lr=2e-3"],
    "b4x2000": ["train.batch_size=4", "data.target_length=2000"],
    "b4x2000-lr2e-3": ["train.batch_size=4", "data.target_length=2000", "train.lr=2e-3"],
    "b8x2000": ["data.target_length=2000"],
    "b2x2000": ["train.batch_size=2", "data.target_length=2000"],
    "b2x2000-lr2e-3": ["train.batch_size=2", "data.target_length=2000", "train.lr=2e-3"],
    "b4x2000-lr3e-3": ["train.batch_size=4", "data.target_length=2000", "train.lr=3e-3"],
    "b4x1000": ["train.batch_size=4", "data.target_length=1000"],
    "b4-s128": ["train.batch_size=4", "model.skip_channels=128"],
    "b4-r48": [
        "train.batch_size=4",
        "model.residual_channels=48",
        "model.gate_channels=96",
        "model.skip_channels=128",
    ],
    "b4-ema": ["train.batch_size=4", "train.ema_decay=0.999"],
}


def step_seconds(overrides: list[str], repeats: int = 3) -> float:
    """Median one-thread CPU seconds of a bf16 training step (model, loss, AdamW)."""
    from train import package_step

    import wavenet

    config = wavenet.load_config("default", overrides)
    torch.manual_seed(0)
    model = wavenet.WaveNet(config.model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    codes = torch.randint(
        0,
        config.model.quantization_channels,
        (config.train.batch_size, config.data.target_length + 1),
    )
    package_step(model, optimizer, codes, bf16=True)  # warm-up
    seconds = []
    for _ in range(repeats):
        start = time.thread_time()
        package_step(model, optimizer, codes, bf16=True)
        seconds.append(time.thread_time() - start)
    return sorted(seconds)[len(seconds) // 2]


def trial(name: str, steps: int, data: DataSet, args: argparse.Namespace) -> dict:
    run = args.runs_dir / f"{data.name}-{name}-{steps}"
    overrides = CANDIDATES[name] + [
        f"train.warmup_steps={min(200, steps // 10)}",
        f"train.val_every={steps}",
        f"train.checkpoint_every={steps}",
    ]
    command = wavenet_cli(
        "train",
        "--data",
        data.train,
        "--val-data",
        next(iter(data.tests.values())),
        "--out",
        run,
        "--config",
        "default",
        "--steps",
        str(steps),
        "--cache-dir",
        args.cache_dir,
    )
    for override in overrides:
        command += ["--set", override]
    environment = dict(os.environ, OMP_NUM_THREADS="1")
    started = time.perf_counter()
    subprocess.run(command, check=True, env=environment, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    bits = {
        label: evaluate(run, folder, args)["bits_per_sample"]
        for label, folder in data.tests.items()
    }
    row = {
        "dataset": data.name,
        "candidate": name,
        "overrides": CANDIDATES[name],
        "steps": steps,
        "budget_minutes": args.minutes,
        "train_seconds": round(seconds),
        "bits_per_sample": bits,
        "cpu": cpu_model(),
    }
    print(json.dumps(row), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    with args.json.open("a") as out:  # as each trial ends: a failed one loses only itself
        out.write(json.dumps(row) + "\n")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidates", nargs="*")
    parser.add_argument("--list", action="store_true", help="print the candidates and exit")
    parser.add_argument("--minutes", type=float, default=7.5, help="budget a trial stands for")
    parser.add_argument("--dataset", choices=("speech", "piano"), default="speech")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="train every candidate this many steps (e.g. those of an earlier "
        "trial of the same shape) instead of timing its step",
    )
    parser.add_argument("--jobs", type=int, default=2, help="trials side by side, 1 thread each")
    parser.add_argument("--data-dir", type=Path, default=Path.home() / ".cache" / "wavenet-bench")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--runs-dir", type=Path, default=Path("/tmp/wavenet-preset-search"))
    parser.add_argument("--soundfont", type=Path, default=piano_data.SOUNDFONT)
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "preset_search.jsonl"
    )
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    if args.list or not args.candidates:
        for name, overrides in CANDIDATES.items():
            print(f"{name:16s} {' '.join(overrides) or '(default as shipped)'}")
        return
    unknown = [name for name in args.candidates if name not in CANDIDATES]
    if unknown:
        sys.exit(f"unknown candidates {unknown}; see --list")
    args.cache_dir = args.cache_dir or args.data_dir / "wavenet-cache"
    data = (
        speech_set(args.data_dir)
        if args.dataset == "speech"
        else piano_set(args.data_dir, args.soundfont)
    )
    torch.set_num_threads(1)
    plan: dict[str, int] = {}
    costs: dict[tuple[str, ...], float] = {}
    for name in args.candidates:
        if args.steps is not None:
            plan[name] = args.steps
            continue
        # Recipes that differ only in optimisation settings cost the same: time each
        # shape once, so their trials get equal steps.
        shape = tuple(
            o for o in CANDIDATES[name] if o.startswith(("model.", "data.", "train.batch"))
        )
        seconds = costs[shape] = costs.get(shape) or step_seconds(CANDIDATES[name])
        plan[name] = max(10, round(args.minutes * 60 * TWO_THREAD_SPEEDUP / seconds))
        print(
            f"{name}: {seconds:.3f} CPU s a step on one thread -> {plan[name]} steps "
            f"for {args.minutes:g} min",
            flush=True,
        )
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda name: trial(name, plan[name], data, args), plan))


if __name__ == "__main__":
    main()

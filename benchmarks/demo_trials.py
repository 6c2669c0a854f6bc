"""Trials for `wavenet demo`: which melodies and recipe make audio that shows plucked notes.

    OMP_NUM_THREADS=1 python benchmarks/demo_trials.py TRIAL --steps N
    python benchmarks/demo_trials.py --list
    python benchmarks/demo_trials.py TRIAL --step-cost   # one step's 1-thread CPU seconds
    python benchmarks/demo_trials.py --rescore           # figures again, from the audio

A trial writes the demo's melodies (its `MelodyStyle`), trains the `demo` preset with its
overrides (on top of `BEFORE`, the recipe the trials started from) for a fixed number of
steps on one thread, so the figures do not depend on the machine's load (the old recipe
made about 950 steps in 2 quiet minutes on two threads; give a cheaper step more in
proportion to --step-cost), generates 4 s (seed 0) from the best checkpoint and measures:
validation bits/sample beside `xz -9e` on the same codes, and the spectral flatness and
periodicity (`wavenet.data.demo.tone_figures`) of the generated audio, the training clips and
white noise. It draws the spectrograms of a clip and the generated audio into
RUNS/TRIAL-STEPS/spectrograms.png, to look at. Results are appended to --json (default
benchmarks/results/demo_trials.jsonl), one line per trial.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

import wavenet
from wavenet.coding.pcm import codes_to_waveform
from wavenet.data.crops import Batch
from wavenet.data.demo import MelodyStyle, noise_figures, tone_figures, write_demo_dataset
from wavenet.data.prepare import prepare_data
from wavenet.eval.compression import compressed_bits_per_sample
from wavenet.eval.plots import plot_spectrograms
from wavenet.generation.driver import generate
from wavenet.io.checkpoint import load_model
from wavenet.train.loop import TrainOptions, train
from wavenet.train.loss import loss_function
from wavenet.util.hardware import use_bf16

ONE_KEY = (220.0,)
# The recipe the trials started from (the `demo` preset before them): every trial but
# "shipped" applies its overrides on top of it.
BEFORE = ["data.sample_rate=8000", "train.batch_size=8", "train.lr=3e-3"]
# Trials: (melody style fields, overrides of BEFORE).
TRIALS: dict[str, tuple[dict, list[str]]] = {
    "shipped": ({}, []),  # the `demo` preset as it is
    "demo": ({}, []),
    "one-key": ({"keys_hz": ONE_KEY}, []),
    "one-key-apart": ({"keys_hz": ONE_KEY, "note_seconds": 0.4, "gaps": (0.4,)}, []),
    "4k": ({}, ["data.sample_rate=4000"]),
    "4k-one-key-apart": (
        {"keys_hz": ONE_KEY, "note_seconds": 0.4, "gaps": (0.4,)},
        ["data.sample_rate=4000"],
    ),
    "b4": ({}, ["train.batch_size=4"]),
    "b4x2000": ({}, ["train.batch_size=4", "data.target_length=2000"]),
    "lr1e-2": ({}, ["train.lr=1e-2"]),
    "one-key-3-apart": (
        {"keys_hz": ONE_KEY, "scale": (0, 7, 12), "note_seconds": 0.4, "gaps": (0.4,)},
        [],
    ),
    "ema-off": ({}, ["train.ema_decay=none"]),
    # 16-bit output: the next sample as a mixture of logistics, read from past values, so
    # a string's "average of the samples a period ago" is linear in what the model reads.
    "b4-lr5e-3": ({}, ["train.batch_size=4", "train.lr=5e-3"]),
    "b2": ({}, ["train.batch_size=2"]),
    "b2-lr2e-3": ({}, ["train.batch_size=2", "train.lr=2e-3"]),
    "b4-lr1e-2": ({}, ["train.batch_size=4", "train.lr=1e-2"]),
    "b2-lr5e-3": ({}, ["train.batch_size=2", "train.lr=5e-3"]),
    "4k-b4": ({}, ["data.sample_rate=4000", "train.batch_size=4"]),
    "4k-b4-lr5e-3": ({}, ["data.sample_rate=4000", "train.batch_size=4", "train.lr=5e-3"]),
    "4k-b4-lr1e-2": ({}, ["data.sample_rate=4000", "train.batch_size=4", "train.lr=1e-2"]),
    "one-key-b4": ({"keys_hz": ONE_KEY}, ["train.batch_size=4"]),
    "one-key-b4-lr5e-3": ({"keys_hz": ONE_KEY}, ["train.batch_size=4", "train.lr=5e-3"]),
    "4k-one-key-b4-lr5e-3": (
        {"keys_hz": ONE_KEY},
        ["data.sample_rate=4000", "train.batch_size=4", "train.lr=5e-3"],
    ),
    "mol": ({}, ["model.output=mol", "train.bf16=false"]),
}


def trial_config(name: str) -> tuple[MelodyStyle, wavenet.Config]:
    style_fields, overrides = TRIALS[name]
    base = [] if name == "shipped" else BEFORE
    return MelodyStyle(**style_fields), wavenet.load_config("demo", base + overrides)


def step_cost(config: wavenet.Config, repeats: int = 5) -> float:
    """Median one-thread CPU seconds of a training step (the package's loss, backward,
    AdamW; bf16 where `wavenet train` would use it)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = wavenet.WaveNet(config.model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    codes = torch.randint(
        0, config.model.classes, (config.train.batch_size, config.data.target_length + 1)
    )
    bf16 = use_bf16(config.train.bf16, torch.device("cpu")) and config.model.output != "mol"
    loss = loss_function(config.model)
    seconds = []
    for _ in range(repeats + 1):
        start = time.thread_time()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            value = loss(model, Batch(codes), 0)
        value.backward()
        optimizer.step()
        optimizer.zero_grad()
        seconds.append(time.thread_time() - start)
    return sorted(seconds[1:])[repeats // 2]


def run_trial(name: str, steps: int, runs_dir: Path, seconds: float) -> dict:
    style, config = trial_config(name)
    folder = runs_dir / f"{name}-{steps}"
    shutil.rmtree(folder, ignore_errors=True)  # a trial starts from nothing
    rate = config.data.sample_rate
    paths = write_demo_dataset(folder / "data", sample_rate=rate, style=style)
    options = TrainOptions(
        data=folder / "data",
        out=folder / "run",
        steps=steps,
        device="cpu",
        cache_dir=folder / "cache",
    )
    started = time.perf_counter()
    summary = train(config, options)
    train_seconds = time.perf_counter() - started
    model, config, _ = load_model(folder / "run")
    codes = generate(model, int(seconds * rate), generator=torch.Generator().manual_seed(0))
    generated = codes_to_waveform(codes[0], config.model.classes, config.model.coding).numpy()
    sf.write(folder / "generated.wav", generated, rate, subtype="PCM_16")
    clips = [sf.read(path, dtype="float32")[0] for path in paths]
    plot_spectrograms(
        [("training clip", clips[0][: len(generated)]), ("generated", generated)],
        rate,
        folder / "spectrograms.png",
    )
    val_files = prepare_data(config, folder / "data", cache_dir=folder / "cache").val.files
    xz = compressed_bits_per_sample([f.codes for f in val_files], "xz", config.model.classes)
    return {
        "trial": name,
        "style": dataclasses.asdict(style),
        "overrides": TRIALS[name][1],
        "steps": summary.step,
        "train_seconds": round(train_seconds),
        "val_bits": round(summary.best_val_bits, 3) if summary.best_val_bits is not None else None,
        "xz_bits": round(xz, 3),
        **measure(folder),
    }


def measure(folder: Path) -> dict:
    """Flatness and periodicity of FOLDER/generated.wav, the clips in FOLDER/data and
    white noise of the generated length."""
    generated, rate = sf.read(folder / "generated.wav")
    clips = [
        tone_figures(sf.read(path)[0], rate) for path in sorted((folder / "data").glob("*.wav"))
    ]
    try:
        ours = dataclasses.asdict(tone_figures(generated, rate))
    except ValueError:  # silent
        ours = None
    return {
        "generated": ours,
        "clips": {
            "flatness": float(np.mean([f.flatness for f in clips])),
            "periodicity": float(np.mean([f.periodicity for f in clips])),
        },
        "noise": dataclasses.asdict(noise_figures(len(generated), rate)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trials", nargs="*")
    parser.add_argument("--list", action="store_true", help="print the trials and exit")
    parser.add_argument("--steps", type=int, default=950)
    parser.add_argument(
        "--step-cost",
        action="store_true",
        help="print each trial's 1-thread CPU seconds a step and exit",
    )
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="measure the audio of --json's trials again (after a change to "
        "the figures), rewriting their figures in place",
    )
    parser.add_argument("--seconds", type=float, default=4.0, help="generated audio")
    parser.add_argument("--runs-dir", type=Path, default=Path("/tmp/wavenet-demo-trials"))
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "demo_trials.jsonl"
    )
    args = parser.parse_args()
    if args.rescore:
        rows = [json.loads(line) for line in args.json.read_text().splitlines()]
        rows = [
            {**row, **measure(args.runs_dir / f"{row['trial']}-{row['steps']}")} for row in rows
        ]
        args.json.write_text("".join(json.dumps(row) + "\n" for row in rows))
        return
    if args.list or not args.trials:
        for name, (style, overrides) in TRIALS.items():
            print(f"{name:18s} {style or '(shipped melodies)'} {' '.join(overrides)}")
        return
    unknown = [name for name in args.trials if name not in TRIALS]
    if unknown:
        raise SystemExit(f"unknown trials {unknown}; see --list")
    for name in args.trials:
        if args.step_cost:
            print(f"{name}: {step_cost(trial_config(name)[1]):.4f} s a step on one thread")
            continue
        row = run_trial(name, args.steps, args.runs_dir, args.seconds)
        print(json.dumps(row), flush=True)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        with args.json.open("a") as out:
            out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

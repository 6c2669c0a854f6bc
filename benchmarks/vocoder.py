"""What the mel buys: eval bits/sample of a short vocoder run with and without the mel.

    python benchmarks/vocoder.py                 # 400 steps each, ~2 min on 2 cores
    python benchmarks/vocoder.py --steps 800 --set model.layers_per_stack=2
    # Copy synthesis of held-out speech against Griffin-Lim, a vocoder-22k run of 60 CPU
    # minutes (espeak-ng's 22,050 Hz speech from benchmarks/speech_data.py):
    python benchmarks/vocoder.py --preset vocoder-22k --vocoder-only --minutes 60 \
        --copy-synthesis 2 --train-data SPEECH/train --held-out-data SPEECH/held-out

Both runs train the same network (the `tiny` preset) on the same 8 kHz data for the same
steps with the same seed; one adds log-mel
conditioning (20 bands, hop 64, upsampled 8 x 8). Data (--data): band-passed noise
segments (default), pure-tone notes of random pitch, or the demo's plucked-string
melodies, whose noisy excitation the mel cannot predict; or any folders of audio with
--train-data and --held-out-data. Both are scored with `wavenet eval`'s
code on held-out melodies: every sample predicted from a full receptive field. Prints a
table and writes JSON (default benchmarks/results/vocoder.json).

--preset takes another network (a vocoder preset such as `vocoder-22k` keeps its own mel,
and its run without mel drops it); --minutes trains each run for a CPU budget instead of
--steps; --copy-synthesis S adds `wavenet eval`'s copy-synthesis figure for the run with
mel: the log-mel distance (dB) of its resynthesis of the first S seconds of each held-out
file, beside Griffin-Lim's from the same mel (wavenet/eval/copysynth.py).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

import wavenet
from wavenet.data.demo import write_demo_dataset
from wavenet.data.prepare import load_encoded, mel_features, prepare_data
from wavenet.eval.bits import evaluate_codes
from wavenet.eval.copysynth import copy_synthesis
from wavenet.io.checkpoint import load_model
from wavenet.train.loop import TrainOptions, train

MEL = [
    "mel.n_mels=20",
    "mel.n_fft=256",
    "mel.hop_length=64",
    "mel.win_length=256",
    "model.local_channels=20",
    "model.upsample_scales=8,8",
]


def write_sine_melodies(folder: Path, files: int, seconds: float, seed: int) -> None:
    """Notes of pure tone, random pitch (150-700 Hz), length (0.1-0.4 s) and level, with
    5 ms fades: within a note the past predicts the future, at each new note only the
    mel can tell the pitch."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rate = 8000
    for i in range(files):
        audio: list[np.ndarray] = []
        phase = 0.0
        while sum(len(a) for a in audio) < seconds * rate:
            n = int(rng.uniform(0.1, 0.4) * rate)
            frequency, level = np.exp(rng.uniform(np.log(150), np.log(700))), rng.uniform(0.2, 0.6)
            phases = phase + 2 * np.pi * frequency * np.arange(n) / rate
            phase = phases[-1] + 2 * np.pi * frequency / rate
            fade = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / 40)
            audio.append(level * fade * np.sin(phases))
        sf.write(folder / f"notes_{i:02d}.wav", np.concatenate(audio).astype(np.float32), rate)


def write_noise_bands(folder: Path, files: int, seconds: float, seed: int) -> None:
    """Segments of noise band-passed around a random centre (200-3000 Hz) at a random
    level, changing every 0.1-0.4 s: a little like speech, little of it predictable from
    a few milliseconds of past samples, much of it described by the mel."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rate = 8000
    for i in range(files):
        pieces: list[np.ndarray] = []
        while sum(len(p) for p in pieces) < seconds * rate:
            n = int(rng.uniform(0.1, 0.4) * rate)
            centre, level = np.exp(rng.uniform(np.log(200), np.log(3000))), rng.uniform(0.05, 0.5)
            spectrum = np.fft.rfft(rng.standard_normal(n))
            freqs = np.fft.rfftfreq(n, 1 / rate)
            spectrum *= np.exp(-0.5 * ((freqs - centre) / (0.15 * centre)) ** 2)
            piece = np.fft.irfft(spectrum, n)
            pieces.append(level * piece / (np.abs(piece).max() + 1e-9))
        sf.write(folder / f"bands_{i:02d}.wav", np.concatenate(pieces).astype(np.float32), rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument(
        "--data",
        choices=("bands", "plucks", "sines"),
        default="bands",
        help="bands: band-passed noise segments; plucks: the demo's "
        "Karplus-Strong melodies; sines: pure-tone notes",
    )
    parser.add_argument(
        "--train-data",
        type=Path,
        default=None,
        help="a folder of audio to train on instead of --data's synthetic set",
    )
    parser.add_argument(
        "--held-out-data",
        type=Path,
        default=None,
        help="a folder of audio to score (with --train-data)",
    )
    parser.add_argument("--preset", default="tiny", help="the network of both runs")
    parser.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="train each run for this CPU budget instead of --steps",
    )
    parser.add_argument("--vocoder-only", action="store_true", help="train only the run with mel")
    parser.add_argument(
        "--copy-synthesis",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also resynthesize this much of each held-out file with the "
        "vocoder and with Griffin-Lim and report their log-mel distances",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="config override for both runs",
    )
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "vocoder.json"
    )
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        writers: dict[str, Callable[..., Any]] = {
            "bands": write_noise_bands,
            "plucks": write_demo_dataset,
            "sines": write_sine_melodies,
        }
        write = writers[args.data]
        train_data, held_out_data = args.train_data, args.held_out_data
        if train_data is None or held_out_data is None:
            train_data, held_out_data = work / "train", work / "held-out"
            write(train_data, files=10, seconds=6.0, seed=0)
            write(held_out_data, files=4, seconds=6.0, seed=1)
        own_mel = wavenet.load_config(args.preset).model.local_channels is not None
        runs = [
            (
                "without mel",
                ["model.local_channels=none", "model.upsample_scales="] if own_mel else [],
            ),
            ("with mel", [] if own_mel else MEL),
        ]
        common = ["data.val_fraction=0", "train.log_every=50", "train.sample_every=0"]
        if args.preset == "tiny":
            common.append("data.target_length=1000")
        for name, extra in runs[1:] if args.vocoder_only else runs:
            config = wavenet.load_config(args.preset, [*common, *args.overrides, *extra])
            run = work / name.replace(" ", "-")
            started = time.perf_counter()
            budget = None if args.minutes is None else 60.0 * args.minutes
            summary = train(
                config,
                TrainOptions(
                    data=train_data,
                    out=run,
                    steps=None if budget else args.steps,
                    budget=budget,
                    cache_dir=work / "cache",
                ),
            )
            seconds = time.perf_counter() - started
            model, config, _ = load_model(run)
            held_out = load_encoded(
                held_out_data,
                sample_rate=config.data.sample_rate,
                min_length=model.receptive_field + 1,
                cache_dir=work / "cache",
            )
            mels = (
                mel_features(
                    held_out.files,
                    sample_rate=config.data.sample_rate,
                    mel=config.mel,
                    cache_dir=work / "cache",
                )
                if config.model.local_channels is not None
                else None
            )
            result = evaluate_codes(model, [f.codes for f in held_out.files], mels=mels)
            rows.append(
                {
                    "run": name,
                    "data": str(args.train_data or args.data),
                    "preset": args.preset,
                    "steps": summary.step,
                    "minutes": args.minutes,
                    "overrides": args.overrides,
                    "receptive_field": model.receptive_field,
                    "train_seconds": seconds,
                    "last_train_bits": summary.last_train_bits,
                    **result.to_dict(),
                }
            )
            print(
                f"{name:12s} {summary.step} steps ({seconds:.0f} s, last train loss "
                f"{summary.last_train_bits:.3f}): "
                f"{result.bits_per_sample:.3f} bits/sample over {result.samples:,} "
                f"held-out samples",
                flush=True,
            )
            if args.copy_synthesis > 0 and mels is not None:
                rows[-1]["copy_synthesis"] = _copy_synthesis(
                    model, config, held_out_data, work / "cache", args.copy_synthesis
                )
    report: dict = {"rows": rows}
    if len(rows) == 2:
        gain = rows[0]["bits_per_sample"] - rows[1]["bits_per_sample"]
        report["gain_bits"] = gain
        print(
            f"the mel lowers held-out bits/sample by {gain:.3f} "
            f"({100 * gain / rows[0]['bits_per_sample']:.1f}%)"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


def _copy_synthesis(model, config, held_out: Path, cache: Path, seconds: float) -> dict:
    """`wavenet eval`'s copy-synthesis figure on the held-out files, printed."""
    files = prepare_data(config, held_out, cache_dir=cache, purpose="eval").val
    started = time.perf_counter()
    result = copy_synthesis(
        model, config, files, seconds=seconds, generator=torch.Generator().manual_seed(0)
    )
    elapsed = time.perf_counter() - started
    print(
        f"copy synthesis of {len(result.files)} held-out file(s), {seconds:g} s each "
        f"({elapsed:.0f} s): log-mel distance vocoder {result.mean_vocoder_db:.2f} dB, "
        f"Griffin-Lim {result.mean_griffin_lim_db:.2f} dB",
        flush=True,
    )
    return {**result.to_dict(), "seconds": elapsed}


if __name__ == "__main__":
    main()

"""Does training on zero-padded context positions cost generation quality? (issue 27)

    python benchmarks/full_context.py                 # part a (chord) then part b (15 min)
    python benchmarks/full_context.py --part chord    # ~3 min
    python benchmarks/full_context.py --part budget   # ~20 min wall time

`data.full_context = false` (the default) scores every computed position of a crop, the
first receptive_field - 1 of them seeing the causal zero padding instead of audio; `true`
adds receptive_field - 1 codes of real context in front of the targets and scores only
positions with a full past (the paper's crops). Both arms are trained the same way and
judged the same way, with the two runs of a pair started AT THE SAME TIME, one thread each
(OMP_NUM_THREADS=1, MKL_NUM_THREADS=1: the CLI sets no thread count, so torch follows
OMP_NUM_THREADS), so that both see the same machine load.

Part a, chord (the classic WaveNet check): a folder of three-sine chords (220, 277.2,
329.6 Hz at 8 kHz, as tests/helpers.py write_chord) and a held-out chord file with other
phases and noise; per seed (train.seed) and arm, `wavenet train --config tiny --steps 400`,
`wavenet eval RUN --data HELDOUT --json` (held-out bits/sample), and `wavenet generate RUN
--seconds 2 --seed S`, scored by the share of its power (mean removed, Hann window) within
+-3% of the three tones.

Part b, 15-minute budget: the speech set of benchmarks/quality.py (espeak-ng, built once
under --data-dir); `wavenet train --config cpu --minutes 15 --val-data TEST` per arm, then
held-out bits (`wavenet eval`) beside xz -9e of the same codes (quality.baselines), and
for --gen-seeds seeds 4 s of generated audio: the share of active 20 ms frames (rms above
-40 dBFS) against that of the held-out audio, and the long-term average spectrum distance:
mean absolute difference (dB) of 1/3-octave band levels (63 Hz to 6.3 kHz centres) between
the generated clips and the held-out files (absolute levels, and with each spectrum's
total level removed: shape only). The training set's own distance to the held-out set is
printed as the floor.

Prints tables and writes JSON (default benchmarks/results/full_context.json; a part run
alone replaces only its own section, except that an earlier budget result moves to
"budget_earlier" rather than being lost).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import quality
import soundfile as sf
import torch
from machine import cpu_model

from wavenet.io.checkpoint import (
    config_from_checkpoint,
    load_checkpoint,
    resolve_checkpoint,
)

TONES = (220.0, 277.2, 329.6)
CHORD_RATE = 8000
ARMS = (False, True)
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def cli(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "wavenet_cli", *map(str, args)]


def run_pair(commands: list[list[str]], logs: list[Path]) -> list[float]:
    """Start every command at once (one thread each), wait for all -> wall seconds each."""
    env = {**os.environ, **ONE_THREAD}
    started = time.perf_counter()
    procs = []
    for command, log in zip(commands, logs):
        print("$", " ".join(command[2:]), flush=True)
        procs.append(
            subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        )
    seconds = []
    for proc, log in zip(procs, logs):
        if proc.wait() != 0:
            sys.exit(f"failed ({proc.returncode}); see {log}:\n{log.read_text()[-2000:]}")
        seconds.append(time.perf_counter() - started)
    return seconds


def evaluate(run: Path, folder: Path, cache: Path) -> dict[str, Any]:
    out = subprocess.run(
        cli("eval", run, "--data", folder, "--json", "--cache-dir", cache),
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **ONE_THREAD},
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def generate(run: Path, out: Path, seconds: float, seed: int) -> np.ndarray:
    subprocess.run(
        cli(
            "generate", run, "--out", out, "--seconds", str(seconds), "--seed", str(seed), "--force"
        ),
        check=True,
        capture_output=True,
        env={**os.environ, **ONE_THREAD},
    )
    audio, _ = sf.read(str(out), dtype="float64")
    return audio


def steps_of(run: Path) -> int:
    return int(load_checkpoint(resolve_checkpoint(run, prefer="last"))["step"])


# ------------------------------------------------------------------ part a: chord


def write_chord(folder: Path, files: int, seconds: float, seed: int) -> None:
    """tests/helpers.py write_chord: three sines at random phases + a little noise a file."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * CHORD_RATE)) / CHORD_RATE
    for i in range(files):
        phase = rng.uniform(0, 2 * np.pi, 3)
        chord = sum(np.sin(2 * np.pi * f * t + p) for f, p in zip(TONES, phase))
        audio = 0.25 * chord + 0.002 * rng.standard_normal(t.shape)
        sf.write(folder / f"chord {i}.wav", audio.astype(np.float32), CHORD_RATE, subtype="PCM_16")


def tone_share(audio: np.ndarray, rate: int = CHORD_RATE, width: float = 0.03) -> float:
    """Share of the power (mean removed, Hann window) within +-width of the three tones."""
    x = (audio - audio.mean()) * np.hanning(len(audio))
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    near = np.zeros_like(freqs, dtype=bool)
    for f in TONES:
        near |= np.abs(freqs - f) <= width * f
    total = power[1:].sum()
    return float(power[near].sum() / total) if total > 0 else 0.0


def part_chord(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    train, held = tmp / "chord" / "train", tmp / "chord" / "heldout"
    write_chord(train, files=3, seconds=1.5, seed=0)  # write_chord's defaults
    write_chord(held, files=1, seconds=3.0, seed=1)  # other phases and noise
    cache = tmp / "chord-cache"
    rows = []
    for seed in range(args.seeds):
        runs = [tmp / f"chord-{str(fc).lower()}-{seed}" for fc in ARMS]
        commands = [
            cli(
                "train",
                "--data",
                train,
                "--out",
                run,
                "--config",
                "tiny",
                "--steps",
                args.chord_steps,
                "--cache-dir",
                cache,
                "--set",
                f"data.full_context={str(fc).lower()}",
                "--set",
                f"train.seed={seed}",
            )
            for fc, run in zip(ARMS, runs)
        ]
        seconds = run_pair(commands, [run.with_suffix(".log") for run in runs])
        for fc, run, secs in zip(ARMS, runs, seconds):
            bits = evaluate(run, held, cache)["bits_per_sample"]
            audio = generate(run, tmp / f"{run.name}.wav", 2.0, seed)
            rows.append(
                {
                    "full_context": fc,
                    "seed": seed,
                    "steps": steps_of(run),
                    "train_seconds": round(secs, 1),
                    "heldout_bits": round(bits, 4),
                    "tone_share": round(tone_share(audio), 4),
                }
            )
            print(
                f"  full_context={fc!s:5s} seed {seed}: {bits:.3f} bits, "
                f"tone share {rows[-1]['tone_share']:.3f}",
                flush=True,
            )
    summary = {
        str(fc).lower(): {
            k: float(np.median([r[k] for r in rows if r["full_context"] == fc]))
            for k in ("heldout_bits", "tone_share")
        }
        for fc in ARMS
    }
    return {
        "preset": "tiny",
        "steps": args.chord_steps,
        "seeds": args.seeds,
        "tones_hz": TONES,
        "tone_width": 0.03,
        "generated_seconds": 2.0,
        "rows": rows,
        "median": summary,
    }


def print_chord(result: dict[str, Any]) -> None:
    print(
        f"\nchord: tiny, {result['steps']} steps, held-out bits/sample and share of generated "
        f"power within +-3% of {', '.join(f'{t:g}' for t in TONES)} Hz"
    )
    print(
        f"{'seed':>5s} | {'bits (false)':>12s} {'bits (true)':>11s} | {'tones (false)':>13s} "
        f"{'tones (true)':>12s}"
    )
    by = {(r["full_context"], r["seed"]): r for r in result["rows"]}
    for seed in sorted({r["seed"] for r in result["rows"]}):
        f, t = by[(False, seed)], by[(True, seed)]
        print(
            f"{seed:5d} | {f['heldout_bits']:12.3f} {t['heldout_bits']:11.3f} | "
            f"{f['tone_share']:13.3f} {t['tone_share']:12.3f}"
        )
    m = result["median"]
    print(
        f"{'med.':>5s} | {m['false']['heldout_bits']:12.3f} {m['true']['heldout_bits']:11.3f} | "
        f"{m['false']['tone_share']:13.3f} {m['true']['tone_share']:12.3f}"
    )


# ------------------------------------------------------------------ part b: 15-minute budget

FRAME_S = 0.020
ACTIVE_DBFS = -40.0
THIRD_OCTAVE_CENTRES = 1000.0 * 2.0 ** (np.arange(-12, 9) / 3)  # 63 Hz ... 6.3 kHz


def active_frames(audio: np.ndarray, rate: int) -> tuple[int, int]:
    """(active, total) 20 ms frames: rms above -40 dBFS."""
    n = int(FRAME_S * rate)
    frames = audio[: len(audio) // n * n].reshape(-1, n)
    rms = np.sqrt((frames**2).mean(axis=1))
    return int((20 * np.log10(np.maximum(rms, 1e-12)) > ACTIVE_DBFS).sum()), len(frames)


def power_spectrum(clips: list[np.ndarray], n_fft: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Mean power spectrum over every Hann-windowed frame (hop n_fft/2) of every clip."""
    window = np.hanning(n_fft)
    total, count = np.zeros(n_fft // 2 + 1), 0
    for clip in clips:
        for start in range(0, len(clip) - n_fft + 1, n_fft // 2):
            total += np.abs(np.fft.rfft(clip[start : start + n_fft] * window)) ** 2
            count += 1
    return total / max(count, 1), np.fft.rfftfreq(n_fft)


def band_levels(clips: list[np.ndarray], rate: int) -> np.ndarray:
    """1/3-octave band levels (dB) of the long-term average spectrum."""
    power, freqs = power_spectrum(clips)
    freqs = freqs * rate
    levels = []
    for c in THIRD_OCTAVE_CENTRES:
        band = (freqs >= c * 2 ** (-1 / 6)) & (freqs < c * 2 ** (1 / 6))
        levels.append(10 * np.log10(power[band].sum() + 1e-20))
    return np.array(levels)


def spectrum_distance(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean |difference| of band levels (dB); 'shape': with each set's mean level removed."""
    return {
        "abs_db": round(float(np.abs(a - b).mean()), 2),
        "shape_db": round(float(np.abs((a - a.mean()) - (b - b.mean())).mean()), 2),
    }


def read_folder(folder: Path, rate: int) -> list[np.ndarray]:
    import torchaudio.functional as AF

    clips = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".wav", ".flac"}):
        audio, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
        mono = torch.from_numpy(audio.mean(axis=1))
        if file_rate != rate:
            mono = AF.resample(mono, file_rate, rate)
        clips.append(mono.double().numpy())
    return clips


def audio_stats(clips: list[np.ndarray], rate: int) -> dict[str, Any]:
    active = [active_frames(c, rate) for c in clips]
    return {
        "active_share": round(sum(a for a, _ in active) / max(sum(n for _, n in active), 1), 4),
        "bands_db": [round(x, 2) for x in band_levels(clips, rate)],
    }


def part_budget(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    data = quality.speech_set(args.data_dir)
    cache = args.data_dir / "wavenet-cache"
    test = next(iter(data.tests.values()))
    runs = [tmp / f"speech-cpu-{str(fc).lower()}" for fc in ARMS]
    commands = [
        cli(
            "train",
            "--data",
            data.train,
            "--val-data",
            test,
            "--out",
            run,
            "--config",
            "cpu",
            "--minutes",
            args.minutes,
            "--cache-dir",
            cache,
            "--set",
            f"data.full_context={str(fc).lower()}",
        )
        for fc, run in zip(ARMS, runs)
    ]
    seconds = run_pair(commands, [Path(str(run) + ".log") for run in runs])
    load_after = [round(x, 2) for x in os.getloadavg()]
    config = config_from_checkpoint(load_checkpoint(resolve_checkpoint(runs[0], prefer="last")))
    rate = config.data.sample_rate
    held = audio_stats(read_folder(test, rate), rate)
    train_stats = audio_stats(read_folder(data.train, rate), rate)
    held_bands = np.array(held["bands_db"])
    rows = []
    for fc, run, secs in zip(ARMS, runs, seconds):
        row: dict[str, Any] = {
            "full_context": fc,
            "steps": steps_of(run),
            "train_seconds": round(secs, 1),
        }
        for label, folder in data.tests.items():
            bits = evaluate(run, folder, cache)
            base = quality.baselines(config, folder, cache)
            row.setdefault("tests", {})[label] = {
                "heldout_bits": round(bits["bits_per_sample"], 4),
                "scored_samples": bits["samples"],
                "xz_bits": round(base["xz"], 4),
                "unigram_bits": round(base["unigram"], 4),
            }
        clips = [
            generate(run, tmp / f"{run.name}-{seed}.wav", args.gen_seconds, seed)
            for seed in range(args.gen_seeds)
        ]
        per_seed = [audio_stats([c], rate) for c in clips]
        gen = audio_stats(clips, rate)
        row["generated"] = {
            "seconds": args.gen_seconds,
            "seeds": args.gen_seeds,
            "active_share": gen["active_share"],
            "active_share_per_seed": [s["active_share"] for s in per_seed],
            "spectrum_distance": spectrum_distance(np.array(gen["bands_db"]), held_bands),
            "spectrum_distance_per_seed": [
                spectrum_distance(np.array(s["bands_db"]), held_bands) for s in per_seed
            ],
            "bands_db": gen["bands_db"],
        }
        rows.append(row)
        t0 = row["tests"][next(iter(data.tests))]
        print(
            f"  full_context={fc!s:5s}: {row['steps']} steps, {t0['heldout_bits']:.3f} bits "
            f"(xz {t0['xz_bits']:.3f}), active {gen['active_share']:.3f}, spectrum "
            f"{row['generated']['spectrum_distance']['abs_db']:.2f} dB",
            flush=True,
        )
    return {
        "preset": "cpu",
        "minutes": args.minutes,
        "sample_rate": rate,
        "load_average_after_training": load_after,
        "data": {k: quality.audio_size(v) for k, v in {"train": data.train, **data.tests}.items()},
        "heldout": {"folder": test.name, **held},
        "train_set_vs_heldout": {
            "active_share": train_stats["active_share"],
            "spectrum_distance": spectrum_distance(np.array(train_stats["bands_db"]), held_bands),
        },
        "frame_ms": FRAME_S * 1000,
        "active_dbfs": ACTIVE_DBFS,
        "band_centres_hz": [round(c, 1) for c in THIRD_OCTAVE_CENTRES],
        "rows": rows,
    }


def print_budget(result: dict[str, Any]) -> None:
    tests = list(result["rows"][0]["tests"])
    print(
        f"\n15-minute budget: cpu preset, {result['minutes']:g} min each, both at once, 1 thread "
        f"each; speech (held-out: {', '.join(tests)})"
    )
    header = (
        f"{'full_context':12s} {'steps':>6s} "
        + " ".join(f"{'bits ' + t[-9:]:>15s} {'xz':>6s}" for t in tests)
        + f" {'active gen':>10s} {'active held':>11s} {'LTAS dB':>8s} {'shape dB':>8s}"
    )
    print(header)
    print("-" * len(header))
    for r in result["rows"]:
        g = r["generated"]
        cells = " ".join(
            f"{r['tests'][t]['heldout_bits']:15.3f} {r['tests'][t]['xz_bits']:6.3f}" for t in tests
        )
        print(
            f"{str(r['full_context']).lower():12s} {r['steps']:6d} {cells} "
            f"{g['active_share']:10.3f} "
            f"{result['heldout']['active_share']:11.3f} {g['spectrum_distance']['abs_db']:8.2f} "
            f"{g['spectrum_distance']['shape_db']:8.2f}"
        )
        print(
            f"{'':12s} per seed: active {g['active_share_per_seed']}, LTAS dB "
            f"{[d['abs_db'] for d in g['spectrum_distance_per_seed']]}"
        )
    floor = result["train_set_vs_heldout"]
    print(
        f"floor: the training set against the held-out set: active {floor['active_share']:.3f}, "
        f"LTAS {floor['spectrum_distance']['abs_db']:.2f} dB, shape "
        f"{floor['spectrum_distance']['shape_db']:.2f} dB"
    )


# ------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "chord", "budget"), default="all")
    parser.add_argument("--seeds", type=int, default=5, help="chord: train.seed 0..N-1")
    parser.add_argument("--chord-steps", type=int, default=400)
    parser.add_argument("--minutes", type=float, default=15.0, help="budget: per run")
    parser.add_argument("--gen-seeds", type=int, default=3)
    parser.add_argument("--gen-seconds", type=float, default=4.0)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wavenet-bench",
    )
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "full_context.json"
    )
    args = parser.parse_args()

    import wavenet

    machine = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads_per_run": 1,
        "runs_at_once": 2,
        "torch": torch.__version__,
        "wavenet": wavenet.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "note": "a 2-core machine shared with other engineers' test runs: both arms of "
        "a pair ran at once with one thread each, so they saw the same load; "
        "absolute step counts depend on that load",
    }
    print(
        f"machine: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}, "
        f"wavenet {machine['wavenet']}, numpy {machine['numpy']}, python {machine['python']}; "
        f"two runs at once, 1 thread each; load average {machine['load_average_at_start']}"
    )
    print(f"note: {machine['note']}", flush=True)
    result = json.loads(args.json.read_text()) if args.json.exists() else {}
    result["command"] = sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix="wavenet-full-context-") as tmp:
        if args.part in ("all", "chord"):
            result["chord"] = {"machine": machine, **part_chord(args, Path(tmp))}
            print_chord(result["chord"])
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=1))
        if args.part in ("all", "budget"):
            if "budget" in result:  # a rerun keeps the earlier runs beside it
                result.setdefault("budget_earlier", []).append(result.pop("budget"))
            result["budget"] = {"machine": machine, **part_budget(args, Path(tmp))}
            if "chord" in result:
                print_chord(result["chord"])
            print_budget(result["budget"])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

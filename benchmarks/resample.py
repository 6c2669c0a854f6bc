"""Resamplers compared: torchaudio's sinc interpolation against libsoxr (the `soxr` package).

    python benchmarks/resample.py                   # the table, JSON in benchmarks/results/
    python benchmarks/resample.py --seconds 30 --repeats 5

For each conversion (rates users' folders hold, and the awkward 96001 -> 16000 Hz and
11111 -> 8000 Hz, whose torchaudio kernel grows with the product of the rates over their
gcd squared), each resampler is run in a fresh process of its own and measured on:

- alias: a linear sweep from 0 Hz to 0.99 of the input's Nyquist frequency is resampled;
  the output's level (dB) over the time when the sweep is above 1.05 x the output's Nyquist
  (where everything should be filtered out) relative to its level while the sweep is
  below 0.8 x (passband). Lower is better.
- tone: a 1 kHz sine at amplitude 0.5: the output's level error (dB) and the SNR (dB) of
  the output against the exact sine at the new rate (least-squares fit of that
  frequency, the first and last 100 ms left out).
- edge: the level (dB) of a sine at 0.9 x the output's Nyquist: how much of the upper
  passband survives.
- speed: seconds to resample --seconds of noise (median of --repeats), as x real time.
- memory: the process's peak resident memory growth (MiB) during the speed runs (made
  first in the process, so the figure is theirs).

"torchaudio" is `torchaudio.functional.resample` with its defaults, as wavenet/data/audio.py
called it before; where its kernel would exceed the memory the package allowed it
(MAX_RESAMPLE_KERNEL entries), the input rate is moved to the nearest affordable one, as
the package did, and the table says so. "soxr" is `soxr.resample(..., quality="HQ")`.
Prints a table and writes JSON (default benchmarks/results/resample.json).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from machine import cpu_model  # benchmarks/machine.py (the script's folder is on sys.path)

CONVERSIONS = [
    (44100, 16000),
    (48000, 16000),
    (22050, 16000),
    (8000, 16000),
    (48000, 22050),
    (96001, 16000),
    (11111, 8000),
]
METHODS = ("torchaudio", "soxr")
MAX_RESAMPLE_KERNEL = 1 << 24  # the limit wavenet/data/audio.py applied to torchaudio's kernel
MAX_RATE_SHIFT = 0.001


def affordable_rate(orig: int, new: int) -> int:
    """The input rate torchaudio was run at by the package (a nearby one when the exact
    rate's kernel is too big)."""

    def cost(rate: int) -> int:
        g = math.gcd(rate, new)
        return (rate // g) * (new // g)

    if cost(orig) <= MAX_RESAMPLE_KERNEL:
        return orig
    for step in range(1, int(orig * MAX_RATE_SHIFT) + 1):
        for rate in (orig - step, orig + step):
            if cost(rate) <= MAX_RESAMPLE_KERNEL:
                return rate
    raise RuntimeError(f"no affordable rate near {orig}")


def resampler(method: str):
    if method == "soxr":
        import soxr

        return lambda x, orig, new: soxr.resample(x, orig, new, quality="HQ")
    import torch
    import torchaudio.functional as AF

    torch.set_num_threads(1)
    return lambda x, orig, new: AF.resample(torch.from_numpy(x), orig, new).numpy()


def level_db(x: np.ndarray) -> float:
    return 10 * math.log10(float(np.mean(x.astype(np.float64) ** 2)) + 1e-30)


def measure(method: str, orig: int, new: int, seconds: float, repeats: int) -> dict:
    """One resampler on one conversion, in this process."""
    run_rate = affordable_rate(orig, new) if method == "torchaudio" else orig
    rs = resampler(method)

    # speed and memory first, so that the peak-memory growth is that of the timed runs
    noise = np.random.default_rng(0).standard_normal(int(seconds * orig)).astype(np.float32) * 0.1
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        rs(noise, run_rate, new)
        times.append(time.perf_counter() - start)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    # alias: a sweep 0 -> 0.99 x the input's Nyquist over 8 s
    duration = 8.0
    t = np.arange(int(duration * orig)) / orig
    top = 0.99 * orig / 2
    sweep = (0.5 * np.sin(np.pi * top / duration * t**2)).astype(np.float32)
    out = rs(sweep, run_rate, new)
    t_out = np.arange(len(out)) / new
    inst = top * t_out / duration  # the sweep's frequency at each output time
    stop = out[inst > 1.05 * new / 2]
    passband = out[inst < 0.8 * new / 2]
    alias = level_db(stop) - level_db(passband) if len(stop) else None

    def tone(freq: float) -> tuple[float, float]:
        n = int(2.0 * orig)
        x = (0.5 * np.sin(2 * np.pi * freq * np.arange(n) / orig)).astype(np.float32)
        y = rs(x, run_rate, new).astype(np.float64)
        edge = int(0.1 * new)
        y = y[edge : len(y) - edge]
        k = np.arange(edge, edge + len(y)) / new
        basis = np.stack([np.sin(2 * np.pi * freq * k), np.cos(2 * np.pi * freq * k)], axis=1)
        coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
        fit = basis @ coef
        amplitude = float(np.hypot(*coef))
        snr = 10 * math.log10(np.sum(fit**2) / max(np.sum((y - fit) ** 2), 1e-30))
        return 20 * math.log10(amplitude / 0.5), snr

    tone_error, tone_snr = tone(1000.0)
    edge_level, _ = tone(0.9 * min(new, orig) / 2)

    elapsed = statistics.median(times)
    return {
        "method": method,
        "orig_rate": orig,
        "new_rate": new,
        "run_rate": run_rate,
        "alias_db": alias,
        "tone_level_error_db": tone_error,
        "tone_snr_db": tone_snr,
        "edge_level_db": edge_level,
        "seconds": elapsed,
        "x_real_time": seconds / elapsed,
        "peak_memory_growth_mib": (rss_after - rss_before) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio timed per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "resample.json"
    )
    parser.add_argument("--one", nargs=3, metavar=("METHOD", "ORIG", "NEW"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        method, orig, new = args.one[0], int(args.one[1]), int(args.one[2])
        print(json.dumps(measure(method, orig, new, args.seconds, args.repeats)))
        return

    rows = []
    for orig, new in CONVERSIONS:
        for method in METHODS:
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    method,
                    str(orig),
                    str(new),
                    "--seconds",
                    str(args.seconds),
                    "--repeats",
                    str(args.repeats),
                ],
                capture_output=True,
                text=True,
            )
            if done.returncode:
                raise SystemExit(f"{method} {orig}->{new} failed: {done.stderr.strip()[-500:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))

    import soxr
    import torch
    import torchaudio

    versions = {
        "torch": torch.__version__,
        "torchaudio": torchaudio.__version__,
        "soxr": soxr.__version__,
        "numpy": np.__version__,
    }
    print(
        f"{platform.processor() or platform.machine()}; one thread; {args.seconds:g} s of audio "
        f"per timed run; " + ", ".join(f"{k} {v}" for k, v in versions.items())
    )
    header = (
        f"{'conversion':>15} {'method':>10} {'alias dB':>9} {'1k err dB':>9} {'1k SNR':>7} "
        f"{'edge dB':>8} {'x realtime':>10} {'mem MiB':>8}  note"
    )
    print(header)
    for row in rows:
        note = f"run at {row['run_rate']} Hz" if row["run_rate"] != row["orig_rate"] else ""
        alias = f"{row['alias_db']:9.1f}" if row["alias_db"] is not None else f"{'-':>9}"
        print(
            f"{row['orig_rate']:>7}->{row['new_rate']:<7} {row['method']:>10} {alias} "
            f"{row['tone_level_error_db']:9.4f} {row['tone_snr_db']:7.1f} "
            f"{row['edge_level_db']:8.2f} {row['x_real_time']:10.0f} "
            f"{row['peak_memory_growth_mib']:8.1f}  {note}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "versions": versions,
                "machine": platform.machine(),
                "cpu": cpu_model(),
                "seconds": args.seconds,
                "repeats": args.repeats,
                "rows": rows,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

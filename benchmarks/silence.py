"""Why a model's generated audio stays silent: its chance of leaving a pause, against the data's.

    python benchmarks/silence.py RUN --data FOLDER [--data FOLDER2 ...] [--checkpoint best]

A sample is quiet when its value is under -40 dBFS (|x| < 0.01, the level under which
`active_share` calls a 20 ms frame silent). At every position whose last Q samples were
all quiet, the next sample either stays quiet or ends the pause. For each folder, in bins
of the pause's length so far (Q), this prints:

    data  the share of those positions where the next sample is loud: the data's hazard of
          a pause ending, per sample
    model the model's predicted chance of a loud next sample at the same positions (the
          sum of its probabilities over the loud codes), averaged

A model whose chance is well under the data's holds a pause longer than the data does:
after a pause of Q samples it expects it to last about 1 / chance more samples. Pauses at
the end of a file never end in the data: how much of each bin's quiet positions lie in a
file's trailing silence is printed too (`tail`), since every one of those positions
teaches "the pause goes on". Writes JSON beside the table (--json).

Every position is scored with its full receptive field, as `wavenet eval` scores: the
first receptive field of each file is context only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from wavenet.coding.pcm import codes_to_waveform
from wavenet.data.prepare import prepare_data
from wavenet.io.checkpoint import load_model

QUIET = 0.01  # -40 dBFS
# Bins of the pause's length so far, in milliseconds.
EDGES_MS = (0, 5, 20, 50, 100, 200, 400, 800, 1600, 10_000_000)


def quiet_run_lengths(quiet: np.ndarray) -> np.ndarray:
    """quiet (T,) bool -> (T,) int: how many samples up to and including t are quiet in a
    row (0 where t is loud)."""
    run = np.zeros(len(quiet), dtype=np.int64)
    count = 0
    for t, q in enumerate(quiet):
        count = count + 1 if q else 0
        run[t] = count
    return run


@torch.inference_mode()
def loud_chance(
    model, codes: np.ndarray, loud_codes: torch.Tensor, chunk: int = 16000
) -> np.ndarray:
    """codes (T,) -> (T,) the model's probability that code t + 1 is loud, for t >= rf - 1
    (NaN before: those positions lack a full receptive field)."""
    rf = model.receptive_field
    out = np.full(len(codes), np.nan)
    x = torch.from_numpy(codes.astype(np.int64))
    for start in range(rf - 1, len(codes) - 1, chunk):
        stop = min(start + chunk, len(codes) - 1)
        window = x[start - (rf - 1) : stop][None]
        logits = model(window)[0, :, rf - 1 :]  # positions start ... stop - 1
        probs = torch.softmax(logits.double(), dim=0)
        out[start:stop] = probs[loud_codes].sum(dim=0).numpy()
    return out


def hazard_table(model, config, folder: Path, cache_dir: Path | None) -> list[dict]:
    files = prepare_data(config, folder, cache_dir=cache_dir, purpose="eval").val.files
    q = config.model.quantization_channels
    values = codes_to_waveform(torch.arange(q), q).numpy()
    loud_codes = torch.from_numpy(np.nonzero(np.abs(values) >= QUIET)[0])
    rate = config.data.sample_rate
    edges = [int(ms * rate / 1000) for ms in EDGES_MS]
    sums = np.zeros((len(edges) - 1, 4))  # positions, loud next (data), model chance, in tail
    for file in files:
        codes = np.asarray(file.codes)
        quiet = np.abs(values[codes]) < QUIET
        run = quiet_run_lengths(quiet)
        chance = loud_chance(model, codes, loud_codes)
        loud_indices = np.nonzero(~quiet)[0]
        last_loud = loud_indices[-1] if len(loud_indices) else -1
        t = np.arange(len(codes) - 1)
        usable = (run[:-1] > 0) & ~np.isnan(chance[:-1])
        next_loud = ~quiet[1:]
        in_tail = t > last_loud
        which = np.searchsorted(edges, run[:-1], side="right") - 1
        for b in range(len(edges) - 1):
            m = usable & (which == b)
            sums[b] += (m.sum(), next_loud[m].sum(), chance[:-1][m].sum(), in_tail[m].sum())
    rows = []
    for b in range(len(edges) - 1):
        n = sums[b, 0]
        rows.append(
            {
                "pause_ms": [EDGES_MS[b], EDGES_MS[b + 1]],
                "positions": int(n),
                "data_hazard": sums[b, 1] / n if n else None,
                "model_hazard": sums[b, 2] / n if n else None,
                "tail_share": sums[b, 3] / n if n else None,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    model, config, payload = load_model(args.run)
    folders: dict[str, list[dict]] = {}
    report = {"run": str(args.run), "step": payload.get("step"), "folders": folders}
    print(f"{args.run} (step {payload.get('step')})")
    for folder in args.data:
        rows = hazard_table(model, config, folder, args.cache_dir)
        folders[str(folder)] = rows
        print(f"\n{folder}")
        print(
            f"{'pause so far, ms':>18s} {'positions':>10s} {'data':>9s} {'model':>9s} "
            f"{'model/data':>10s} {'tail':>6s}"
        )
        for r in rows:
            if not r["positions"]:
                continue
            ratio = r["model_hazard"] / r["data_hazard"] if r["data_hazard"] else float("nan")
            low, high = r["pause_ms"]
            span = f"{low}-{high}" if high < 10_000_000 else f"{low}+"
            print(
                f"{span:>18s} {r['positions']:10d} {r['data_hazard']:9.5f} "
                f"{r['model_hazard']:9.5f} {ratio:10.2f} {r['tail_share']:6.2f}"
            )
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

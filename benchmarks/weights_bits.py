"""Held-out bits of trained runs with their products in each weight format.

    python benchmarks/weights_bits.py RUN TEST_FOLDER [RUN TEST_FOLDER ...]
    python benchmarks/weights_bits.py runs/speech ~/.cache/wavenet-bench/speech-*/test \\
        --weights bf16 int8 bf16-dot int8-dot --json results/weights_bits.json

What a reduced format (`wavenet/generation/reduced.py`, `generate(..., weights=...)`)
costs a model that was trained in float32: each run's model (as `wavenet eval` loads it)
is scored on the folder's held-out codes in float32 and in each format, in this process,
the "-dot" formats through `reduced.dot_logits` (their activations are reduced too). The
same scoring as `quality.py --weights`, for runs that already exist; `xz -9e` of the
same codes is printed beside them as the floor a model must beat. For a vocoder,
--copy-synthesis S also resynthesizes the first S seconds of each held-out file from its
mel in each format, with the same seed (`wavenet.eval.copysynth`: log-mel distance in dB
to the recording, Griffin-Lim's beside it).

Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch
from machine import cpu_model  # benchmarks/machine.py (the script's folder is on sys.path)
from quality import baselines, reduced_bits

FORMATS = ("bf16", "int8", "bf16-dot", "int8-dot")


def copy_distances(run: Path, folder: Path, args: argparse.Namespace) -> dict[str, float]:
    """Mean log-mel distance (dB) of the vocoder's resynthesis of the held-out files in
    each format (the same seed for all), and Griffin-Lim's from the same mels."""
    from wavenet.data.prepare import prepare_data
    from wavenet.eval.copysynth import copy_synthesis
    from wavenet.io.checkpoint import load_model

    model, config, _ = load_model(run, device="cpu")
    files = prepare_data(
        config, folder, cache_dir=args.cache_dir, purpose="eval", exclude=[run]
    ).val
    distances: dict[str, float] = {}
    for fmt in ["float32", *args.weights]:
        result = copy_synthesis(
            model,
            config,
            files,
            seconds=args.copy_synthesis,
            generator=torch.Generator().manual_seed(0),
            weights=fmt,
        )
        distances[fmt] = sum(result.vocoder_db) / len(result.vocoder_db)
        distances["griffin_lim"] = sum(result.griffin_lim_db) / len(result.griffin_lim_db)
        print(f"  copy synthesis {fmt}: {distances[fmt]:.3f} dB", flush=True)
    print(f"  copy synthesis Griffin-Lim: {distances['griffin_lim']:.3f} dB")
    return distances


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pairs", nargs="+", type=Path, help="RUN TEST_FOLDER, repeated")
    parser.add_argument("--weights", nargs="+", choices=FORMATS, default=list(FORMATS))
    parser.add_argument("--device", default=None)
    parser.add_argument(
        "--copy-synthesis",
        type=float,
        default=0.0,
        metavar="S",
        help="for vocoder runs, also the copy-synthesis distance of S seconds per file",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path.home() / ".cache" / "wavenet-bench" / "wavenet-cache",
        help="wavenet's decoded-audio cache [default: the benchmarks' own]",
    )
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "weights_bits.json"
    )
    args = parser.parse_args()
    if len(args.pairs) % 2:
        parser.error("give RUN TEST_FOLDER pairs")
    from wavenet.io.checkpoint import load_model

    rows = []
    for run, folder in zip(args.pairs[0::2], args.pairs[1::2]):
        _, config, payload = load_model(run, device="cpu")
        bits = reduced_bits(run, folder, args.weights, args)
        xz = baselines(config, folder, args.cache_dir)["xz"]
        rows.append(
            {
                "run": str(run),
                "test": str(folder),
                "step": payload["step"],
                "xz_bits": xz,
                "bits": bits,
                "cost": {f: bits[f] - bits["float32"] for f in args.weights},
            }
        )
        cost = ", ".join(f"{f} {rows[-1]['cost'][f]:+.4f}" for f in args.weights)
        print(f"{run} on {folder.name}: float32 {bits['float32']:.4f} (xz -9e {xz:.3f}); {cost}")
        if args.copy_synthesis > 0 and config.model.local_channels is not None:
            rows[-1]["copy_synthesis_db"] = copy_distances(run, folder, args)
    machine = {"cpu": cpu_model(), "torch": torch.__version__, "python": platform.python_version()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

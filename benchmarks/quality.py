"""Held-out bits/sample after a training budget, beside xz -9e and bzip2 -9 of the same codes.

    python benchmarks/quality.py                # `cpu` preset (else `default`), 15 min a set
    python benchmarks/quality.py --preset cpu --preset default --datasets speech
    python benchmarks/quality.py --preset tiny --steps 20  # smoke test, ~2 min with the sets built
    python benchmarks/quality.py --preset mol --datasets speech  # 16-bit output beside flac
    python benchmarks/quality.py --output mol              # the default preset with a mol head
    python benchmarks/quality.py --datasets asterisk-en wesnoth --sizes 30s 5min 20min full

Data sets, written by programs nobody here wrote and cached under --data-dir (built once,
in a folder named by a hash of their recipe, so a changed recipe builds afresh):
  speech: espeak-ng, 48 sentences in 5 voices for training; 12 other sentences in 2 of
          those voices (test) and in a voice heard in no training file (test, new voice)
          (`speech_data.py --large`);
  piano:  random pieces written as MIDI by `piano_data.py` and rendered by fluidsynth;
          16 pieces for training, 3 pieces from other seeds for test.
  plucks: the demo's plucked-string melodies at 16 kHz (`wavenet.data.demo`, synthetic
          music that needs no outside tool), 24 x 10 s to train, 6 x 10 s to test.
and real recordings from Debian packages (`recorded_data.py`: package, version, licence):
  asterisk-en, asterisk-fr: the Asterisk PBX prompts (CC-BY-SA-3.0), one speaker each,
          8 kHz, ~25 min; a tenth of the files (by a hash of their path) to test. Their
          runs train at 8 kHz (`--set data.sample_rate=8000`, the set's `overrides`).
  wesnoth: the game's orchestral music (GPL-2+), 41 tracks cut into 10 s pieces at
          16 kHz; the pieces of 4 whole tracks to test.
--sizes 30s 5min 20min full trains each set also on a subset of its training folder:
files in a fixed seeded shuffled order until their duration reaches the size (symlinks in
a folder beside the set's; the test folders stay whole).

For every data set, size and preset, `wavenet train --data TRAIN --config PRESET
--minutes M` (and/or --steps N) trains a run, which holds out its own validation files
(the config's `data.val_fraction` of TRAIN, by file), so the checkpoint it keeps (best.pt)
is chosen without seeing the test sets; `wavenet eval RUN --data TEST --json` then scores
every test set, and the baselines are computed on the very codes eval scores
(`prepare_data(run config, TEST, purpose="eval")`, through the same cache): the unigram
entropy of the codes, and `xz -9e` and `bzip2 -9` of the codes as one byte stream
(`wavenet.eval.compression`). The compressors see every code of a file, the model scores all
but the first receptive field of each (its context), so the comparison, if anything,
favours the compressors. Prints a table per data set and writes JSON
(default benchmarks/results/quality.json).

A run whose model predicts 16-bit audio (`model.output = "mol"`: a mol preset, or
`--output mol`) is scored in bits per 16-bit sample, and its baselines are taken on the
16-bit samples eval scores: `flac --best` of each file written as a 16-bit mono WAV
(compressed bytes x 8 / samples, headers included), and the unigram entropy and xz -9e /
bzip2 -9 of the samples as little-endian 16-bit words.

Beside the bits, each run generates --gen-seconds (4) of audio for 3 seeds (`wavenet
generate RUN --seed K`, the checkpoint eval uses too: best.pt, else last.pt, its EMA
weights when it has them) and reports the share of its active 20 ms frames (above -40
dBFS, `wavenet.data.features.active_share`) against the held-out test audio's (decoded at
the run's sample rate), their ratio, and the distance of their long-term average spectra
(`wavenet.eval.likeness.spectrum_distance_db`: rms dB over 50 Hz-8 kHz, levels aside),
with the run's final and best validation bits and the best's step (RUN/metrics.jsonl).

--weights bf16 int8 also scores each run's model with its product weights reduced to
those formats (`wavenet.generation.reduced.reduced_model`, what the CPU kernel generates
with `weights=...`), in this process on the same held-out codes, beside float32 scored the
same way (which must equal `wavenet eval`'s figure): the held-out bits each format costs.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import piano_data
import recorded_data
import soundfile as sf
import speech_data
import torch
from machine import cpu_model

from wavenet.config import Config, preset_names
from wavenet.data.audio import decode_audio
from wavenet.data.features import active_share
from wavenet.data.prepare import find_audio_files, prepare_data
from wavenet.eval.compression import baseline_bits
from wavenet.eval.likeness import spectrum_distance_db
from wavenet.io.checkpoint import config_from_checkpoint, load_checkpoint, resolve_checkpoint

DATASETS = ("speech", "piano", "plucks", "asterisk-en", "asterisk-fr", "wesnoth")
GENERATE_SEEDS = (0, 1, 2)
SUBSET_SEED = 0  # the shuffled order a size subset takes training files in


@dataclass(frozen=True)
class DataSet:
    name: str
    train: Path
    tests: dict[str, Path]  # label -> folder, only scored (training validates on its own)
    overrides: tuple[str, ...] = ()  # --set SECTION.KEY=VALUE for every run on this set


# ------------------------------------------------------------------ data sets (cached)


def _recipe_hash(recipe: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]


def cached_build(folder: Path, recipe: dict[str, Any], build: Callable[[Path], Any]) -> None:
    """Run `build(folder)` unless `folder/manifest.json` says this recipe was built there."""
    manifest = folder / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text())["recipe"] == recipe:
        return
    print(f"building {folder} ...", flush=True)
    started = time.perf_counter()
    contents = build(folder)
    manifest.write_text(json.dumps({"recipe": recipe, "contents": contents}, indent=1))
    print(f"built {folder} in {time.perf_counter() - started:.0f} s", flush=True)


def speech_set(data_dir: Path) -> DataSet:
    recipe = {
        "version": 1,
        "rate": speech_data.LARGE_SAMPLE_RATE,
        "train": speech_data.TRAIN_SENTENCES + speech_data.MORE_TRAIN_SENTENCES,
        "held_out": speech_data.HELD_OUT_SENTENCES + speech_data.MORE_HELD_OUT_SENTENCES,
        "voices": [dataclasses.asdict(v) for v in speech_data.LARGE_TRAIN_VOICES],
        "test_voices": [dataclasses.asdict(v) for v in speech_data.LARGE_TEST_VOICES],
        "new_voice": dataclasses.asdict(speech_data.LARGE_NEW_VOICE),
    }
    folder = data_dir / f"speech-{_recipe_hash(recipe)}"
    speech_data.require("espeak-ng", "sox")
    cached_build(folder, recipe, speech_data.write_large_set)
    return DataSet(
        "speech",
        folder / "train",
        {"speech": folder / "test", "speech, new voice": folder / "test-new-voice"},
    )


def plucks_set(data_dir: Path) -> DataSet:
    """Music without outside tools: the demo's plucked-string melodies (Karplus-Strong,
    `wavenet.data.demo`), 24 x 10 s for training and 6 x 10 s from other seeds for test.
    Synthetic: a stand-in for piano where fluidsynth is not installed."""
    from wavenet.data.demo import write_demo_dataset

    parts = {"train": (24, 10.0, 0), "test": (6, 10.0, 1000)}  # files, seconds, seed
    # Lists, as the manifest stores them (a recipe equal to the stored one is not rebuilt).
    recipe: dict[str, Any] = {"version": 1, "rate": 16000, **{k: list(v) for k, v in parts.items()}}

    def build(out: Path) -> dict[str, int]:
        for name, (files, seconds, seed) in parts.items():
            write_demo_dataset(
                out / name, files=files, seconds=seconds, sample_rate=16000, seed=seed
            )
        return {name: files for name, (files, _, _) in parts.items()}

    folder = data_dir / f"plucks-{_recipe_hash(recipe)}"
    cached_build(folder, recipe, build)
    return DataSet("plucks", folder / "train", {"plucks": folder / "test"})


def piano_set(data_dir: Path, soundfont: Path) -> DataSet:
    recipe = {
        "version": 1,
        "rate": piano_data.SAMPLE_RATE,
        "soundfont": str(soundfont),
        "train": piano_data.TRAIN_PIECES,
        "test": piano_data.TEST_PIECES,
        "seconds": piano_data.PIECE_SECONDS,
        "test_seeds_from": piano_data.TEST_SEED_OFFSET,
    }
    folder = data_dir / f"piano-{_recipe_hash(recipe)}"
    speech_data.require("fluidsynth", "sox")
    if not soundfont.is_file():
        sys.exit(f"sound font {soundfont} not found (Debian: apt install fluid-soundfont-gm)")
    cached_build(folder, recipe, lambda out: piano_data.write_piano_set(out, soundfont))
    return DataSet("piano", folder / "train", {"piano": folder / "test"})


def recorded_set(data_dir: Path, name: str) -> DataSet:
    """A set of real recordings from a Debian package (`recorded_data.py`)."""
    source = recorded_data.SOURCES[name]
    recipe: dict[str, Any] = {
        "version": 2,
        "package": source.package,
        "skipped_folders": list(recorded_data.SKIPPED_PROMPT_FOLDERS),
        "package_version": recorded_data.require_source(source),
        "kind": source.kind,
        "test_modulus": recorded_data.TEST_MODULUS,
    }
    if source.kind == "tracks":
        recipe.update(
            rate=recorded_data.TRACK_RATE,
            piece_seconds=recorded_data.PIECE_SECONDS,
            min_piece_seconds=recorded_data.MIN_PIECE_SECONDS,
            test_tracks=recorded_data.TEST_TRACKS,
            test_pieces_per_track=recorded_data.TEST_PIECES_PER_TRACK,
        )
    folder = data_dir / f"{name}-{_recipe_hash(recipe)}"
    cached_build(folder, recipe, lambda out: recorded_data.write_set(name, out))
    # The prompts are 8 kHz recordings: their runs model them at 8 kHz, not upsampled.
    overrides = ("data.sample_rate=8000",) if source.kind == "prompts" else ()
    return DataSet(name, folder / "train", {name: folder / "test"}, overrides)


# ------------------------------------------------------------------ folder sizes

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)(s|min|h)$")
_UNIT_SECONDS = {"s": 1.0, "min": 60.0, "h": 3600.0}


def size_seconds(size: str) -> float | None:
    """'30s' -> 30.0, '5min' -> 300.0, '1h' -> 3600.0, 'full' -> None (the whole set)."""
    if size == "full":
        return None
    match = _SIZE.match(size)
    if match is None or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(
            f"a size is a duration like 30s, 5min, 1.5h, or 'full'; got {size!r}"
        )
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_size(size: str) -> str:
    size_seconds(size)
    return size


def training_subset(data: DataSet, size: str) -> DataSet:
    """The set with its training folder cut to `size`: its training files in a shuffled
    order (seeded, so every run takes the same ones) until their total duration reaches
    the size, as symlinks in a folder beside the training folder ('full': the set)."""
    seconds = size_seconds(size)
    if seconds is None:
        return data
    files = find_audio_files(data.train)
    random.Random(SUBSET_SEED).shuffle(files)
    chosen, total = [], 0.0
    for path in files:
        if total >= seconds:
            break
        chosen.append(path)
        total += sf.info(str(path)).duration
    folder = data.train.parent / f"train-{size}"
    wanted = {path.relative_to(data.train).as_posix(): path.resolve() for path in chosen}
    if folder.exists():
        present = {p.relative_to(folder).as_posix(): p.resolve() for p in find_audio_files(folder)}
        if present == wanted:  # kept: another run may be training on it now
            return dataclasses.replace(data, train=folder)
    building = Path(tempfile.mkdtemp(prefix=f"train-{size}-", dir=data.train.parent))
    for relative, target in wanted.items():
        link = building / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)
    if folder.exists():
        shutil.rmtree(folder)
    building.rename(folder)
    return dataclasses.replace(data, train=folder)


def audio_size(folder: Path) -> dict[str, float | int]:
    files = find_audio_files(folder)
    return {"files": len(files), "seconds": round(sum(sf.info(str(f)).duration for f in files), 1)}


# ------------------------------------------------------------------ train, eval, baselines


# The interpreter whose `wavenet` trains, scores and generates (--cli-python): another
# environment's, to measure the package at another commit on the same data.
CLI_PYTHON = [sys.executable]


def wavenet_cli(*args: str | Path) -> list[str]:
    return [*CLI_PYTHON, "-m", "wavenet_cli", *map(str, args)]


def train_has_minutes() -> bool:
    """Whether this checkout's `wavenet train` takes --minutes (issue 14, item 1)."""
    help_text = subprocess.run(
        wavenet_cli("train", "--help"), capture_output=True, text=True, check=True
    ).stdout
    return "--minutes" in help_text


def train(data: DataSet, preset: str, run: Path, args: argparse.Namespace) -> float:
    """`wavenet train` with the budget -> wall-clock seconds it took. No --val-data: the
    run validates on its own held-out share of the training folder (data.val_fraction, by
    file), so the test sets choose nothing."""
    command = wavenet_cli(
        "train",
        "--data",
        data.train,
        "--out",
        run,
        "--config",
        preset,
        "--cache-dir",
        args.cache_dir,
    )
    if args.minutes is not None:
        command += ["--minutes", str(args.minutes)]
    if args.steps is not None:
        command += ["--steps", str(args.steps)]
    if args.device is not None:
        command += ["--device", args.device]
    for override in [*data.overrides, *args.overrides]:
        command += ["--set", override]
    print("$", " ".join(command[1:]), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def evaluate(run: Path, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """`wavenet eval RUN --data FOLDER --json` -> its JSON object."""
    command = wavenet_cli("eval", run, "--data", folder, "--json", "--cache-dir", args.cache_dir)
    if args.device is not None:
        command += ["--device", args.device]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


_baselines: dict[tuple[str, str], dict[str, float | int]] = {}


def baselines(config: Config, folder: Path, cache_dir: Path) -> dict[str, float | int]:
    """Unigram, xz -9e and bzip2 -9 bits/sample of the codes `wavenet eval` scores for
    `config` (same decode, resampling, trimming, skipped files and cache)."""
    key = (
        str(folder),
        json.dumps(
            [config.model.classes, config.model.coding, dataclasses.asdict(config.data)],
            sort_keys=True,
        ),
    )
    if key not in _baselines:
        files = prepare_data(config, folder, cache_dir=cache_dir, purpose="eval").val.files
        _baselines[key] = baseline_bits([f.codes for f in files], config.model.classes)
        if config.model.output == "mol":
            _baselines[key]["flac"] = flac_bits(config, folder, cache_dir)
    return _baselines[key]


def flac_bits(config: Config, folder: Path, cache_dir: Path) -> float:
    """`flac --best` bits per sample of the 16-bit samples that `wavenet eval` scores for a
    mol `config`: each file written as a 16-bit mono WAV at the run's sample rate and
    compressed; total compressed bytes x 8 / total samples."""
    from wavenet.coding.pcm import pcm16_samples

    files = prepare_data(config, folder, cache_dir=cache_dir, purpose="eval").val.files
    total_bytes = total_samples = 0
    with tempfile.TemporaryDirectory(prefix="wavenet-flac-") as tmp:
        for i, file in enumerate(files):
            wav, flac = Path(tmp) / f"{i}.wav", Path(tmp) / f"{i}.flac"
            samples = pcm16_samples(torch.from_numpy(file.codes.astype("int64")))
            sf.write(wav, samples, config.data.sample_rate, subtype="PCM_16")
            subprocess.run(
                ["flac", "--best", "--silent", "--force", "-o", str(flac), str(wav)], check=True
            )
            total_bytes += flac.stat().st_size
            total_samples += len(samples)
    return total_bytes * 8 / total_samples


def reduced_bits(run: Path, folder: Path, formats: list[str], args: argparse.Namespace) -> dict:
    """Held-out bits of the run's model (as `wavenet eval` loads it) with its product
    weights in each format, float32 included, on the codes `wavenet eval` scores."""
    from wavenet.eval.bits import evaluate_codes
    from wavenet.generation.reduced import dot_logits, reduced_model
    from wavenet.io.checkpoint import load_model, speakers_from_checkpoint

    model, config, payload = load_model(run, device=args.device or "cpu")
    files = prepare_data(
        config,
        folder,
        speakers=speakers_from_checkpoint(payload),
        cache_dir=args.cache_dir,
        purpose="eval",
        exclude=[run],
    ).val
    bits = {}
    for fmt in ["float32", *formats]:
        reduced = reduced_model(model, fmt)
        result = evaluate_codes(
            reduced,
            [f.codes for f in files.files],
            global_ids=files.global_ids,
            mels=files.mels,
            # The -dot formats reduce activations too, which the model's forward does not.
            logits_of=functools.partial(dot_logits, reduced, fmt) if fmt.endswith("-dot") else None,
        )
        bits[fmt] = result.bits_per_sample
    return bits


# ------------------------------------------------------------------ generated audio


def generate(run: Path, seconds: float, args: argparse.Namespace) -> dict[str, Any]:
    """`wavenet generate RUN --seconds S --seed K` for each seed (the checkpoint eval
    uses) -> the waveforms as written (16-bit files read back) and their paths."""
    folder = run / "quality-generated"
    folder.mkdir(parents=True, exist_ok=True)
    waves, paths, rate = [], [], None
    for seed in GENERATE_SEEDS:
        out = folder / f"seed{seed}.wav"
        command = wavenet_cli(
            "generate", run, "--seconds", str(seconds), "--seed", str(seed), "--out", out, "--force"
        )
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        audio, rate = sf.read(str(out), dtype="float32", always_2d=True)
        waves.append(audio.mean(axis=1))
        paths.append(str(out))
    return {"waves": waves, "paths": paths, "sample_rate": rate}


_held_out: dict[tuple[str, int], list[np.ndarray]] = {}


def held_out_audio(folder: Path, sample_rate: int) -> list[np.ndarray]:
    """Every test file decoded (mono) at the run's sample rate, as the package reads it."""
    key = (str(folder), sample_rate)
    if key not in _held_out:
        _held_out[key] = [decode_audio(f, sample_rate) for f in find_audio_files(folder)]
    return _held_out[key]


def activity(waves: list[np.ndarray], sample_rate: int) -> float:
    """The share of active 20 ms frames over all the waveforms (each weighted by its
    frame count, as if one recording)."""
    frame = int(round(0.02 * sample_rate))
    counts = [max(1, len(w) // frame) for w in waves]
    shares = [active_share(w, sample_rate) for w in waves]
    return float(np.dot(shares, counts) / sum(counts))


def likeness(generated: dict[str, Any], folder: Path, sample_rate: int) -> dict[str, Any]:
    """Activity and spectrum of the generated audio against the test folder's."""
    if generated["sample_rate"] != sample_rate:
        raise RuntimeError(
            f"generated audio is at {generated['sample_rate']} Hz, the run at {sample_rate} Hz"
        )
    reference = held_out_audio(folder, sample_rate)
    per_seed = [active_share(w, sample_rate) for w in generated["waves"]]
    generated_share = activity(generated["waves"], sample_rate)
    held_out_share = activity(reference, sample_rate)
    return {
        "generated_active": generated_share,
        "generated_active_per_seed": per_seed,
        "held_out_active": held_out_share,
        "active_ratio": generated_share / held_out_share if held_out_share > 0 else None,
        "spectrum_distance_db": spectrum_distance_db(generated["waves"], reference, sample_rate),
    }


def validation_history(run: Path) -> dict[str, Any]:
    """The run's final and best validation bits and the best's step, from
    RUN/metrics.jsonl (None where the run never validated)."""
    records = []
    path = run / "metrics.jsonl"
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                if record.get("val_bits") is not None:
                    records.append(record)
    if not records:
        return {"final_val_bits": None, "best_val_bits": None, "best_val_step": None}
    best = min(records, key=lambda r: r["val_bits"])
    return {
        "final_val_bits": records[-1]["val_bits"],
        "final_val_step": records[-1]["step"],
        "best_val_bits": best["val_bits"],
        "best_val_step": best["step"],
        "validations": len(records),
    }


def measure(
    data: DataSet, size: str, preset: str, runs: Path, args: argparse.Namespace
) -> list[dict[str, Any]]:
    data = training_subset(data, size)
    run = runs / f"{data.name}-{size}-{preset}"
    seconds = train(data, preset, run, args)
    payload = load_checkpoint(resolve_checkpoint(run, prefer="last"))
    config = config_from_checkpoint(payload)
    # What `wavenet eval` and `wavenet generate` load: load_model -> resolve_checkpoint's
    # default, best.pt when the run has one, else last.pt (EMA weights when present).
    kept_path = resolve_checkpoint(run)
    kept = payload if kept_path.name == "last.pt" else load_checkpoint(kept_path)
    kept_info = {
        "checkpoint": kept_path.name,
        "checkpoint_step": kept["step"],
        "checkpoint_ema": kept.get("ema") is not None,
        "checkpoint_best_val_bits": kept.get("best_val_bits"),
        "checkpoint_best_step": (payload.get("extra") or {}).get("best_step"),
    }
    folder_size = audio_size(data.train)
    run_data = (payload.get("extra") or {}).get("data") or {}
    generated = generate(run, args.gen_seconds, args)
    rows = []
    for label, folder in data.tests.items():
        model = evaluate(run, folder, args)
        base = baselines(config, folder, args.cache_dir)
        rows.append(
            {
                "data": data.name,
                "test": label,
                "size": size,
                "train_folder_files": folder_size["files"],
                "train_folder_seconds": folder_size["seconds"],
                "trained_files": run_data.get("train_files"),
                "trained_seconds": run_data.get("train_seconds"),
                "val_files": run_data.get("val_files"),
                "preset": preset,
                "budget": budget_text(args),
                "minutes": args.minutes,
                "steps_asked": args.steps,
                "steps": payload["step"],
                "train_seconds": round(seconds, 1),
                "overrides": [*data.overrides, *args.overrides],
                "sample_rate": config.data.sample_rate,
                "model_bits": model["bits_per_sample"],
                "scored_samples": model["samples"],
                "unigram_bits": base["unigram"],
                "xz_bits": base["xz"],
                "bzip2_bits": base["bzip2"],
                "baseline_samples": base["samples"],
                "below_xz": base["xz"] - model["bits_per_sample"],
                "output": config.model.output,
                **kept_info,
                **validation_history(run),
                "gen_seconds": args.gen_seconds,
                "gen_seeds": list(GENERATE_SEEDS),
                "generated_files": generated["paths"] if args.runs_dir is not None else None,
                **likeness(generated, folder, config.data.sample_rate),
            }
        )
        if "flac" in base:
            rows[-1].update(
                flac_bits=base["flac"], below_flac=base["flac"] - model["bits_per_sample"]
            )
        if args.weights:
            bits = reduced_bits(run, folder, args.weights, args)
            rows[-1]["weights_bits"] = bits
            rows[-1]["weights_cost"] = {f: bits[f] - bits["float32"] for f in args.weights}
    return rows


# ------------------------------------------------------------------ report


def budget_text(args: argparse.Namespace) -> str:
    parts = ([f"{args.minutes:g} min"] if args.minutes is not None else []) + (
        [f"{args.steps} steps"] if args.steps is not None else []
    )
    return ", ".join(parts)


def print_table(name: str, sizes: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    tests = ", ".join(
        f"{label} {s['seconds']:.0f} s ({s['files']} files)" for label, s in sizes["tests"].items()
    )
    print(
        f"\n{name}: train {sizes['train']['seconds']:.0f} s ({sizes['train']['files']} files); "
        f"test {tests}"
    )
    header = (
        f"{'test set':18s} {'size':>6s} {'train s':>7s} {'fit s':>7s} "
        f"{'preset':8s} {'output':11s} {'budget':14s} {'steps':>6s} "
        f"{'model':>7s} {'unigram':>8s} {'xz -9e':>7s} {'bzip2 -9':>8s} {'below xz':>8s} "
        f"{'flac':>7s} {'below flac':>10s}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        flac = (
            f"{r['flac_bits']:7.3f} {r['below_flac']:10.3f}"
            if "flac_bits" in r
            else f"{'':7s} {'':10s}"
        )
        print(
            f"{r['test']:18s} {r['size']:>6s} {r['train_folder_seconds']:7.0f} "
            f"{_seconds(r['trained_seconds']):>7s} "
            f"{r['preset']:8s} {r.get('output', 'categorical'):11s} "
            f"{r['budget']:14s} {r['steps']:6d} "
            f"{r['model_bits']:7.3f} {r['unigram_bits']:8.3f} {r['xz_bits']:7.3f} "
            f"{r['bzip2_bits']:8.3f} {r['below_xz']:8.3f} {flac}"
        )
    for r in rows:
        if "weights_bits" in r:
            cost = ", ".join(
                f"{f} {r['weights_bits'][f]:.4f} ({r['weights_cost'][f]:+.4f})"
                for f in r["weights_cost"]
            )
            print(
                f"{r['test']:18s} {r['preset']:8s} weights: float32 "
                f"{r['weights_bits']['float32']:.4f}, {cost}"
            )
    print(
        "(bits/sample of the held-out codes: mu-law codes for categorical runs, 16-bit "
        "samples for mol runs, where flac --best is the lossless baseline; below > 0: the "
        "model beats that coder; train s: the training folder, fit s: what the run trained "
        "on after holding out its validation files)"
    )
    print_likeness(rows)


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _bits(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def print_likeness(rows: list[dict[str, Any]]) -> None:
    """The second table: which checkpoint was scored, validation, generated vs held-out."""
    header = (
        f"{'test set':18s} {'size':>6s} {'preset':8s} {'kept (step)':>14s} "
        f"{'val final':>9s} {'val best (step)':>16s} "
        f"{'active gen':>10s} {'held-out':>8s} {'ratio':>6s} {'LTAS dB':>7s}"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in rows:
        kept = f"{r['checkpoint'].removesuffix('.pt')} ({r['checkpoint_step']})"
        best = (
            f"{_bits(r['best_val_bits'])} ({r['best_val_step']})"
            if r["best_val_bits"] is not None
            else "n/a"
        )
        ratio = "n/a" if r["active_ratio"] is None else f"{r['active_ratio']:.2f}"
        print(
            f"{r['test']:18s} {r['size']:>6s} {r['preset']:8s} {kept:>14s} "
            f"{_bits(r['final_val_bits']):>9s} {best:>16s} "
            f"{r['generated_active']:10.2f} {r['held_out_active']:8.2f} {ratio:>6s} "
            f"{r['spectrum_distance_db']:7.1f}"
        )
    print(
        f"(kept: the checkpoint `wavenet eval` and `generate` use; val: bits/sample on the "
        f"run's own validation files; active: share of 20 ms frames above -40 dBFS of "
        f"{len(GENERATE_SEEDS)} generated clips and of the test audio; LTAS dB: rms "
        f"difference of their long-term spectra, 50 Hz-8 kHz, levels aside)"
    )


def main() -> None:
    default_preset = "cpu" if "cpu" in preset_names() else "default"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument(
        "--cli-python",
        type=Path,
        default=None,
        help="python of another environment whose `wavenet` trains, scores and generates "
        "(the package at another commit) [default: this one]",
    )
    parser.add_argument(
        "--preset",
        dest="presets",
        action="append",
        default=None,
        help=f"preset to train (repeatable) [default: {default_preset}]",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="training budget per run, passed to `wavenet train --minutes` "
        "[default: 15 when neither --minutes nor --steps is given]",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="training steps per run, passed to `wavenet train --steps`",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="config override for every run",
    )
    parser.add_argument(
        "--output",
        choices=("categorical", "mol"),
        default=None,
        help="the model's output for every run (--set model.output=...): mol "
        "scores bits per 16-bit sample beside flac --best "
        "[default: each preset's own]",
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=parse_size,
        default=["full"],
        help="training folder sizes, each a subset of the set's training files: 30s, 5min, "
        "20min, 1h, full [default: full]",
    )
    parser.add_argument(
        "--gen-seconds",
        type=float,
        default=4.0,
        help="seconds generated per seed to compare with the test audio [default: 4]",
    )
    parser.add_argument("--device", default=None, help="passed to train and eval")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wavenet-bench",
        help="where the data sets are built once and kept",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="wavenet's decoded-audio cache [default: DATA_DIR/wavenet-cache]",
    )
    parser.add_argument(
        "--runs-dir",
        type=Path,
        default=None,
        help="keep the run folders here [default: a temporary folder]",
    )
    parser.add_argument(
        "--weights",
        nargs="+",
        choices=("bf16", "int8", "bf16-dot", "int8-dot"),
        default=[],
        help="also score each model with its product weights in these formats",
    )
    parser.add_argument("--soundfont", type=Path, default=piano_data.SOUNDFONT)
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "quality.json"
    )
    args = parser.parse_args()
    args.presets = args.presets or [default_preset]
    if args.cli_python is not None:
        CLI_PYTHON[:] = [str(args.cli_python)]
    if args.output is not None:
        args.overrides = [f"model.output={args.output}", *args.overrides]
        if args.output == "mol" and shutil.which("flac") is None:
            parser.error(
                "--output mol compares with flac --best: install flac (Debian: apt install flac)"
            )
    if not args.gen_seconds > 0:
        parser.error(f"--gen-seconds must be > 0, got {args.gen_seconds}")
    args.cache_dir = args.cache_dir or args.data_dir / "wavenet-cache"
    has_minutes = train_has_minutes()
    if args.minutes is None and args.steps is None:
        if not has_minutes:
            parser.error("this `wavenet train` has no --minutes yet: give --steps N")
        args.minutes = 15.0
    elif args.minutes is not None and not has_minutes:
        parser.error("this `wavenet train` has no --minutes yet: give --steps N instead")

    machine = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": os.environ.get("OMP_NUM_THREADS", "torch's default"),
        "cli_python": CLI_PYTHON[0],
    }
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}")
    args.data_dir.mkdir(parents=True, exist_ok=True)
    builders: dict[str, Callable[[], DataSet]] = {
        "speech": lambda: speech_set(args.data_dir),
        "piano": lambda: piano_set(args.data_dir, args.soundfont),
        "plucks": lambda: plucks_set(args.data_dir),
        **{
            name: functools.partial(recorded_set, args.data_dir, name)
            for name in recorded_data.SOURCES
        },
    }
    sets = [builders[name]() for name in args.datasets]
    sizes = {
        d.name: {
            "train": audio_size(d.train),
            "tests": {label: audio_size(f) for label, f in d.tests.items()},
        }
        for d in sets
    }
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="wavenet-quality-") as tmp:
        runs = args.runs_dir or Path(tmp)
        for data in sets:
            for size in args.sizes:
                for preset in args.presets:
                    rows += measure(data, size, preset, runs, args)
    for data in sets:
        print_table(data.name, sizes[data.name], [r for r in rows if r["data"] == data.name])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"machine": machine, "command": sys.argv[1:], "datasets": sizes, "rows": rows}, indent=2
        )
    )
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

"""The training loop: crops in, checkpoints and a metrics log out, resumable bit for bit.

One step: sample `batch_size` crops of receptive_field + target_length codes, feed all but
the last code, take cross-entropy on the `target_length` predictions that have a full
receptive field of context, clip, AdamW step, EMA update. The learning rate warms up
linearly, then decays by cosine to lr * min_lr_ratio at the last step.

The library logs and raises; the caller (the CLI) decides what the user sees through the
`progress` callback.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from . import checkpoint as ckpt
from .config import Config, TrainConfig, apply_overrides, config_from_dict
from .data import (Batch, ConditionedCropSampler, CropSampler, EncodedFile, load_encoded,
                   mel_features, mel_statistics, speaker_ids_from_folders, split_by_file)
from .distributed import init_distributed
from .evaluate import at_least_float32
from .files import atomic_write_bytes
from .model import WaveNet

logger = logging.getLogger(__name__)

LN2 = math.log(2.0)
METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"


class TrainError(RuntimeError):
    """A training run cannot start or continue; the message says why in one line."""


@dataclass
class TrainOptions:
    """Where the data is, where the run goes, and how long it runs."""

    data: Path
    out: Path
    steps: int
    resume: bool = False
    device: str = "cpu"
    val_data: Path | None = None
    cache_dir: Path | None = None
    tensorboard: bool = False
    # Take each file's first sub-folder under `data` as its speaker (global conditioning).
    speakers_from_folders: bool = False
    # `train.key=value` overrides applied to the run's own config on resume (say, a new
    # batch size when moving to another number of processes); model and data are fixed.
    resume_overrides: tuple[str, ...] = ()
    # Stop (with a checkpoint) once this many seconds of training have passed.
    time_limit: float | None = None
    # Stop (with a checkpoint) at this step; the schedule still spans `steps`, so a run
    # trained in slices equals one trained in one go.
    stop_at: int | None = None


@dataclass
class StepReport:
    """What the progress callback receives after every optimizer step."""

    step: int
    total_steps: int
    train_bits: float
    lr: float
    samples_per_s: float
    val_bits: float | None = None
    checkpointed: bool = False


@dataclass
class TrainSummary:
    run_dir: Path
    start_step: int
    step: int
    interrupted: bool
    best_val_bits: float | None
    last_train_bits: float | None
    train_files: int
    val_files: int
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    world_size: int = 1


def learning_rate(step: int, total_steps: int, train: TrainConfig) -> float:
    """Linear warm-up over warmup_steps, then cosine decay to lr * min_lr_ratio."""
    if step < train.warmup_steps:
        return train.lr * (step + 1) / train.warmup_steps
    span = max(1, total_steps - train.warmup_steps)
    progress = min(1.0, (step - train.warmup_steps) / span)
    floor = train.lr * train.min_lr_ratio
    return floor + (train.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def loss_on_targets(model: torch.nn.Module, batch: Batch | torch.Tensor, receptive_field: int
                    ) -> torch.Tensor:
    """Mean cross-entropy (nats) on the targets of a batch of items.

    codes (B, receptive_field + N): the model reads codes[:, :-1]; outputs from position
    receptive_field - 1 on see a full receptive field and predict codes[:, receptive_field:].
    """
    if isinstance(batch, torch.Tensor):
        batch = Batch(batch)
    codes = batch.codes
    logits = model(codes[:, :-1], global_cond=batch.global_ids,
                   mel=batch.mel)[:, :, receptive_field - 1:]
    return F.cross_entropy(at_least_float32(logits), codes[:, receptive_field:])


@contextmanager
def _stop_on_sigint() -> Iterator[Callable[[], bool]]:
    """Turn the first Ctrl-C into a flag checked between steps (a second one aborts)."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested.is_set
        return

    def handler(signum: int, frame: Any) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()
        logger.warning("interrupt received: finishing this step and saving a checkpoint")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield requested.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


class _EMA:
    """Exponential moving average of a model's floating-point state."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for key, value in model.state_dict().items():
            if value.is_floating_point():
                self.state[key].lerp_(value, 1.0 - self.decay)
            else:
                self.state[key].copy_(value)


def _append_metrics(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _truncate_metrics(path: Path, after_step: int) -> None:
    """Drop log lines past the checkpoint we resume from (their steps are redone)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= after_step]
    atomic_write_bytes(path, lambda h: h.write("".join(l + "\n" for l in kept).encode()))


@torch.no_grad()
def validation_bits(model: torch.nn.Module, batches: list[Batch], receptive_field: int,
                    device: torch.device) -> float:
    """Mean bits per sample over fixed validation crops."""
    was_training = model.training
    model.eval()
    total = sum(loss_on_targets(model, b.to(device), receptive_field).item() for b in batches)
    model.train(was_training)
    return total / len(batches) / LN2


def train(config: Config, options: TrainOptions,
          progress: Callable[[StepReport], None] | None = None) -> TrainSummary:
    """Train (or resume) a run; returns when `options.steps` is reached or on Ctrl-C.

    Under torchrun every process calls this; only rank 0 writes files and reports progress.
    Each step draws one global batch of batch_size x world_size x grad_accum crops from a
    generator that is identical on every rank; micro-batch k of rank r is slice
    (k * world_size + r). So N processes with batch b see exactly the crops of one process
    with batch N b, and a run resumes on any number of processes.
    """
    run_dir = Path(options.out)
    last_path = run_dir / ckpt.CHECKPOINT_DIR / ckpt.LAST
    best_path = run_dir / ckpt.CHECKPOINT_DIR / ckpt.BEST
    metrics_path = run_dir / METRICS_FILE
    if options.steps < 1:
        raise TrainError(f"--steps must be >= 1, got {options.steps}")
    world, device = init_distributed(options.device)

    payload = None
    if options.resume:
        if not last_path.is_file():
            raise TrainError(f"nothing to resume: {last_path} does not exist")
        payload = ckpt.load_checkpoint(last_path)
        config = ckpt.config_from_checkpoint(payload)
        if options.resume_overrides:
            fixed = [o for o in options.resume_overrides if not o.strip().startswith("train.")]
            if fixed:
                raise TrainError(f"on --resume only train.* fields can change, not {fixed[0]!r}")
            config = config_from_dict(apply_overrides(config.to_dict(),
                                                      options.resume_overrides))
    elif last_path.exists() or best_path.exists():
        raise TrainError(f"{run_dir} already holds a run; pass --resume to continue it "
                         f"or choose another --out")
    tc = config.train
    rf = config.model.receptive_field
    item_length = rf + config.data.target_length

    # Rank 0 decodes and fills the cache first; the others then read the cache.
    if not world.is_main:
        world.barrier()
    speakers = payload["extra"].get("speakers") if payload is not None else None
    data = _load_data(config, options, speakers)
    config = _with_speakers(config, data.speakers)
    if world.is_main:
        world.barrier()
        run_dir.mkdir(parents=True, exist_ok=True)
        for stale in (run_dir / ckpt.CHECKPOINT_DIR).glob(".*.tmp"):
            stale.unlink(missing_ok=True)  # left by a process killed while saving
        atomic_write_bytes(run_dir / CONFIG_FILE,
                                lambda h: h.write(json.dumps(config.to_dict(), indent=2).encode()))

    torch.manual_seed(tc.seed)
    model = WaveNet(config.model).to(device)
    if data.train_mels is not None and payload is None:
        # Every rank computes the same statistics from the same files.
        model.set_mel_statistics(*(s.to(device) for s in mel_statistics(data.train_mels)))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, betas=tc.betas,
                                  weight_decay=tc.weight_decay)
    ema = _EMA(model, tc.ema_decay) if tc.ema_decay is not None else None
    crop_generator = torch.Generator().manual_seed(tc.seed)
    sampler = _crop_sampler(data.train, data.train_ids, data.train_mels, config, crop_generator)
    val_batches: list[Batch] = []
    if data.val and world.is_main:
        val_sampler = _crop_sampler(data.val, data.val_ids, data.val_mels, config,
                                     torch.Generator().manual_seed(tc.seed + 1))
        val_batches = [val_sampler.batch(tc.batch_size) for _ in range(tc.val_batches)]

    step, best_val_bits, wall_before = 0, None, 0.0
    if payload is not None:
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        if ema is not None and payload.get("ema") is not None:
            ema.state = {k: v.to(device) for k, v in payload["ema"].items()}
        step = payload["step"]
        best_val_bits = payload.get("best_val_bits")
        crop_generator.set_state(payload["rng"]["crops"])
        torch.set_rng_state(payload["rng"]["torch"])
        wall_before = float(payload["extra"].get("wall_time", 0.0))
        if world.is_main:
            _truncate_metrics(metrics_path, step)
        logger.info("resumed %s at step %d", run_dir, step)
    start_step = step
    if world.is_main:
        logger.info("effective batch %d crops = %d per process x %d processes x %d "
                    "accumulation steps", tc.batch_size * world.world_size * tc.grad_accum,
                    tc.batch_size, world.world_size, tc.grad_accum)

    trained = model
    if tc.compile:
        trained = torch.compile(trained)
    if world.enabled:
        trained = DistributedDataParallel(
            trained, device_ids=[device.index] if device.type == "cuda" else None)
    writer = _tensorboard_writer(run_dir) if options.tensorboard and world.is_main else None
    autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16)
                if tc.bf16 else nullcontext())
    eval_model = WaveNet(config.model).to(device) if ema is not None else model

    def save(path: Path) -> None:
        ckpt.save_checkpoint(
            path, config=config, model=model.state_dict(), step=step,
            ema=ema.state if ema is not None else None, optimizer=optimizer.state_dict(),
            rng={"crops": crop_generator.get_state(), "torch": torch.get_rng_state()},
            best_val_bits=best_val_bits,
            extra={"wall_time": wall_before + time.monotonic() - started,
                   "world_size": world.world_size, "speakers": data.speakers})

    started = time.monotonic()
    interval_loss, interval_steps, interval_start = 0.0, 0, time.monotonic()
    last_train_bits: float | None = None
    interrupted = False
    micro_batches = world.world_size * tc.grad_accum
    samples_per_step = tc.batch_size * micro_batches * config.data.target_length
    with _stop_on_sigint() as stop_requested:
        while step < options.steps:
            lr = learning_rate(step, options.steps, tc)
            for group in optimizer.param_groups:
                group["lr"] = lr
            global_batch = sampler.batch(tc.batch_size * micro_batches)
            loss_sum = 0.0
            for k in range(tc.grad_accum):
                first = (k * world.world_size + world.rank) * tc.batch_size
                items = global_batch.slice(first, first + tc.batch_size).to(device)
                # Only the last micro-batch all-reduces gradients.
                sync = (trained.no_sync() if world.enabled and k < tc.grad_accum - 1
                        else nullcontext())
                with sync:
                    with autocast:
                        loss = loss_on_targets(trained, items, rf)
                    (loss / tc.grad_accum).backward()
                loss_sum += loss.item()
            train_bits = world.mean(loss_sum / tc.grad_accum, device) / LN2
            if not math.isfinite(train_bits):
                raise TrainError(f"loss became {train_bits} at step {step + 1}; lower train.lr "
                                 f"or enable train.grad_clip")
            if tc.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update(model)
            step += 1
            last_train_bits = train_bits
            interval_loss += train_bits
            interval_steps += 1
            out_of_time = ((options.time_limit is not None
                            and time.monotonic() - started > options.time_limit)
                           or (options.stop_at is not None and step >= options.stop_at))
            stop = world.any(stop_requested() or out_of_time, device) and step < options.steps
            if not world.is_main:
                interrupted = interrupted or stop
                if stop:
                    break
                continue

            val_bits = None
            if val_batches and (step % tc.val_every == 0 or step == options.steps or stop):
                if ema is not None:
                    eval_model.load_state_dict(ema.state)
                val_bits = validation_bits(eval_model, val_batches, rf, device)
                if best_val_bits is None or val_bits < best_val_bits:
                    best_val_bits = val_bits
                    save(best_path)
            checkpointed = step % tc.checkpoint_every == 0 or step == options.steps or stop
            if checkpointed:
                save(last_path)

            elapsed = time.monotonic() - interval_start
            rate = samples_per_step * interval_steps / max(elapsed, 1e-9)
            if (step % tc.log_every == 0 or val_bits is not None or step == options.steps
                    or stop):
                record = {"step": step, "train_bits": interval_loss / interval_steps,
                          "lr": lr, "samples_per_s": rate,
                          "wall_time": wall_before + time.monotonic() - started}
                if val_bits is not None:
                    record["val_bits"] = val_bits
                _append_metrics(metrics_path, record)
                if writer is not None:
                    for key in ("train_bits", "val_bits", "lr", "samples_per_s"):
                        if key in record:
                            writer.add_scalar(key, record[key], step)
                interval_loss, interval_steps, interval_start = 0.0, 0, time.monotonic()
            if progress is not None:
                progress(StepReport(step, options.steps, train_bits, lr, rate, val_bits,
                                    checkpointed))
            if stop:
                interrupted = not out_of_time
                if interrupted:
                    logger.warning("stopped at step %d; resume with --resume", step)
                else:
                    logger.info("time limit reached at step %d", step)
                break
    world.barrier()
    if writer is not None:
        writer.close()
    return TrainSummary(run_dir, start_step, step, interrupted, best_val_bits, last_train_bits,
                        len(data.train), len(data.val), data.skipped, world.world_size)


def _with_speakers(config: Config, speakers: list[str] | None) -> Config:
    """Check global conditioning against the speaker folders; fill in global_classes."""
    classes = config.model.global_classes
    if speakers is None:
        if classes is not None:
            raise TrainError("model.global_classes is set: pass --speakers-from-folders so "
                             "each file gets its speaker id")
        return config
    if classes is None:
        return dataclasses.replace(
            config, model=dataclasses.replace(config.model, global_classes=len(speakers)))
    if len(speakers) > classes:
        raise TrainError(f"{len(speakers)} speaker folders but model.global_classes is {classes}")
    return config


@dataclass
class _Data:
    """Training and validation files with their conditioning."""

    train: list[EncodedFile]
    val: list[EncodedFile]
    skipped: list[tuple[Path, str]]
    speakers: list[str] | None = None
    train_ids: list[int] | None = None
    val_ids: list[int] | None = None
    train_mels: list[np.ndarray] | None = None
    val_mels: list[np.ndarray] | None = None


def _crop_sampler(files: list[EncodedFile], ids: list[int] | None,
                  mels: list[np.ndarray] | None, config: Config,
                  generator: torch.Generator) -> Any:
    """A crop sampler over `files` that yields Batches with their conditioning."""
    item_length = config.model.receptive_field + config.data.target_length
    if ids is None and mels is None:
        return _PlainSampler(CropSampler(files, item_length, generator))
    return ConditionedCropSampler(files, item_length, generator, global_ids=ids, mels=mels,
                                  hop_length=config.mel.hop_length)


@dataclass
class _PlainSampler:
    sampler: CropSampler

    def batch(self, batch_size: int) -> Batch:
        return Batch(self.sampler.batch(batch_size))


def _load_data(config: Config, options: TrainOptions, speakers: list[str] | None) -> _Data:
    """Decode (or read from the cache) the training and validation files."""
    min_length = config.model.receptive_field + 1
    if config.model.local_channels is not None:
        min_length = config.model.receptive_field + config.data.target_length + 2 * config.mel.hop_length
    encode = dict(sample_rate=config.data.sample_rate,
                  quantization_channels=config.model.quantization_channels,
                  min_length=min_length, trim_silence=config.data.trim_silence,
                  silence_threshold_db=config.data.silence_threshold_db,
                  cache_dir=options.cache_dir)
    encoded = load_encoded(options.data, **encode)
    if options.val_data is None:
        train_set, val_set = split_by_file(encoded, config.data.val_fraction, config.train.seed)
        skipped = list(encoded.skipped)
        val_root = options.data
    else:
        train_set, val_set = encoded, load_encoded(options.val_data, **encode)
        skipped = list(encoded.skipped) + list(val_set.skipped)
        val_root = options.val_data
    data = _Data(list(train_set), list(val_set), skipped)
    if options.speakers_from_folders or speakers is not None:
        ids, names = speaker_ids_from_folders(encoded, options.data, speakers)
        by_path = {f.path: i for f, i in zip(encoded.files, ids)}
        data.speakers = names
        data.train_ids = [by_path[f.path] for f in data.train]
        data.val_ids = (speaker_ids_from_folders(val_set, val_root, names)[0]
                        if options.val_data is not None else [by_path[f.path] for f in data.val])
    if config.model.local_channels is not None:
        features = dict(sample_rate=config.data.sample_rate, mel=config.mel,
                        cache_dir=options.cache_dir)
        data.train_mels = mel_features(data.train, **features)
        data.val_mels = mel_features(data.val, **features)
    return data


def _tensorboard_writer(run_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise TrainError("--tensorboard needs the tensorboard package "
                         "(pip install tensorboard)") from None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))

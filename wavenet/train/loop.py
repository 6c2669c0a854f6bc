"""The training loop: crops in, checkpoints and a metrics log out, resumable bit for bit.

    train(config, options)
      set-up: config (resumed or new) -> prepare_data -> TrainState (model, AdamW, EMA,
              crop generator; restored from `last` on resume) -> StepSetup, Monitor
              (budget, checkpoints, metrics, validation, samples) -> budget.start
      loop:   while budget.running(step):
              lr = budget.learning_rate(step)
              train_bits = train_step(state, setup, lr)   sample, forward/backward per
                                                          micro-batch, clip, AdamW, EMA
              after_step(state, monitor, train_bits, lr, ...)   validate, checkpoint, log,
                                                          report, decide to stop (monitor.py)
              budget.calibrate(...)   while a budgeted run times its first steps

One step: sample crops (`data.full_context`: receptive_field - 1 codes of unscored
context before target_length scored positions; otherwise target_length positions, all
scored), take the loss (`loss.next_code_loss`: cross-entropy of each code given the
ones before it), clip, AdamW step, EMA update; bf16 autocast where `train.bf16` (or its
automatic choice, `wavenet.util.hardware`) says so (for a "mol" model its body only:
`WaveNet.output_layer`). The learning rate warms up linearly, then
decays by cosine to lr * min_lr_ratio at the last step (`wavenet.train.schedule`): --steps, or,
with a time budget, the total fixed after timing the first steps and stored in the run;
`budget.Budget` owns the total and the time limit. What a checkpoint holds is
`state.TrainState`.

The library logs and raises; the caller (the CLI) decides what the user sees through the
`progress` callback.
"""

from __future__ import annotations

import copy
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
from typing import Any, cast

import torch
from torch.nn.parallel import DistributedDataParallel

from ..config import EARLY_STOP_PATIENCE, Config, TrainConfig, apply_overrides, config_from_dict
from ..data.augment import AugmentedCrops, augmentation_on, source_length
from ..data.crops import Batch, CropSampler, item_length
from ..data.prepare import FileSet, PreparedData, mel_statistics, prepare_data
from ..errors import TrainError
from ..io import checkpoint as ckpt
from ..nn.model import WaveNet
from ..util.files import atomic_write_bytes
from ..util.hardware import check_training_memory, use_bf16
from .budget import Budget, Clock
from .checkpoints import Checkpoints
from .distributed import Distributed, init_distributed
from .finetune import Source, load_source_weights, read_source
from .loss import LN2, LossFunction, loss_context, loss_function, next_code_loss
from .memorization import detect_memorization, validations_in_log
from .metrics import METRICS_FILE, MetricsLog, tensorboard_writer, truncate_metrics
from .monitor import Monitor, StepReport, after_step, time_run_costs
from .options import TrainOptions
from .recipe import adapt_to_duration
from .runlock import run_lock
from .samples import sample_writer
from .state import TrainState
from .validation import Validation

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"


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
    total_steps: int | None = None  # the run's total: --steps or its stored schedule's
    # The signal that stopped the run early (SIGINT, SIGTERM, SIGHUP; its step was saved),
    # None when no signal did.
    stop_signal: int | None = None
    # Ended by early stopping (train.early_stop_patience validations without a new best).
    early_stopped: bool = False


def ema_weight(decay: float, step: int) -> float:
    """The weight of update `step` (1, 2, ...) in a bias-corrected moving average.

    The average of the weights after updates 1..n is sum_k (1 - decay) decay^(n-k) w_k
    divided by 1 - decay^n (Adam's correction), so the initial weights count for nothing
    however short the run: update 1 copies, and the weight falls to 1 - decay as n grows.
    A pure function of the step, so a resumed run averages bit for bit as before.
    """
    return (1.0 - decay) / (1.0 - decay**step)


@torch.no_grad()
def ema_update(
    ema: dict[str, torch.Tensor], model: torch.nn.Module, decay: float, step: int
) -> None:
    """Move the bias-corrected moving average of `model.state_dict()` to include update
    `step` (counted from 1), in place."""
    weight = ema_weight(decay, step)
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            ema[key].lerp_(value, weight)
        else:
            ema[key].copy_(value)


# ----------------------------------------------------------------------------- step


@dataclass
class StepSetup:
    """What every training step uses and no step changes.

    trained: the model as stepped, `state.model` itself or wrapped (torch.compile,
    DistributedDataParallel) around the same parameters.
    """

    trained: torch.nn.Module
    sampler: CropSampler | AugmentedCrops
    train: TrainConfig
    context: int  # unscored input positions per item (`loss_context`)
    world: Distributed = field(default_factory=Distributed)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    loss: LossFunction = next_code_loss


def train_step(state: TrainState, setup: StepSetup, lr: float) -> float:
    """One optimizer step at learning rate `lr`; -> its loss in bits (mean over ranks).

    Draws one global batch of batch_size x world_size x grad_accum crops, the same on every
    rank; micro-batch k of rank r is slice k * world_size + r, so N processes with batch b
    see exactly the crops of one process with batch N b. Backward per micro-batch, then
    clip, AdamW, EMA; `state.step` goes up by one.
    """
    tc, world = setup.train, setup.world
    for group in state.optimizer.param_groups:
        group["lr"] = lr
    global_batch = setup.sampler.batch(tc.batch_size * world.world_size * tc.grad_accum)
    # A mixture-of-logistics model runs only its body in bf16: its value input, the
    # head's last projection and the loss stay float32 (WaveNet.embed, output_layer).
    bf16 = use_bf16(tc.bf16, setup.device)
    autocast = (
        torch.autocast(device_type=setup.device.type, dtype=torch.bfloat16)
        if bf16
        else nullcontext()
    )
    loss_sum = 0.0
    for k in range(tc.grad_accum):
        first = (k * world.world_size + world.rank) * tc.batch_size
        items = global_batch.slice(first, first + tc.batch_size).to(setup.device)
        # Only the last micro-batch all-reduces gradients.
        sync = (
            cast(DistributedDataParallel, setup.trained).no_sync()  # DDP whenever world.enabled
            if world.enabled and k < tc.grad_accum - 1
            else nullcontext()
        )
        with sync:
            with autocast:
                loss = setup.loss(setup.trained, items, setup.context)
            (loss / tc.grad_accum).backward()
        loss_sum += loss.item()
    train_bits = world.mean(loss_sum / tc.grad_accum, setup.device) / LN2
    if not math.isfinite(train_bits):
        raise TrainError(
            f"loss became {train_bits} at step {state.step + 1}; lower train.lr "
            f"or enable train.grad_clip"
        )
    if tc.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(state.model.parameters(), tc.grad_clip)
    state.optimizer.step()
    state.optimizer.zero_grad(set_to_none=True)
    # update 1 is the first since the average began (state.ema exists with ema_decay)
    if state.ema is not None and tc.ema_decay is not None:
        ema_update(state.ema, state.model, tc.ema_decay, state.step + 1 - state.ema_start)
    state.step += 1
    return train_bits


# ----------------------------------------------------------------------------- train


def train(
    config: Config | None,
    options: TrainOptions,
    progress: Callable[[StepReport], None] | None = None,
    *,
    clock: Clock = time.monotonic,
) -> TrainSummary:
    """Train (or resume) a run; returns when `options.steps` is reached or on a stop.

    config: the new run's config. On resume (`options.resume`): None to continue with the
    run's own (`options.resume_overrides` applied), or one the caller resolved, whose
    model, data and mel sections must be the run's own (its train fields are used).
    The run folder is locked for the whole call (`runlock`): a second trainer on the same
    folder raises RunLockedError at once.

    Under torchrun every process calls this; only rank 0 writes files and reports progress.
    A run resumes on any number of processes (see `train_step`). Every time the run reads
    (its budget, wall time, rates, the seconds of samples) comes from `clock`.
    """
    for name, count in (("--steps", options.steps), ("--stop-at", options.stop_at)):
        if count is not None and count < 1:
            raise TrainError(f"{name} must be >= 1, got {count}")
    for name, value in (
        ("--minutes", options.budget),
        ("seconds_per_step", options.seconds_per_step),
    ):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise TrainError(f"{name} must be a finite number > 0, got {value}")
    if options.init_from is not None and options.resume:
        raise TrainError(
            "--init-from starts a new run from a model's weights and --resume "
            "continues a run: pass one of them"
        )
    _check_run_folder(Path(options.out), options.resume)
    _check_out_is_not_data(options)
    with _stop_signals() as stop:
        world, device = init_distributed(options.device)
        # One trainer per run folder (rank 0 holds the lock for all ranks).
        with run_lock(options.out) if world.is_main else nullcontext():
            return _train(config, options, world, device, progress, stop, clock)


def _check_run_folder(out: Path, resume: bool) -> None:
    """Refuse an --out that cannot be a run folder, and a resume of a folder without a run,
    before the run lock makes the folder."""
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                raise TrainError(f"--out {out} cannot be a run folder: {folder} is a file")
            break
    last_path = out / ckpt.CHECKPOINT_DIR / ckpt.LAST
    if resume and not last_path.is_file():
        best = last_path.with_name(ckpt.BEST)
        hint = (
            f" (copy {best} to {last_path} to resume from the best checkpoint)"
            if best.is_file()
            else ""
        )
        raise TrainError(f"nothing to resume: {last_path} does not exist{hint}")


def _check_out_is_not_data(options: TrainOptions) -> None:
    """Refuse an --out that is the --data (or --val-data) folder, before anything is made:
    the run's files would land among the audio and its own exclusion leave no data."""
    out = Path(options.out).resolve()
    for name, folder in (("--data", options.data), ("--val-data", options.val_data)):
        if folder is not None and Path(folder).resolve() == out:
            raise TrainError(
                f"--out {options.out} is {name} {folder}: give the run a folder "
                f"of its own (one inside {name} is fine: runs are not read as "
                f"data)"
            )


def _train(
    config: Config | None,
    options: TrainOptions,
    world: Distributed,
    device: torch.device,
    progress: Callable[[StepReport], None] | None,
    stop: StopRequest,
    clock: Clock,
) -> TrainSummary:
    config, payload = _run_config(config, options)
    source = read_source(options.init_from) if options.init_from is not None else None
    check_training_memory(config, device)  # on the device and at the precision used
    speakers = ckpt.speakers_from_checkpoint(payload) if payload is not None else None
    data, config = _prepare_run(
        config, options, world, speakers, new_run=payload is None and source is None
    )
    state = _initial_state(config, data, device, world, payload, source)
    start_step = state.step
    if payload is not None:
        if world.is_main:
            truncate_metrics(Path(options.out) / METRICS_FILE, state.step)
        logger.info("resumed %s at step %d", options.out, state.step)
    setup = _step_setup(state, data, world, device)
    monitor = _monitor(state, data, options, world, device, clock)
    monitor.progress = progress
    if world.is_main:
        monitor.samples = sample_writer(
            config, data, Path(options.out), monitor.metrics.writer, clock
        )
    budget = monitor.budget
    budget.start(state.step, options, config.train.warmup_steps, payload is not None)
    stop.training = True  # from here a signal stops the run after its step, saved
    while budget.running(state.step):
        lr = budget.learning_rate(state.step, config.train)
        train_bits = train_step(state, setup, lr)
        if after_step(state, monitor, train_bits, lr, stop()):
            break
        if budget.calibration is not None and budget.calibrate(
            state.step,
            config.train,
            world,
            device,
            lambda samples: time_run_costs(state, monitor, samples),
        ):
            if world.is_main:  # the fixed schedule is stored at once
                monitor.checkpoints.save(state, ckpt.LAST)
    # Every rank learns the signal that stopped the run, whichever rank received it.
    signum = world.maximum(stop.signum or 0, device)
    world.barrier()
    monitor.metrics.close()
    if world.is_main:
        memorized = detect_memorization(
            validations_in_log(Path(options.out) / METRICS_FILE),
            (state.data_summary or {}).get("train_seconds"),
        )
        if memorized is not None:
            logger.warning("%s", memorized.line())
    return TrainSummary(
        Path(options.out),
        start_step,
        state.step,
        monitor.interrupted,
        state.best_val_bits,
        monitor.metrics.last_train_bits,
        len(data.train),
        len(data.val),
        list(data.skipped),
        world.world_size,
        budget.total_steps,
        (signum or signal.SIGINT) if monitor.interrupted else None,
        monitor.early_stopped,
    )


def _run_config(
    config: Config | None, options: TrainOptions
) -> tuple[Config, dict[str, Any] | None]:
    """The run's config and, on resume, its `last` checkpoint (model, data and mel from
    there; train fields from `config` or the checkpoint, with `resume_overrides`)."""
    last_path = Path(options.out) / ckpt.CHECKPOINT_DIR / ckpt.LAST
    best_path = Path(options.out) / ckpt.CHECKPOINT_DIR / ckpt.BEST
    if not options.resume:
        if last_path.exists() or best_path.exists():
            raise TrainError(
                f"{options.out} already holds a run; pass --resume to continue it "
                f"or choose another --out"
            )
        if config is None:
            raise TrainError("a new run needs a config")
        return config, None
    payload = ckpt.load_checkpoint(last_path)
    own = ckpt.config_from_checkpoint(payload)
    _warn_if_config_file_edited(Path(options.out) / CONFIG_FILE, own)
    asked = config if config is not None else own
    if options.resume_overrides:
        asked = config_from_dict(apply_overrides(asked.to_dict(), options.resume_overrides))
    differing = _fixed_fields_that_differ(asked, own)
    if differing:
        raise TrainError(
            f"the run in {options.out} has another config: "
            f"{'; '.join(differing)}; on --resume only train.* fields can "
            f"change (drop --config and --set to continue with the run's own)"
        )
    config = dataclasses.replace(asked, model=own.model, data=own.data, mel=own.mel)
    return config, payload


def _warn_if_config_file_edited(path: Path, own: Config) -> None:
    """RUN/config.json is a record of the checkpoint's config, rewritten on every start:
    warn when it says something else (the user edited it), since the edit is not used."""
    try:
        recorded = config_from_dict(json.loads(path.read_text(encoding="utf-8"))).to_dict()
    except FileNotFoundError:
        return
    except (OSError, ValueError, TypeError, AttributeError):
        logger.warning("%s cannot be read; writing it again from the checkpoint's config", path)
        return
    own_dict = own.to_dict()
    differing = [
        f"{section}.{key} is {value!r} there, {own_dict[section][key]!r} in the run"
        for section, values in recorded.items()
        for key, value in values.items()
        if own_dict[section][key] != value
    ]
    if differing:
        logger.warning(
            "%s was changed (%s): a run's config comes from its checkpoint, so the "
            "change is not used and the file is written again; change train.* "
            "fields with --resume --set section.key=value",
            path,
            "; ".join(differing),
        )


def _fixed_fields_that_differ(asked: Config, own: Config) -> list[str]:
    """`section.key is <run's value>, not <asked value>` for each model, data or mel field
    that differs; an unset model.global_classes (filled in from the speaker folders)
    matches."""
    asked_dict, own_dict = asked.to_dict(), own.to_dict()
    if asked.model.global_classes is None:
        asked_dict["model"]["global_classes"] = own.model.global_classes
    return [
        f"{section}.{key} is {value!r}, not {asked_dict[section][key]!r}"
        for section in ("model", "data", "mel")
        for key, value in own_dict[section].items()
        if asked_dict[section][key] != value
    ]


def _prepare_run(
    config: Config,
    options: TrainOptions,
    world: Distributed,
    speakers: list[str] | None,
    new_run: bool = False,
) -> tuple[PreparedData, Config]:
    """Load the data (rank 0 first, filling the cache the others then read; the run
    folder's own samples are not data, even when it lies inside --data) and write the run
    folder's config; -> (data, config with the speaker count filled in and, for a new
    run, adapted to the training audio's duration: wavenet.train.recipe)."""
    if not world.is_main:
        world.barrier()
    data = prepare_data(
        config,
        options.data,
        val_data=options.val_data,
        speakers_from_folders=options.speakers_from_folders,
        speakers=speakers,
        cache_dir=options.cache_dir,
        mel_dir=options.mel_dir,
        exclude=[options.out],
    )
    config = _with_speakers(config, data.speakers)
    if new_run:
        seconds = sum(len(f) for f in data.train.files) / config.data.sample_rate
        config, changes = adapt_to_duration(config, seconds)
        if changes:  # a change to the asked config is said without -v
            logger.warning(
                "%.0f s of training audio: the small-folder recipe %s "
                "(data.adapt_to_duration=false keeps the preset's)",
                seconds,
                " ".join(changes),
            )
    if world.is_main:
        world.barrier()
        run_dir = Path(options.out)
        run_dir.mkdir(parents=True, exist_ok=True)
        for stale in (run_dir / ckpt.CHECKPOINT_DIR).glob(".*.tmp"):
            stale.unlink(missing_ok=True)  # left by a process killed while saving
        text = json.dumps(config.to_dict(), indent=2).encode()
        try:
            atomic_write_bytes(run_dir / CONFIG_FILE, lambda h: h.write(text))
        except OSError as error:  # a full disk: the write names no file
            raise TrainError(
                f"cannot write {run_dir / CONFIG_FILE}: {error.strerror or error}"
            ) from None
    return data, config


def _initial_state(
    config: Config,
    data: PreparedData,
    device: torch.device,
    world: Distributed,
    payload: dict[str, Any] | None,
    source: Source | None = None,
) -> TrainState:
    """A new run's state from the seed (and `source`'s weights when fine-tuning), or the
    checkpoint's state on resume."""
    tc = config.train
    torch.manual_seed(tc.seed)
    model = WaveNet(config.model).to(device)
    if data.train.mels is not None and payload is None:
        # Every rank computes the same statistics from the same files.
        model.set_mel_statistics(*(s.to(device) for s in mel_statistics(data.train.mels)))
    if source is not None:  # a vocoder source's mel statistics are kept with its weights
        for note in load_source_weights(
            model,
            source.weights,
            source_config=source.config.model,
            source_speakers=source.speakers,
            speakers=data.speakers,
        ):
            logger.warning("%s", note)
        logger.info(
            "starting from the weights of %s (sha256 %s...)", source.path, source.sha256[:12]
        )
    model.train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=tc.lr, betas=tc.betas, weight_decay=tc.weight_decay
    )
    # The EMA starts as a copy for its shapes only: the bias correction makes update 1
    # overwrite it (`ema_weight`).
    ema = (
        {k: v.detach().clone() for k, v in model.state_dict().items()}
        if tc.ema_decay is not None
        else None
    )
    seconds = sum(len(f.codes) for f in data.train.files) / config.data.sample_rate
    state = TrainState(
        config,
        model,
        optimizer,
        torch.Generator().manual_seed(tc.seed),
        ema,
        speakers=data.speakers,
        world_size=world.world_size,
        data_summary={
            "train_files": len(data.train),
            "train_seconds": seconds,
            "val_files": len(data.val),
        },
    )
    if payload is not None:
        state.load_state_dict(payload)
    return state


def _sampler(
    files: FileSet,
    config: Config,
    generator: torch.Generator,
    context: int,
    length: int | None = None,
) -> CropSampler:
    """Crops of `length` codes (default: a training item's, `item_length`)."""
    return CropSampler(
        files.files,
        item_length(context, config.data.target_length) if length is None else length,
        generator,
        global_ids=files.global_ids,
        mels=files.mels,
        hop_length=config.mel.hop_length,
    )


def _training_items(
    files: FileSet, config: Config, generator: torch.Generator, context: int
) -> CropSampler | AugmentedCrops:
    """The training items: crops, augmented when the config asks (data.augment_*)."""
    data = config.data
    if not augmentation_on(data):
        return _sampler(files, config, generator, context)
    length = item_length(context, data.target_length)
    crops = _sampler(files, config, generator, context, source_length(length, data.augment_speed))
    logger.info(
        "training items augmented: speed +-%g, gain +-%g dB, polarity %s",
        data.augment_speed,
        data.augment_gain_db,
        "flipped half the time" if data.augment_polarity else "kept",
    )
    return AugmentedCrops(crops, length, data, config.model.coding, config.model.classes)


def _step_setup(
    state: TrainState, data: PreparedData, world: Distributed, device: torch.device
) -> StepSetup:
    """The crop sampler and the model as stepped: compiled and DDP-wrapped when asked."""
    tc = state.config.train
    trained = cast(torch.nn.Module, torch.compile(state.model)) if tc.compile else state.model
    if world.enabled:
        trained = DistributedDataParallel(
            trained, device_ids=[device.index] if device.type == "cuda" else None
        )
    if world.is_main:
        logger.info(
            "effective batch %d crops = %d per process x %d processes x %d accumulation steps",
            tc.batch_size * world.world_size * tc.grad_accum,
            tc.batch_size,
            world.world_size,
            tc.grad_accum,
        )
    context = loss_context(state.config)
    return StepSetup(
        trained,
        _training_items(data.train, state.config, state.crop_generator, context),
        tc,
        context,
        world,
        device,
        loss_function(state.config.model),
    )


def _monitor(
    state: TrainState,
    data: PreparedData,
    options: TrainOptions,
    world: Distributed,
    device: torch.device,
    clock: Clock,
) -> Monitor:
    """The after-step parts: the budget (its clock starts here), the checkpoints, the
    metrics log (and the TensorBoard writer), validation on fixed crops (rank 0)."""
    config, tc = state.config, state.config.train
    val_batches: list[Batch] = []
    if data.val and world.is_main:
        val_sampler = _sampler(
            data.val,
            config,
            torch.Generator().manual_seed(tc.seed + 1),
            config.model.receptive_field - 1,
        )
        val_batches = [val_sampler.batch(tc.batch_size) for _ in range(tc.val_batches)]
    writer = (
        tensorboard_writer(Path(options.out)) if options.tensorboard and world.is_main else None
    )
    # A copy to load EMA weights into, made without drawing from the global RNG.
    eval_model = copy.deepcopy(state.model) if state.ema is not None else state.model
    samples = tc.batch_size * world.world_size * tc.grad_accum * config.data.target_length
    patience = tc.early_stop_patience
    if patience is None and options.budget is not None:
        patience = EARLY_STOP_PATIENCE
    budget = Budget(
        state.length,
        wall_before=state.wall_time,
        stop_at=options.stop_at,
        time_limit=options.time_limit,
        clock=clock,
    )
    return Monitor(
        budget,
        Checkpoints(Path(options.out), budget.wall_time),
        MetricsLog(Path(options.out), samples, writer, clock),
        Validation(val_batches, eval_model, device, patience or None),
        world,
        device,
    )


# Signals that stop a run with a checkpoint: Ctrl-C; SIGTERM, what SLURM, Kubernetes and
# other schedulers send before they kill a job (torchrun forwards it to every worker); and
# SIGHUP, when the terminal goes away.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class SignalStop(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGHUP) received before the first step: nothing to save.

    A KeyboardInterrupt, so that whatever handles Ctrl-C handles it; `signum` is the
    signal's number (a shell reports exit status 128 + signum).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopRequest:
    """The first stop signal of a run: `stop()` says whether one came, `signum` which.

    Until `training` is set (the set-up), a signal stops at once: SIGINT as
    KeyboardInterrupt, the others as SignalStop. Then the first one becomes a flag checked
    between steps (the step finishes and is saved); a second SIGINT aborts, while a
    repeated SIGTERM or SIGHUP is ignored (under torchrun a worker gets SIGTERM from the
    scheduler and again from torchrun).
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.training = False

    def __call__(self) -> bool:
        return self.signum is not None

    def handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if not self.training:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SignalStop(signum)
        if self.signum is None:
            self.signum = signum
            what = "interrupt" if signum == signal.SIGINT else name
            logger.warning("%s received: finishing this step and saving a checkpoint", what)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:
            logger.info("%s received again: still finishing the step", name)


@contextmanager
def _stop_signals() -> Iterator[StopRequest]:
    """Handle STOP_SIGNALS with a StopRequest inside the block (main thread only; other
    threads get a request no signal sets), the previous handlers restored after it."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {signum: signal.signal(signum, request.handle) for signum in STOP_SIGNALS}
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            if handler is not None:  # None: installed outside Python, cannot be put back
                signal.signal(signum, handler)


def _with_speakers(config: Config, speakers: list[str] | None) -> Config:
    """Check global conditioning against the speaker folders; fill in global_classes."""
    classes = config.model.global_classes
    if speakers is None:
        if classes is not None:
            raise TrainError(
                "model.global_classes is set: pass --speakers-from-folders so "
                "each file gets its speaker id"
            )
        return config
    if classes is None:
        return dataclasses.replace(
            config, model=dataclasses.replace(config.model, global_classes=len(speakers))
        )
    if len(speakers) > classes:
        raise TrainError(f"{len(speakers)} speaker folders but model.global_classes is {classes}")
    return config

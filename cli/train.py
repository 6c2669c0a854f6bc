"""`wavenet train`: a folder of audio in, a run folder out."""

from __future__ import annotations

import math
import os
import shlex
import signal
from pathlib import Path

import click

from .common import ProgressBar, resolve_device, setup_logging, verbose_option


@click.command("train")
@click.option(
    "--data",
    "data",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder of audio files (searched recursively; hidden folders and other "
    "run folders are not read).",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="Run folder: config, checkpoints, metrics.",
)
@click.option(
    "--config",
    "config_name",
    default=None,
    help="Preset name (tiny, default, ...) or a .toml/.json file. [default: default]",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override one config field, e.g. --set train.lr=3e-4 (repeatable).",
)
@click.option(
    "--steps",
    type=int,
    default=None,
    help="Total training steps for the run (with --resume: continue up to this); "
    "with --minutes, at most this many. [default: 1000 without --minutes]",
)
@click.option(
    "--minutes",
    type=float,
    default=None,
    help="Training time budget: the warm-up and decay span it (the total steps are "
    "estimated from the first steps and kept on --resume); stops with a "
    "checkpoint at the budget.",
)
@click.option(
    "--stop-at",
    type=int,
    default=None,
    help="Stop with a checkpoint at this step (the schedule still spans --steps).",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--device", default=None, help="cpu or cuda [default: cuda if present, else cpu]")
@click.option(
    "--val-data",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of held-out audio (default: a fraction of --data's files); "
    "one inside --data is left out of training, --data itself is refused.",
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where decoded audio is cached [default: $WAVENET_CACHE_DIR or ~/.cache/wavenet].",
)
@click.option(
    "--speakers-from-folders",
    is_flag=True,
    help="Condition on speaker: each file's first sub-folder under --data is its id.",
)
@click.option(
    "--mel-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Vocoder: train on these mels (x.npy or x.pt for audio x.wav, e.g. an "
    "acoustic model's), not mels computed from the audio.",
)
@click.option(
    "--init-from",
    type=click.Path(path_type=Path),
    default=None,
    help="Fine-tune: start a new run from this model's weights (a run folder, a "
    "checkpoint or a `wavenet export` folder), with its config (change fields "
    "with --set), a fresh optimizer, schedule and EMA.",
)
@click.option(
    "--tensorboard",
    is_flag=True,
    help="Also write TensorBoard scalars, audio samples and spectrograms to RUN/tensorboard.",
)
@verbose_option
def train_command(
    data: Path,
    out: Path,
    config_name: str | None,
    overrides: tuple[str, ...],
    steps: int | None,
    minutes: float | None,
    stop_at: int | None,
    resume: bool,
    device: str | None,
    val_data: Path | None,
    cache_dir: Path | None,
    speakers_from_folders: bool,
    mel_dir: Path | None,
    init_from: Path | None,
    tensorboard: bool,
    verbose: bool,
) -> None:
    """Train a WaveNet on a folder of audio (wav, flac, ogg, aiff, mp3).

    Ctrl-C, SIGTERM (a job scheduler's stop) or SIGHUP finish the step, save it and exit
    with status 128 + the signal's number and the command that resumes the run.
    """
    setup_logging(verbose)
    from wavenet.config import Config, load_config
    from wavenet.train.distributed import shutdown_distributed
    from wavenet.train.loop import SignalStop, TrainOptions, train

    # --steps and --stop-at are checked by train(), before anything else; --minutes here,
    # in minutes (train() is given seconds).
    if minutes is not None and not (math.isfinite(minutes) and minutes > 0):
        raise click.ClickException(f"--minutes must be a finite number > 0, got {minutes}")
    # On --resume without --config the run's own config is used (--set applied to it);
    # with --config, its model, data and mel must be the run's (train() checks).
    config: Config | None
    if init_from is not None:  # with --resume: refused by train()
        if config_name is not None:
            raise click.ClickException(
                "--init-from takes the config of the model it starts "
                "from; change fields with --set, not --config"
            )
        from wavenet.train.finetune import fine_tune_config, read_source

        config = fine_tune_config(read_source(init_from), overrides, speakers_from_folders)
    else:
        config = (
            None
            if resume and config_name is None
            else load_config("default" if config_name is None else config_name, overrides)
        )
    options = TrainOptions(
        data=data,
        out=out,
        steps=steps,
        resume=resume,
        device=resolve_device(device),
        val_data=val_data,
        cache_dir=cache_dir,
        tensorboard=tensorboard,
        speakers_from_folders=speakers_from_folders,
        resume_overrides=overrides if config is None else (),
        stop_at=stop_at,
        budget=60.0 * minutes if minutes is not None else None,
        mel_dir=mel_dir,
        init_from=init_from,
    )
    bar = ProgressBar(steps, seconds=options.budget)
    main_rank = int(os.environ.get("RANK", "0")) == 0
    try:
        summary = train(config, options, progress=bar.update)
    except SignalStop as stop:  # SIGTERM or SIGHUP during the set-up
        if main_rank:
            click.echo(
                f"stopped by {signal.Signals(stop.signum).name} before the first step; "
                f"nothing to save",
                err=True,
            )
        raise SystemExit(128 + stop.signum) from None
    finally:
        bar.close()
        shutdown_distributed()
    if not main_rank:  # status 0 even when stopped: torchrun then waits for rank 0's report
        return
    if summary.skipped:
        click.echo(f"skipped {len(summary.skipped)} file(s) (see the warnings above)", err=True)
    best = f"{summary.best_val_bits:.3f}" if summary.best_val_bits is not None else "n/a"
    total = summary.total_steps
    if summary.interrupted:
        signum = summary.stop_signal or signal.SIGINT
        how = (
            "interrupted"
            if signum == signal.SIGINT
            else f"stopped by {signal.Signals(signum).name}"
        )
        command = resume_command(
            data,
            out,
            steps=steps,
            minutes=minutes,
            stop_at=stop_at,
            device=device,
            val_data=val_data,
            cache_dir=cache_dir,
            mel_dir=mel_dir,
            speakers_from_folders=speakers_from_folders,
            tensorboard=tensorboard,
        )
        launch = " (launched with torchrun as before)" if summary.world_size > 1 else ""
        click.echo(
            f"{how} at step {summary.step}; checkpoint saved. Continue with: {command}{launch}",
            err=True,
        )
        raise SystemExit(128 + signum)  # as a shell reports it: 130 for Ctrl-C, 143 SIGTERM
    if summary.step == summary.start_step:
        limit = (
            f"--stop-at {stop_at}"
            if stop_at is not None and stop_at <= summary.step
            else f"its {total} steps"
        )
        click.echo(f"{out} is already at step {summary.step} (>= {limit}); nothing to do")
        return
    if summary.early_stopped:
        click.echo(
            f"stopped early at step {summary.step} (no better validation in the last "
            f"ones); best validation {best} bits/sample is in {out}/checkpoints/best.pt"
        )
        return
    if stop_at is not None and (total is None or summary.step < total):
        click.echo(f"stopped at step {summary.step} as asked; continue with --resume")
        return
    if total is not None and summary.step < total:
        click.echo(f"time budget reached at step {summary.step} of the {total} estimated")
    if summary.world_size > 1:
        click.echo(f"trained on {summary.world_size} processes")
    click.echo(
        f"trained {summary.train_files} file(s) to step {summary.step}: "
        f"best validation {best} bits/sample; run folder {out}"
    )


def resume_command(
    data: Path,
    out: Path,
    *,
    steps: int | None,
    minutes: float | None,
    stop_at: int | None,
    device: str | None,
    val_data: Path | None,
    cache_dir: Path | None,
    mel_dir: Path | None,
    speakers_from_folders: bool,
    tensorboard: bool,
) -> str:
    """The `wavenet train ... --resume` command line (quoted for a POSIX shell) that
    continues a run started with these options (the config and --set are in the run)."""
    args = ["wavenet", "train", "--data", str(data), "--out", str(out)]
    for name, value in (
        ("--steps", steps),
        ("--minutes", minutes),
        ("--stop-at", stop_at),
        ("--device", device),
        ("--val-data", val_data),
        ("--cache-dir", cache_dir),
        ("--mel-dir", mel_dir),
    ):
        if value is not None:
            args += [name, f"{value:g}" if isinstance(value, float) else str(value)]
    for name, flag in (
        ("--speakers-from-folders", speakers_from_folders),
        ("--tensorboard", tensorboard),
    ):
        if flag:
            args.append(name)
    return shlex.join([*args, "--resume"])

"""`wavenet demo`: a built-in dataset, a short training run, audio and pictures."""

from __future__ import annotations

import math
import shutil
import signal
import time
from pathlib import Path

import click

from .common import ProgressBar, check_length, setup_logging, verbose_option


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("wavenet-demo"),
    show_default=True,
    help="Folder for the dataset, run, audio and pictures.",
)
@click.option(
    "--minutes",
    type=float,
    default=2.0,
    show_default=True,
    help="Training time budget on this machine.",
)
@click.option(
    "--seconds", type=float, default=4.0, show_default=True, help="Length of the generated audio."
)
@click.option(
    "--config",
    "config_name",
    default="demo",
    show_default=True,
    help="Preset or config file for the model.",
)
@click.option("--force", is_flag=True, help="Replace an existing demo folder.")
@verbose_option
def demo_command(
    out: Path, minutes: float, seconds: float, config_name: str, force: bool, verbose: bool
) -> None:
    """Train on built-in plucked-string melodies, generate audio, draw pictures.

    Writes into OUT: data/ (the melodies), run/ (config, checkpoints, metrics),
    generated.wav, spectrograms.png (generated audio beside a training clip) and
    curves.png (training and validation bits/sample). Training is `wavenet train
    --minutes`: the warm-up and decay span the budget. Reports validation bits beside
    `xz -9e` on the same codes, and the spectral flatness and periodicity of the
    generated audio beside the training clips' and white noise's.
    """
    setup_logging(verbose)
    if not all(math.isfinite(v) and v > 0 for v in (minutes, seconds)):
        raise click.ClickException("--minutes and --seconds must be finite numbers > 0")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise click.ClickException(f"{out} exists and is not empty; pass --force to replace it")
        shutil.rmtree(out)

    from wavenet.config import load_config
    from wavenet.data.demo import write_demo_dataset

    config = load_config(config_name)
    check_length(round(seconds * config.data.sample_rate), 1)
    click.echo(f"1/4 writing plucked-string melodies to {out / 'data'}")
    paths = write_demo_dataset(out / "data", sample_rate=config.data.sample_rate)
    click.echo(f"2/4 training for {minutes:g} minute(s) on the CPU")
    summary = _train(config, out, minutes)
    if summary.interrupted:  # a signal stops the demo, not just its training
        signum = summary.stop_signal or signal.SIGINT
        how = (
            "interrupted"
            if signum == signal.SIGINT
            else f"stopped by {signal.Signals(signum).name}"
        )
        click.echo(
            f"{how} at step {summary.step}; checkpoint saved in {out / 'run'} "
            f"(wavenet generate {out / 'run'} --out clip.wav samples from it)",
            err=True,
        )
        raise SystemExit(128 + signum)  # 130 for Ctrl-C (common.INTERRUPTED), 143 for SIGTERM
    click.echo(f"3/4 generating {seconds:g} s of audio")
    generated, rate, config = _generate(out, seconds)
    click.echo("4/4 drawing pictures")
    _draw(out, paths[0], generated, config.data.sample_rate)
    click.echo(_report(out, config, summary, paths, generated, rate))


def _train(config, out: Path, minutes: float):  # -> wavenet.train.loop.TrainSummary
    """`wavenet train --minutes` on the melodies, with a progress bar."""
    from wavenet.train.loop import TrainOptions, train

    options = TrainOptions(
        data=out / "data",
        out=out / "run",
        steps=None,
        device="cpu",
        cache_dir=out / "cache",
        budget=60.0 * minutes,
    )
    bar = ProgressBar(None, label="training", seconds=options.budget)
    try:
        return train(config, options, progress=bar.update)
    finally:
        bar.close()


def _generate(out: Path, seconds: float):  # -> (waveform, samples/s, config)
    """Generate from the run into OUT/generated.wav; the speed leaves out the one-time
    kernel compile (a few samples are generated first)."""
    import soundfile as sf
    import torch

    from wavenet.coding.pcm import codes_to_waveform, file_samples
    from wavenet.generation.driver import generate
    from wavenet.io.checkpoint import load_model

    model, config, _ = load_model(out / "run")
    n = int(seconds * config.data.sample_rate)
    generate(model, 16, generator=torch.Generator().manual_seed(1))
    started = time.perf_counter()
    codes = generate(model, n, generator=torch.Generator().manual_seed(0))
    rate = n / (time.perf_counter() - started)
    m = config.model
    generated = codes_to_waveform(codes[0], m.classes, m.coding).numpy()
    sf.write(
        out / "generated.wav",
        file_samples(codes[0], m.classes, m.coding),
        config.data.sample_rate,
        subtype="PCM_16",
    )
    return generated, rate, config


def _draw(out: Path, clip_path: Path, generated, sample_rate: int) -> None:
    """Spectrograms of a training clip beside the generated audio; the training curves."""
    import soundfile as sf

    from wavenet.eval.plots import plot_curves, plot_spectrograms, read_metrics

    training_clip, _ = sf.read(clip_path, frames=len(generated), dtype="float32")
    plot_spectrograms(
        [("training clip", training_clip), ("generated", generated)],
        sample_rate,
        out / "spectrograms.png",
    )
    plot_curves(read_metrics(out / "run"), out / "curves.png", title="demo run")


def _report(out: Path, config, summary, paths: list[Path], generated, rate: float) -> str:
    """The closing lines: validation bits beside xz -9e, speed, flatness and periodicity."""
    import numpy as np
    import soundfile as sf

    from wavenet.data.demo import noise_figures, tone_figures
    from wavenet.data.prepare import prepare_data
    from wavenet.eval.compression import compressed_bits_per_sample

    sample_rate = config.data.sample_rate
    val_files = prepare_data(config, out / "data", cache_dir=out / "cache").val.files
    xz = compressed_bits_per_sample([f.codes for f in val_files], "xz", config.model.classes)
    clips = [tone_figures(sf.read(path, dtype="float32")[0], sample_rate) for path in paths]
    noise = noise_figures(max(len(generated), sample_rate), sample_rate)
    try:
        ours = tone_figures(generated, sample_rate)
        flatness, periodicity = f"{ours.flatness:.3f}", f"{ours.periodicity:.2f}"
    except ValueError:  # shorter than a frame, or silent
        flatness = periodicity = "n/a"
    best = summary.best_val_bits
    gap = xz - best
    return (
        f"\ndone: {summary.step} of {summary.total_steps} scheduled steps, validation "
        f"{best:.3f} bits/sample, {abs(gap):.3f} {'below' if gap >= 0 else 'above'} "
        f"xz -9e on the same validation codes ({xz:.3f})\n"
        f"generation: {rate:,.0f} samples/s ({rate / sample_rate:.1f}x real time, timed "
        f"after the one-time kernel compile)\n"
        f"spectral flatness (0 a pure tone, 0.56 white noise): generated {flatness}, "
        f"training clips {np.mean([c.flatness for c in clips]):.3f}, white noise "
        f"{noise.flatness:.3f}\n"
        f"periodicity (peak autocorrelation at 2-15 ms; near 1 a ringing string): generated "
        f"{periodicity}, training clips {np.mean([c.periodicity for c in clips]):.2f}, "
        f"white noise {noise.periodicity:.2f}\n"
        f"listen: {out / 'generated.wav'} (and the training data in {out / 'data'})\n"
        f"look:   {out / 'spectrograms.png'}  {out / 'curves.png'}\n"
        f"more:   wavenet info {out / 'run'}; wavenet generate {out / 'run'} --out more.wav"
    )

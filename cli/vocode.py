"""`wavenet generate RUN --mel-dir DIR --out-dir OUT`: vocode a folder of mels.

Every .npy/.pt file of DIR becomes OUT/NAME.wav of exactly frames x hop_length samples;
a file that cannot be vocoded (unreadable, wrong band count or layout, NaN) is skipped
with one line naming it and why, and the others are vocoded, many streams at once.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from .common import MAX_SAMPLES, check_writable, refuse_existing


def vocode_folder(
    run: Path,
    mel_dir: Path,
    out_dir: Path,
    *,
    batch: int,
    temperature: float,
    seed: int,
    device: str,
    spectrogram: bool,
    force: bool,
    as_json: bool = False,
    weights: str = "float32",
) -> None:
    """Vocode every mel file of `mel_dir` into `out_dir`; `seed` is chosen and printed by
    the caller (`choose_seed`)."""
    import torch

    from wavenet.data.melfiles import mel_files_in
    from wavenet.io.checkpoint import load_model

    paths = mel_files_in(mel_dir)
    if not paths:
        raise click.ClickException(f"no .npy or .pt files in {mel_dir}")
    from wavenet.generation.driver import resolve_weights

    model, config, _ = load_model(run, device=device)
    weights = resolve_weights(model, weights)
    if config.model.local_channels is None:
        raise click.ClickException(f"{run} is not a vocoder (it takes no mel); --mel-dir needs one")
    if config.model.global_classes is not None:
        raise click.ClickException("--mel-dir vocodes without speakers; this model needs one")
    names, mels, skipped = _read_mels(paths, config.mel.n_mels, config.mel.hop_length)
    outputs = [out_dir / f"{name}.wav" for name in names]
    pictures = [p.with_suffix(".png") for p in outputs] if spectrogram else []
    refuse_existing(outputs + pictures, force)
    if not mels:
        raise click.ClickException(f"no usable mel in {mel_dir} ({skipped} skipped)")
    check_writable(out_dir / "probe.wav")
    # A CPU generator, as generate's: the same seed gives the same audio on any device.
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    audio = _vocode_with_progress(model, mels, batch, temperature, generator, as_json, weights)
    rate = sum(len(a) for a in audio) / (time.perf_counter() - started)
    _write(outputs, pictures, audio, config.data.sample_rate)
    if as_json:
        report = {
            "files": [str(p) for p in outputs],
            "spectrograms": [str(p) for p in pictures],
            "skipped": skipped,
            "sample_rate": config.data.sample_rate,
            "seed": seed,
            "samples_per_s": rate,
            "real_time_factor": rate / config.data.sample_rate,
            "weights": weights,
        }
        click.echo(json.dumps(report))
        return
    click.echo(
        f"vocoded {len(outputs)} mel(s) into {out_dir}"
        f"{f', skipped {skipped}' if skipped else ''}; {rate:,.0f} samples/s "
        f"({rate / config.data.sample_rate:.2f}x real time, {weights} products)"
    )


def _read_mels(paths: list[Path], n_mels: int, hop: int):  # -> (names, mels, skipped)
    """The usable mels, (n_mels, frames) each, by output name; one line per skipped file."""
    from wavenet.data.melfiles import orient_mel, read_mel_file
    from wavenet.errors import ConditioningError

    names, mels, skipped = [], [], 0
    for path in paths:
        try:
            if path.stem in names:
                raise ConditioningError(f"{path.stem}.wav comes from another file already")
            mel = orient_mel(read_mel_file(path), n_mels)
            if mel.shape[1] * hop > MAX_SAMPLES:
                raise ConditioningError(f"{mel.shape[1]} frames are more than a WAV file holds")
        except ConditioningError as error:
            click.echo(f"skipping {path.name}: {error}", err=True)
            skipped += 1
            continue
        names.append(path.stem)
        mels.append(mel)
    return names, mels, skipped


def _vocode_with_progress(
    model, mels, batch: int, temperature: float, generator, on_stderr: bool, weights: str
):  # -> list of float waveforms
    from wavenet.generation.vocoder import vocode

    started = time.perf_counter()
    with click.progressbar(
        length=1,
        label="vocoding",
        show_percent=True,
        item_show_func=lambda text: text,
        file=sys.stderr if on_stderr else None,
    ) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = total
            rate = done / max(time.perf_counter() - started, 1e-9)
            bar.update(done - bar.pos, f"{rate:,.0f} steps/s")

        return vocode(
            model,
            mels,
            batch_size=batch,
            temperature=temperature,
            generator=generator,
            progress=progress,
            weights=weights,
        )


def _write(outputs: list[Path], pictures: list[Path], audio, sample_rate: int) -> None:
    from wavenet.util.files import atomic_write_audio

    for path, stream in zip(outputs, audio):
        atomic_write_audio(path, stream.numpy(), sample_rate)
    if pictures:
        from wavenet.eval.plots import plot_spectrograms

        for picture, path, stream in zip(pictures, outputs, audio):
            plot_spectrograms([(path.name, stream.numpy())], sample_rate, picture)

"""`wavenet mel RUN AUDIO_OR_FOLDER --out-dir DIR`: a run's mel features as .npy files,
(n_mels, frames) each, to check an acoustic model's output against real ones or to train
an acoustic model on them. `wavenet mel AUDIO_OR_FOLDER --run RUN ...`, the old spelling,
still works (hidden from --help)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO

import click

from .common import check_writable, json_option, refuse_existing, setup_logging, verbose_option


@click.command("mel")
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("source", type=click.Path(path_type=Path), required=False)
@click.option(
    "--run",
    "old_run",
    type=click.Path(path_type=Path),
    default=None,
    hidden=True,
    help="Deprecated: the run is the first argument, `wavenet mel RUN SOURCE`.",
)
@click.option(
    "--out-dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Output folder: NAME.npy per audio file (sub-folders kept; NAME.EXT.npy "
    "where two files of a folder share a NAME).",
)
@click.option("--force", is_flag=True, help="Overwrite existing .npy files.")
@json_option
@verbose_option
def mel_command(
    run: Path,
    source: Path | None,
    old_run: Path | None,
    out_dir: Path,
    force: bool,
    as_json: bool,
    verbose: bool,
) -> None:
    """Write the mel of every audio file in SOURCE (a file or a folder, searched
    recursively) as the vocoder RUN (a run folder or checkpoint) computes it: float32
    (n_mels, frames).

    Each file gets its own NAME.npy; where two files of one folder share a NAME (a.wav and
    a.flac) both keep their extension (a.wav.npy, a.flac.npy), names that `train
    --mel-dir` also looks for."""
    run, source = _run_and_source(run, source, old_run)
    setup_logging(verbose)
    import numpy as np

    from wavenet.data.audio import AudioDecodeError, DataError, find_audio_files
    from wavenet.data.conditioning import mel_of_audio
    from wavenet.io.checkpoint import config_from_checkpoint, load_checkpoint, resolve_checkpoint
    from wavenet.util.files import atomic_write_bytes

    config = config_from_checkpoint(load_checkpoint(resolve_checkpoint(run)))
    if config.model.local_channels is None:
        raise click.ClickException(
            f"{run} is not a vocoder (model.local_channels is unset): it has no mel features"
        )
    if source.is_dir():
        paths = find_audio_files(source)
        targets = _targets([p.relative_to(source) for p in paths], out_dir)
    elif source.is_file():
        paths, targets = [source], [out_dir / f"{source.stem}.npy"]
    else:
        raise DataError(f"{source} does not exist")
    if not paths:
        raise DataError(f"no audio files in {source}")
    refuse_existing(targets, force)
    check_writable(out_dir / "probe.npy")
    written = 0
    skipped: list[str] = []
    bar_file = sys.stderr if as_json else None
    with click.progressbar(list(zip(paths, targets)), label="mels", file=bar_file) as items:
        for path, target in items:
            try:
                mel = mel_of_audio(path, config)
            except AudioDecodeError as error:
                click.echo(f"\nskipping {path}: {error.reason}", err=True)
                skipped.append(str(path))
                continue
            if mel.shape[1] == 0:  # a mel no vocoder can use
                click.echo(
                    f"\nskipping {path}: shorter than one hop ({config.mel.hop_length} "
                    f"samples at {config.data.sample_rate} Hz), so no mel frames",
                    err=True,
                )
                skipped.append(str(path))
                continue
            array = mel.numpy().astype(np.float32)

            def write(handle: IO[bytes], array: np.ndarray = array) -> None:
                np.save(handle, array)

            atomic_write_bytes(target, write)
            written += 1
    if written == 0:
        raise click.ClickException(f"no mel could be made from the audio in {source}")
    m = config.mel
    if as_json:
        report = {
            "written": written,
            "skipped": skipped,
            "out_dir": str(out_dir),
            "n_mels": m.n_mels,
            "format": m.format,
            "hop_length": m.hop_length,
            "sample_rate": config.data.sample_rate,
        }
        click.echo(json.dumps(report))
        return
    click.echo(
        f"wrote {written} mel(s) of {m.n_mels} bands ({m.format} format, hop "
        f"{m.hop_length} at {config.data.sample_rate} Hz) to {out_dir}"
    )


def _run_and_source(run: Path, source: Path | None, old_run: Path | None) -> tuple[Path, Path]:
    """(RUN, SOURCE) from `mel RUN SOURCE`, or from the old `mel SOURCE --run RUN`."""
    if old_run is None:
        if source is None:
            raise click.UsageError("Missing argument 'SOURCE'.")
        return run, source
    if source is not None:
        raise click.UsageError("give the run once: `wavenet mel RUN SOURCE` (--run is the old way)")
    return old_run, run


def _targets(relative: list[Path], out_dir: Path) -> list[Path]:
    """The .npy file of each audio path (relative to the source folder), distinct within
    each folder (`melfiles.mel_file_names`), in the same order."""
    from wavenet.data.melfiles import mel_file_names

    folders: dict[Path, list[int]] = {}
    for i, path in enumerate(relative):
        folders.setdefault(path.parent, []).append(i)
    targets: list[Path] = list(relative)
    for folder, indices in folders.items():
        for i, name in zip(indices, mel_file_names([relative[i].name for i in indices])):
            targets[i] = out_dir / folder / name
    return targets

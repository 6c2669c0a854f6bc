"""`wavenet mel AUDIO_OR_FOLDER --run RUN --out-dir DIR`: a run's mel features as .npy
files, (n_mels, frames) each, to check an acoustic model's output against real ones or
to train an acoustic model on them."""

from __future__ import annotations

from pathlib import Path

import click

from .common import check_writable, setup_logging


@click.command("mel")
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--run",
    required=True,
    type=click.Path(path_type=Path),
    help="Vocoder run folder or checkpoint whose mel settings are used.",
)
@click.option(
    "--out-dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Output folder: NAME.npy per audio file (sub-folders kept; NAME.EXT.npy "
    "where two files of a folder share a NAME).",
)
@click.option("--force", is_flag=True, help="Overwrite existing .npy files.")
def mel_command(source: Path, run: Path, out_dir: Path, force: bool) -> None:
    """Write the mel of every audio file in SOURCE (a file or a folder, searched
    recursively) as the vocoder in RUN computes it: float32 (n_mels, frames).

    Each file gets its own NAME.npy; where two files of one folder share a NAME (a.wav and
    a.flac) both keep their extension (a.wav.npy, a.flac.npy), names that `train
    --mel-dir` also looks for."""
    setup_logging()
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
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise click.ClickException(f"{existing[0]} exists; pass --force to overwrite")
    check_writable(out_dir / "probe.npy")
    written = 0
    with click.progressbar(list(zip(paths, targets)), label="mels") as items:
        for path, target in items:
            try:
                mel = mel_of_audio(path, config)
            except AudioDecodeError as error:
                click.echo(f"\nskipping {path}: {error.reason}", err=True)
                continue
            if mel.shape[1] == 0:  # a mel no vocoder can use
                click.echo(
                    f"\nskipping {path}: shorter than one hop ({config.mel.hop_length} "
                    f"samples at {config.data.sample_rate} Hz), so no mel frames",
                    err=True,
                )
                continue
            array = mel.numpy().astype(np.float32)
            atomic_write_bytes(target, lambda handle: np.save(handle, array))
            written += 1
    if written == 0:
        raise click.ClickException(f"no mel could be made from the audio in {source}")
    m = config.mel
    click.echo(
        f"wrote {written} mel(s) of {m.n_mels} bands ({m.format} format, hop "
        f"{m.hop_length} at {config.data.sample_rate} Hz) to {out_dir}"
    )


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

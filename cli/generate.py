"""`wavenet generate`: audio from a trained model, written to wav files."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .common import resolve_device, setup_logging, user_errors


def output_paths(out: Path, batch: int) -> list[Path]:
    """FILE.wav for one stream; FILE_0.wav ... FILE_{B-1}.wav for a batch."""
    if batch == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(batch)]


@click.command("generate")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Output wav file (a batch writes FILE_0.wav, FILE_1.wav, ...).")
@click.option("--seconds", type=float, default=None, help="Length in seconds [default: 2].")
@click.option("--samples", type=int, default=None, help="Length in samples (instead of --seconds).")
@click.option("--batch", type=int, default=1, show_default=True, help="Independent streams.")
@click.option("--temperature", type=float, default=1.0, show_default=True,
              help="Scales the logits; 0 picks the most likely code.")
@click.option("--prime", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Audio file whose samples prime the model before generation.")
@click.option("--seed", type=int, default=None, help="Seed for reproducible sampling.")
@click.option("--speaker", default=None, help="Speaker name, for a model trained with speakers.")
@click.option("--mel-from", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Vocoder: resynthesize this audio file from its mel spectrogram.")
@click.option("--mel", "mel_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Vocoder: a saved log-mel tensor (.pt or .npy), (n_mels, frames).")
@click.option("--device", default=None, help="cpu or cuda [default: cuda if present, else cpu]")
@click.option("--spectrogram", is_flag=True,
              help="Also write FILE.png, the spectrogram of each generated file.")
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
def generate_command(run: Path, out: Path, seconds: float | None, samples: int | None, batch: int,
                     temperature: float, prime: Path | None, seed: int | None,
                     speaker: str | None, mel_from: Path | None, mel_file: Path | None,
                     device: str | None, spectrogram: bool, force: bool) -> None:
    """Generate audio with the model in RUN (a run folder or a checkpoint file).

    Exactly the requested number of samples is written, at the model's sample rate; a
    prime is not included in the output.
    """
    setup_logging()
    if seconds is not None and samples is not None:
        raise click.ClickException("give either --seconds or --samples, not both")
    if batch < 1:
        raise click.ClickException(f"--batch must be >= 1, got {batch}")
    if temperature < 0:
        raise click.ClickException(f"--temperature must be >= 0, got {temperature}")
    paths = output_paths(out, batch)
    pictures = [p.with_suffix(".png") for p in paths] if spectrogram else []
    existing = [str(p) for p in paths + pictures if p.exists()]
    if existing and not force:
        raise click.ClickException(f"{existing[0]} exists; pass --force to overwrite")

    import soundfile as sf
    import torch

    from wavenet.checkpoint import load_model
    from wavenet.data import AudioDecodeError, decode_audio
    from wavenet.generation import generate
    from wavenet.mulaw import mu_law_decode, mu_law_encode

    with user_errors():
        model, config, payload = load_model(run, device=resolve_device(device))
    sample_rate = config.data.sample_rate
    global_cond = _speaker_ids(config, payload["extra"].get("speakers"), speaker, batch)
    mel = _mel_input(config, mel_from, mel_file, batch)
    if mel is not None:
        if seconds is not None or samples is not None or prime is not None:
            raise click.ClickException("with a mel the length is frames x hop_length: drop "
                                       "--seconds/--samples/--prime")
        mel = mel.to(next(model.parameters()).device)
        n = mel.shape[2] * config.mel.hop_length
    else:
        n = samples if samples is not None else round((2.0 if seconds is None else seconds) * sample_rate)
    if n < 1:
        raise click.ClickException(f"the length must be at least one sample, got {n}")
    q = config.model.quantization_channels
    prime_codes = None
    if prime is not None:
        try:
            prime_codes = mu_law_encode(torch.from_numpy(decode_audio(prime, sample_rate)), q)
        except AudioDecodeError as error:
            raise click.ClickException(f"cannot use --prime {prime}: {error}") from None
        if prime_codes.numel() == 0:
            raise click.ClickException(f"--prime {prime} holds no samples")
    generator = torch.Generator(device=next(model.parameters()).device)
    generator.manual_seed(seed if seed is not None else torch.seed())

    started = time.perf_counter()
    with click.progressbar(length=n, label="generating", show_pos=True,
                           item_show_func=lambda text: text) as bar:
        def progress(done: int, total: int) -> None:
            rate = done * batch / max(time.perf_counter() - started, 1e-9)
            bar.update(done - bar.pos, f"{rate:,.0f} samples/s, {rate / sample_rate:.2f}x real time")

        codes = generate(model, n, batch_size=batch, temperature=temperature, prime=prime_codes,
                         generator=generator, progress=progress, global_cond=global_cond, mel=mel)
    elapsed = time.perf_counter() - started
    audio = mu_law_decode(codes.cpu(), q).numpy()
    for path, stream in zip(paths, audio):
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, stream, sample_rate, subtype="PCM_16")
    for picture, path, stream in zip(pictures, paths, audio):
        from wavenet.plots import PlotError, plot_spectrograms

        try:
            plot_spectrograms([(path.name, stream)], sample_rate, picture)
        except PlotError as error:
            raise click.ClickException(str(error)) from None
    rate = n * batch / elapsed
    if pictures:
        click.echo(f"spectrogram{'s' if len(pictures) > 1 else ''}: {', '.join(map(str, pictures))}")
    click.echo(f"wrote {len(paths)} file(s) of {n} samples ({n / sample_rate:.2f} s) to "
               f"{paths[0] if batch == 1 else str(paths[0]) + ' ...'}; {rate:,.0f} samples/s "
               f"({rate / sample_rate:.2f}x real time)")


def _speaker_ids(config, speakers: list[str] | None, speaker: str | None, batch: int):
    """The global ids for --speaker: required by a speaker model, refused by others."""
    import torch

    if config.model.global_classes is None:
        if speaker is not None:
            raise click.ClickException("this model was not trained with speakers; drop --speaker")
        return None
    known = speakers or [str(i) for i in range(config.model.global_classes)]
    if speaker is None:
        raise click.ClickException(f"this model needs --speaker; known: {', '.join(known)}")
    if speaker not in known:
        raise click.ClickException(f"unknown speaker {speaker!r}; known: {', '.join(known)}")
    return torch.full((batch,), known.index(speaker), dtype=torch.long)


def _mel_input(config, mel_from: Path | None, mel_file: Path | None, batch: int):
    """(batch, n_mels, frames) log-mel from --mel-from audio or a --mel tensor file."""
    import numpy as np
    import torch

    if config.model.local_channels is None:
        if mel_from is not None or mel_file is not None:
            raise click.ClickException("this model is not a vocoder; drop --mel-from/--mel")
        return None
    if (mel_from is None) == (mel_file is None):
        raise click.ClickException("this model is a vocoder: give --mel-from AUDIO or --mel FILE")
    if mel_from is not None:
        from wavenet.data import AudioDecodeError, decode_audio
        from wavenet.features import log_mel_of_waveform

        try:
            waveform = torch.from_numpy(decode_audio(mel_from, config.data.sample_rate))
        except AudioDecodeError as error:
            raise click.ClickException(f"cannot use --mel-from {mel_from}: {error}") from None
        mel = log_mel_of_waveform(waveform, config.data.sample_rate, config.mel,
                                  config.model.quantization_channels)
    else:
        try:
            if mel_file.suffix.lower() == ".npy":
                mel = torch.from_numpy(np.load(mel_file, allow_pickle=False))
            else:
                mel = torch.load(mel_file, map_location="cpu", weights_only=True)
        except Exception as error:  # a user's file: any failure to read it is their error
            raise click.ClickException(f"cannot read --mel {mel_file}: {str(error).splitlines()[0]}") from None
        if not isinstance(mel, torch.Tensor):
            raise click.ClickException(f"--mel {mel_file} holds no tensor")
    mel = mel.float()
    if mel.dim() == 2:
        mel = mel.unsqueeze(0)
    if mel.dim() != 3 or mel.shape[1] != config.mel.n_mels or mel.shape[0] not in (1, batch):
        raise click.ClickException(f"the mel must be (n_mels={config.mel.n_mels}, frames) or "
                                   f"({batch}, {config.mel.n_mels}, frames), got {tuple(mel.shape)}")
    if mel.shape[2] == 0:
        raise click.ClickException("the mel has no frames (audio shorter than one hop?)")
    return mel.expand(batch, -1, -1).contiguous()

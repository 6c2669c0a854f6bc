"""`wavenet generate`: audio from a trained model, written to wav files, or with `--out -`
streamed to stdout as a WAV while it is made (`wavenet generate RUN --out - | aplay`)."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import click

from .common import (
    MAX_SAMPLES,
    check_length,
    check_writable,
    choose_seed,
    json_option,
    refuse_existing,
    resolve_device,
    setup_logging,
    verbose_option,
)


def output_paths(out: Path, batch: int) -> list[Path]:
    """FILE.wav for one stream; FILE_0.wav ... FILE_{B-1}.wav for a batch."""
    if batch == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(batch)]


def check_arguments(
    seconds: float | None, samples: int | None, batch: int, temperature: float, seed: int | None
) -> None:
    """Refuse impossible arguments before anything is loaded or written."""
    from wavenet.config import MAX_SAMPLE_RATE, MAX_SEED

    if seconds is not None and samples is not None:
        raise click.ClickException("give either --seconds or --samples, not both")
    if seconds is not None and not (math.isfinite(seconds) and seconds * MAX_SAMPLE_RATE < 2**63):
        raise click.ClickException(
            f"--seconds must be a finite number of a sane size, got {seconds}"
        )
    if samples is not None and samples > MAX_SAMPLES:
        raise click.ClickException(
            f"--samples must be <= {MAX_SAMPLES:,} (a WAV file's limit), got {samples:,}"
        )
    if batch < 1:
        raise click.ClickException(f"--batch must be >= 1, got {batch}")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise click.ClickException(f"--temperature must be a finite number >= 0, got {temperature}")
    if seed is not None and not 0 <= seed < MAX_SEED:
        raise click.ClickException(f"--seed must be in [0, 2**63 - 1), got {seed}")


def check_audio_name(out: Path) -> None:
    """`out` must name a format soundfile writes as 16-bit PCM (its extension picks the
    format), so a name it cannot write is refused before generating, not after."""
    import soundfile as sf

    kind = out.suffix[1:].upper()
    if not (kind in sf.available_formats() and sf.check_format(kind, "PCM_16")):
        what = f"a {out.suffix} file" if out.suffix else "a file without an extension"
        raise click.ClickException(
            f"cannot write 16-bit audio to {what} ({out}); name --out FILE.wav (or .flac, .aiff)"
        )


@click.command("generate")
@click.argument("run", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Output wav file (a batch writes FILE_0.wav, FILE_1.wav, ...); - streams a "
    "16-bit WAV to stdout as it is made (messages go to stderr then).",
)
@click.option("--seconds", type=float, default=None, help="Length in seconds [default: 2].")
@click.option("--samples", type=int, default=None, help="Length in samples (instead of --seconds).")
@click.option(
    "--batch",
    type=int,
    default=None,
    help="Independent streams; with --mel-dir, mels vocoded at once. "
    "[default: 1; 8 with --mel-dir]",
)
@click.option(
    "--temperature",
    type=float,
    default=1.0,
    show_default=True,
    help="Scales the logits; 0 picks the most likely code (mol: divides the "
    "mixture logits and multiplies the scales; 0 takes the heaviest "
    "component's mean).",
)
@click.option(
    "--prime",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Audio file whose samples prime the model before generation.",
)
@click.option("--seed", type=int, default=None, help="Seed for reproducible sampling.")
@click.option("--speaker", default=None, help="Speaker name, for a model trained with speakers.")
@click.option(
    "--mel-from",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Vocoder: resynthesize this audio file from its mel spectrogram.",
)
@click.option(
    "--mel",
    "mel_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Vocoder: a saved log-mel tensor (.pt or .npy), (n_mels, frames).",
)
@click.option(
    "--mel-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Vocoder: vocode every .npy/.pt mel in this folder, (n_mels, frames) or "
    "(frames, n_mels), to --out-dir/NAME.wav.",
)
@click.option(
    "--out-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Output folder for --mel-dir.",
)
@click.option(
    "--device",
    default=None,
    help="cpu or cuda [default: cpu, the compiled kernel: measured fastest at "
    "small batches on CPUs; no GPU has been measured]",
)
@click.option(
    "--spectrogram",
    is_flag=True,
    help="Also write FILE.png, the spectrogram of each generated file.",
)
@click.option(
    "--weights",
    type=click.Choice(["auto", "float32", "bf16", "int8", "bf16-dot", "int8-dot"]),
    default="auto",
    show_default=True,
    help="The products' arithmetic in the CPU kernel. auto: int8-dot where the CPU has "
    "AVX-512 VNNI (int8 weights and inputs: about 2x float32 at one stream, +0.001 "
    "bits/sample or less, docs/decisions.md), else float32. bf16 and int8 store the "
    "weights only in fewer bytes; bf16-dot rounds the inputs to bf16 too (AVX-512 BF16). "
    "float32: the model's own arithmetic, the same codes for a seed on any CPU.",
)
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@json_option
@verbose_option
def generate_command(
    run: Path,
    out: Path | None,
    seconds: float | None,
    samples: int | None,
    batch: int | None,
    temperature: float,
    prime: Path | None,
    seed: int | None,
    speaker: str | None,
    mel_from: Path | None,
    mel_file: Path | None,
    mel_dir: Path | None,
    out_dir: Path | None,
    device: str | None,
    spectrogram: bool,
    weights: str,
    force: bool,
    as_json: bool,
    verbose: bool,
) -> None:
    """Generate audio with the model in RUN (a run folder or a checkpoint file).

    Exactly the requested number of samples is written, at the model's sample rate; a
    prime is not included in the output. A vocoder writes frames x hop_length samples
    per mel; --mel-dir vocodes a folder of mels, many at once.
    """
    setup_logging(verbose)
    # The CPU kernel unless a device is asked for: it is the measured fastest path at
    # small batches; the per-op PyTorch loop a GPU runs has not been measured.
    device = "cpu" if device is None else resolve_device(device)
    if mel_dir is not None or out_dir is not None:
        if mel_dir is None or out_dir is None:
            raise click.ClickException("--mel-dir and --out-dir go together")
        given = [
            name
            for name, value in (
                ("--out", out),
                ("--seconds", seconds),
                ("--samples", samples),
                ("--prime", prime),
                ("--mel-from", mel_from),
                ("--mel", mel_file),
            )
            if value is not None
        ]
        if given:
            raise click.ClickException(
                f"--mel-dir vocodes each mel at its own length into --out-dir: drop {given[0]}"
            )
        check_arguments(None, None, 8 if batch is None else batch, temperature, seed)
        from .vocode import vocode_folder

        if speaker is not None:
            raise click.ClickException("--mel-dir vocodes without speakers: drop --speaker")
        vocode_folder(
            run,
            mel_dir,
            out_dir,
            batch=8 if batch is None else batch,
            temperature=temperature,
            seed=choose_seed(seed, err=as_json),
            device=device,
            spectrogram=spectrogram,
            force=force,
            as_json=as_json,
            weights=weights,
        )
        return
    if out is None:
        raise click.ClickException("give --out FILE.wav (or --mel-dir DIR --out-dir DIR)")
    batch = 1 if batch is None else batch
    check_arguments(seconds, samples, batch, temperature, seed)
    # Before a path is made for each stream: with the length still unknown (it may need the
    # model's sample rate or a mel), one sample per stream at least.
    check_length(1 if samples is None else samples, batch)
    streaming = str(out) == "-"
    if streaming:
        if batch != 1:
            raise click.ClickException("--out - streams one WAV: drop --batch")
        if spectrogram:
            raise click.ClickException(
                "--out - writes no file beside the stream: drop --spectrogram"
            )
        paths, pictures = [], []
        # Everything but the audio goes to stderr.
        as_json_err = True
    else:
        as_json_err = as_json
        check_audio_name(out)
        paths = output_paths(out, batch)
        pictures = [p.with_suffix(".png") for p in paths] if spectrogram else []
        refuse_existing(paths + pictures, force)
        check_writable(out)

    import torch

    from wavenet.data.conditioning import speaker_ids
    from wavenet.generation.driver import resolve_weights
    from wavenet.io.checkpoint import load_model

    model, config, payload = load_model(run, device=device)
    weights = resolve_weights(model, weights)
    global_cond = speaker_ids(config, payload["extra"].get("speakers"), speaker, batch)
    mel, n = _mel_and_length(config, model, mel_from, mel_file, seconds, samples, prime, batch)
    prime_codes = _prime_codes(prime, config) if prime is not None else None
    # The uniforms come from a CPU generator whatever the device: a seed means the same
    # random numbers, so the same codes wherever the logits agree.
    seed = choose_seed(seed, err=as_json_err)
    generator = torch.Generator().manual_seed(seed)
    stream = _stdout_stream(config, n) if streaming else None
    started = time.perf_counter()
    try:
        codes = _generate_with_progress(
            model,
            n,
            batch,
            temperature,
            prime_codes,
            generator,
            global_cond,
            mel,
            config.data.sample_rate,
            as_json_err,
            on_codes=None if stream is None else stream,
            weights=weights,
        )
        rate = n * batch / (time.perf_counter() - started)
        if not streaming:
            _write(codes, config, paths, pictures)
    except MemoryError:
        raise click.ClickException(
            f"out of memory generating {batch:,} x {n:,} samples: lower --batch or the length"
        ) from None
    except BrokenPipeError:
        # The reader went away (a player closed, `head -c`): nothing more to write.
        _quiet_stdout()
        raise click.ClickException(
            "the output pipe was closed before the audio was complete"
        ) from None
    sample_rate = config.data.sample_rate
    _warn_if_silent(codes, config)
    if as_json:
        report = {
            "files": ["-"] if streaming else [str(p) for p in paths],
            "spectrograms": [str(p) for p in pictures],
            "samples": n,
            "seconds": n / sample_rate,
            "sample_rate": sample_rate,
            "seed": seed,
            "samples_per_s": rate,
            "real_time_factor": rate / sample_rate,
            "weights": weights,
        }
        click.echo(json.dumps(report), err=streaming)  # stdout holds the audio then
        return
    if streaming:
        click.echo(
            f"streamed {n} samples ({n / sample_rate:.2f} s) to stdout; {rate:,.0f} samples/s "
            f"({rate / sample_rate:.2f}x real time, {weights} products)",
            err=True,
        )
        return
    if pictures:
        click.echo(
            f"spectrogram{'s' if len(pictures) > 1 else ''}: {', '.join(map(str, pictures))}"
        )
    click.echo(
        f"wrote {len(paths)} file(s) of {n} samples ({n / sample_rate:.2f} s) to "
        f"{paths[0] if batch == 1 else str(paths[0]) + ' ...'}; {rate:,.0f} samples/s "
        f"({rate / sample_rate:.2f}x real time, {weights} products)"
    )


def _mel_and_length(
    config,
    model,
    mel_from: Path | None,
    mel_file: Path | None,
    seconds: float | None,
    samples: int | None,
    prime: Path | None,
    batch: int,
):  # -> (mel (B, n_mels, frames) or None, samples to generate)
    """The mel to vocode, if any, and the number of samples: frames x hop with a mel, else
    --samples or --seconds (2 s by default)."""
    from wavenet.data.conditioning import mel_input

    mel = mel_input(config, audio=mel_from, mel_file=mel_file, batch_size=batch)
    if mel is not None:
        if seconds is not None or samples is not None or prime is not None:
            raise click.ClickException(
                "with a mel the length is frames x hop_length: drop --seconds/--samples/--prime"
            )
        mel = mel.to(next(model.parameters()).device)
        n = mel.shape[2] * config.mel.hop_length
    else:
        n = (
            samples
            if samples is not None
            else round((2.0 if seconds is None else seconds) * config.data.sample_rate)
        )
    check_length(n, batch)
    return mel, n


def _prime_codes(prime: Path, config):  # -> LongTensor (T,)
    """The --prime file's last receptive field as codes at the model's sample rate: no
    generated code depends on earlier ones, so a long file is read from its end only."""
    import torch

    from wavenet.coding.pcm import waveform_to_codes
    from wavenet.data.audio import AudioDecodeError, decode_tail

    try:
        tail = decode_tail(prime, config.data.sample_rate, config.model.receptive_field)
        waveform = torch.from_numpy(tail)
    except AudioDecodeError as error:
        raise click.ClickException(f"cannot use --prime {prime}: {error}") from None
    codes = waveform_to_codes(waveform, config.model.classes, config.model.coding)
    if codes.numel() == 0:
        raise click.ClickException(f"--prime {prime} holds no samples")
    return codes


def _generate_with_progress(
    model,
    n: int,
    batch: int,
    temperature: float,
    prime_codes,
    generator,
    global_cond,
    mel,
    sample_rate: int,
    on_stderr: bool = False,
    on_codes=None,
    weights: str = "float32",
):  # -> codes (batch, n)
    """`wavenet.generate` with a progress bar that shows the speed (on stderr with --json)."""
    from wavenet.generation.driver import generate

    started = time.perf_counter()
    with click.progressbar(
        length=n,
        label="generating",
        show_pos=True,
        item_show_func=lambda text: text,
        file=sys.stderr if on_stderr else None,
    ) as bar:

        def progress(done: int, total: int) -> None:
            rate = done * batch / max(time.perf_counter() - started, 1e-9)
            bar.update(
                done - bar.pos, f"{rate:,.0f} samples/s, {rate / sample_rate:.2f}x real time"
            )

        return generate(
            model,
            n,
            batch_size=batch,
            temperature=temperature,
            prime=prime_codes,
            generator=generator,
            progress=progress,
            global_cond=global_cond,
            mel=mel,
            on_codes=on_codes,
            weights=weights,
        )


def _stdout_stream(config, n: int):  # -> a callable taking each chunk of codes (1, T)
    """A WAV stream of n samples on stdout; each chunk of codes is decoded and written as
    it is drawn, with soundfile's 16-bit conversion (the bytes a .wav file would hold)."""
    from wavenet.coding.pcm import file_samples
    from wavenet.io.wavstream import WavStream

    m = config.model
    stream = WavStream(sys.stdout.buffer, config.data.sample_rate, n)

    def write(codes) -> None:  # noqa: ANN001 - codes (1, T) LongTensor
        stream.write(file_samples(codes.cpu(), m.classes, m.coding)[0])

    return write


def _quiet_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so that the interpreter's own flush
    at exit does not print a second error."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


# Below this share of active 20 ms frames (louder than -40 dBFS) generated audio is called
# almost all silence; recordings of speech with pauses are active in about 0.6-0.8.
SILENT_SHARE = 0.05


def _warn_if_silent(codes, config) -> None:
    """One line when every stream written is almost all silence: a model that learned
    that silence continues (long pauses in its data) says nothing else about it."""
    from wavenet.coding.pcm import codes_to_waveform
    from wavenet.data.features import active_share

    m = config.model
    audio = codes_to_waveform(codes.cpu(), m.classes, m.coding).numpy()
    shares = [active_share(stream, config.data.sample_rate) for stream in audio]
    if max(shares) < SILENT_SHARE:
        click.echo(
            f"warning: the audio written is almost all silence ({100 * max(shares):.1f}% "
            f"of its 20 ms frames above -40 dBFS); a model trained on audio with long "
            f"silences can get stuck in one: try --prime with a clip of the data, "
            f"another --seed, or the run's checkpoints/last.pt",
            err=True,
        )


def _write(codes, config, paths: list[Path], pictures: list[Path]) -> None:
    """Decode the codes to PCM_16 files (and spectrogram pictures when asked), each
    written whole beside its target and renamed over it (`--force` keeps an old file
    until its replacement is complete)."""
    from wavenet.coding.pcm import codes_to_waveform, file_samples
    from wavenet.util.files import atomic_write_audio

    m = config.model
    samples = file_samples(codes.cpu(), m.classes, m.coding)
    for path, stream in zip(paths, samples):
        atomic_write_audio(path, stream, config.data.sample_rate)
    if pictures:
        from wavenet.eval.plots import plot_spectrograms

        audio = codes_to_waveform(codes.cpu(), m.classes, m.coding).numpy()
        for picture, path, stream in zip(pictures, paths, audio):
            plot_spectrograms([(path.name, stream)], config.data.sample_rate, picture)

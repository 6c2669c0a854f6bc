"""`wavenet eval`: bits per sample of a model over a folder of audio; for a vocoder also
copy synthesis (log-mel distance of its resynthesis, beside Griffin-Lim's)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from .common import (
    INTERRUPTED,
    json_option,
    one_line,
    resolve_device,
    setup_logging,
    verbose_option,
)


@click.command("eval")
@click.argument("run", type=click.Path(path_type=Path))
@click.option(
    "--data",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder of audio to score (speaker sub-folders for a speaker model).",
)
@click.option("--device", default=None, help="cpu or cuda [default: cuda if present, else cpu]")
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where decoded audio is cached.",
)
@click.option(
    "--resynth-seconds",
    type=float,
    default=2.0,
    show_default=True,
    help="Vocoder: resynthesize this much of each file (its start) from its mel "
    "for the log-mel distance; 0 skips it.",
)
@click.option(
    "--temperature",
    type=float,
    default=1.0,
    show_default=True,
    help="Vocoder: sampling temperature of the resynthesis.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Vocoder: seed of the resynthesis."
)
@json_option
@verbose_option
def eval_command(
    run: Path,
    data: Path,
    device: str | None,
    cache_dir: Path | None,
    resynth_seconds: float,
    temperature: float,
    seed: int,
    as_json: bool,
    verbose: bool,
) -> None:
    """Negative log-likelihood in bits/sample over every file in --data.

    RUN is a run folder (its best checkpoint, else last) or a checkpoint file. Every
    sample is predicted from a full receptive field of context; the first
    receptive_field samples of each file are context only. A vocoder also resynthesizes
    the first --resynth-seconds of each file from its mel and reports the log-mel
    distance (dB) to the file, beside that of Griffin-Lim from the same mel.
    """
    setup_logging(verbose)
    from wavenet.config import MAX_SEED
    from wavenet.data.prepare import prepare_data
    from wavenet.errors import WavenetError
    from wavenet.eval.bits import evaluate_codes
    from wavenet.io.checkpoint import load_model, speakers_from_checkpoint

    if not (0 <= resynth_seconds <= 3600):
        raise click.ClickException(f"--resynth-seconds must be in [0, 3600], got {resynth_seconds}")
    if not (temperature >= 0 and temperature != float("inf")):
        raise click.ClickException(f"--temperature must be a finite number >= 0, got {temperature}")
    if not 0 <= seed < MAX_SEED:
        raise click.ClickException(f"--seed must be in [0, 2**63 - 1), got {seed}")
    model, config, payload = load_model(run, device=resolve_device(device))
    files = prepare_data(
        config,
        data,
        speakers=speakers_from_checkpoint(payload),
        cache_dir=cache_dir,
        purpose="eval",
        exclude=[run] if run.is_dir() else [],
    ).val
    result = evaluate_codes(
        model, [f.codes for f in files.files], global_ids=files.global_ids, mels=files.mels
    )
    report: dict[str, object] = dict(result.to_dict())
    # The bits are reported even when copy synthesis cannot be done or is interrupted.
    copy = missing = None
    interrupted = False
    if files.mels is not None and files.global_ids is None and resynth_seconds > 0:
        try:
            copy = _copy_synthesis(model, config, files, resynth_seconds, temperature, seed)
            report["copy_synthesis"] = copy.to_dict()
        except (WavenetError, OSError) as error:  # what user_errors would make one line of
            missing = one_line(error)
        except KeyboardInterrupt:
            missing, interrupted = "interrupted", True
    if missing is not None:
        report["copy_synthesis_error"] = missing
    if as_json:
        click.echo(json.dumps(report))
    else:
        click.echo(
            f"{result.bits_per_sample:.4f} bits/sample over {result.samples:,} samples "
            f"in {result.files} file(s)"
        )
        if copy is not None:
            click.echo(
                f"copy synthesis, log-mel distance over the first {resynth_seconds:g} s "
                f"of {len(copy.files)} file(s): vocoder {copy.mean_vocoder_db:.2f} dB, "
                f"Griffin-Lim {copy.mean_griffin_lim_db:.2f} dB"
            )
    if missing is not None:
        click.echo(f"no copy synthesis: {missing}", err=True)
    if interrupted:
        raise SystemExit(INTERRUPTED)


def _copy_synthesis(model, config, files, seconds: float, temperature: float, seed: int):
    """wavenet.eval.copysynth.copy_synthesis with a progress bar (on stderr)."""
    import torch

    from wavenet.eval.copysynth import copy_synthesis

    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    started = time.perf_counter()
    with click.progressbar(
        length=1, label="resynthesizing", file=sys.stderr, item_show_func=lambda text: text
    ) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = total
            rate = done / max(time.perf_counter() - started, 1e-9)
            bar.update(done - bar.pos, f"{rate:,.0f} steps/s")

        return copy_synthesis(
            model,
            config,
            files,
            seconds=seconds,
            temperature=temperature,
            generator=generator,
            progress=progress,
        )

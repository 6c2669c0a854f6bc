"""`wavenet eval`: bits per sample of a model over a folder of audio."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import resolve_device, setup_logging


@click.command("eval")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--data", required=True, type=click.Path(path_type=Path),
              help="Folder of audio to score (speaker sub-folders for a speaker model).")
@click.option("--device", default=None, help="cpu or cuda [default: cuda if present, else cpu]")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
              help="Where decoded audio is cached.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def eval_command(run: Path, data: Path, device: str | None, cache_dir: Path | None,
                 as_json: bool) -> None:
    """Negative log-likelihood in bits/sample over every file in --data.

    RUN is a run folder (its best checkpoint, else last) or a checkpoint file. Every
    sample is predicted from a full receptive field of context; the first
    receptive_field samples of each file are context only.
    """
    setup_logging()
    from wavenet.checkpoint import load_model, speakers_from_checkpoint
    from wavenet.data import prepare_data
    from wavenet.evaluate import evaluate_codes

    model, config, payload = load_model(run, device=resolve_device(device))
    files = prepare_data(config, data, speakers=speakers_from_checkpoint(payload),
                         cache_dir=cache_dir, purpose="eval").val
    result = evaluate_codes(model, [f.codes for f in files.files],
                            global_ids=files.global_ids, mels=files.mels)
    if as_json:
        click.echo(json.dumps(result.to_dict()))
    else:
        click.echo(f"{result.bits_per_sample:.4f} bits/sample over {result.samples:,} samples "
                   f"in {result.files} file(s)")

"""`wavenet info`: what a run or checkpoint holds."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import json_option, setup_logging, verbose_option


@click.command("info")
@click.argument("run", type=click.Path(path_type=Path))
@json_option
@verbose_option
def info_command(run: Path, as_json: bool, verbose: bool) -> None:
    """Config, size, receptive field and progress of a run folder or checkpoint file."""
    setup_logging(verbose)
    from wavenet.io.checkpoint import load_checkpoint, model_from_checkpoint, resolve_checkpoint
    from wavenet.nn.model import parameter_count

    path = resolve_checkpoint(run, prefer="last")
    payload = load_checkpoint(path)
    model = model_from_checkpoint(payload)
    config = model.config
    sample_rate = payload["config"]["data"]["sample_rate"]
    info = {
        "checkpoint": str(path),
        "step": payload["step"],
        "parameters": parameter_count(model),
        "receptive_field": config.receptive_field,
        "receptive_field_ms": 1000.0 * config.receptive_field / sample_rate,
        "sample_rate": sample_rate,
        "best_val_bits": payload.get("best_val_bits"),
        "package_version": payload.get("package_version"),
        "format_version": payload.get("format_version"),
        "speakers": payload["extra"].get("speakers"),
        "config": payload["config"],
    }
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    best = info["best_val_bits"]
    click.echo(f"checkpoint       {path}")
    click.echo(f"step             {info['step']}")
    click.echo(f"parameters       {info['parameters']:,}")
    click.echo(
        f"receptive field  {config.receptive_field} samples "
        f"({info['receptive_field_ms']:.1f} ms at {sample_rate} Hz)"
    )
    click.echo(f"best validation  {'n/a' if best is None else f'{best:.4f} bits/sample'}")
    train_config = payload["config"].get("train", {})
    if train_config.get("init_from"):
        click.echo(
            f"started from     {train_config['init_from']} "
            f"(sha256 {train_config.get('init_from_sha256')})"
        )
    if info["speakers"]:
        names = ", ".join(f"{i}={name}" for i, name in enumerate(info["speakers"]))
        click.echo(f"speakers         {names}")
    for section, values in payload["config"].items():
        click.echo(f"[{section}]")
        for key, value in values.items():
            click.echo(f"  {key} = {value}")

"""`wavenet export`: a run's model as a shareable folder (config.json + model.safetensors)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import json_option, setup_logging, verbose_option


@click.command("export")
@click.argument("run", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder to write config.json, model.safetensors and README.md into.",
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "bf16"]),
    default="float32",
    show_default=True,
    help="Precision of the stored weights.",
)
@click.option("--force", is_flag=True, help="Replace an export already in --out.")
@json_option
@verbose_option
def export_command(
    run: Path, out: Path, dtype: str, force: bool, as_json: bool, verbose: bool
) -> None:
    """Export the model of RUN (a run folder's best checkpoint, else its last, or a
    checkpoint file) for sharing: EMA weights where the run kept them, no optimizer, no
    pickle. `wavenet generate/eval/info OUT`, `load_model(OUT)` and `train --init-from OUT`
    read it; the folder has the layout of a Hugging Face Hub model repository."""
    setup_logging(verbose)
    from wavenet.io.checkpoint import load_checkpoint, resolve_checkpoint
    from wavenet.io.export import write_export

    source = resolve_checkpoint(run)
    sizes = write_export(out, load_checkpoint(source), source=source, dtype=dtype, force=force)
    total = sum(sizes.values())
    if as_json:
        report = {
            "source": str(source),
            "out": str(out),
            "dtype": dtype,
            "files": sizes,
            "bytes": total,
            "checkpoint_bytes": source.stat().st_size,
        }
        click.echo(json.dumps(report))
        return
    click.echo(
        f"exported {source} to {out}: "
        + ", ".join(
            f"{name} {size / 1e6:.2f} MB" if size > 1e5 else f"{name} {size:,} bytes"
            for name, size in sizes.items()
        )
        + f" ({total / 1e6:.2f} MB in all; the checkpoint "
        f"{source.stat().st_size / 1e6:.2f} MB)"
    )

"""`wavenet plot`: training and validation curves of a run, as a PNG."""

from __future__ import annotations

from pathlib import Path

import click

from .common import setup_logging


@click.command("plot")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="PNG to write [default: RUN/curves.png].")
def plot_command(run: Path, out: Path | None) -> None:
    """Plot train and validation bits/sample against step from RUN's metrics log."""
    setup_logging()
    from wavenet.plots import plot_curves, read_metrics

    path = plot_curves(read_metrics(run), out or run / "curves.png", title=str(run))
    click.echo(f"wrote {path}")

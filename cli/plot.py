"""`wavenet plot`: training and validation curves of a run, as a PNG."""

from __future__ import annotations

from pathlib import Path

import click

from .common import refuse_existing, setup_logging, verbose_option


@click.command("plot")
@click.argument("run", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Picture to write (.png, .pdf, .svg) [default: RUN/curves.png, replaced on every plot].",
)
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
@verbose_option
def plot_command(run: Path, out: Path | None, force: bool, verbose: bool) -> None:
    """Plot train and validation bits/sample against step from RUN's metrics log.

    An existing --out file is refused without --force (and replaced whole with it); the
    default RUN/curves.png is the run's own picture and is replaced every time."""
    setup_logging(verbose)
    from wavenet.eval.plots import picture_path, plot_curves, read_metrics

    if out is not None:
        refuse_existing([picture_path(out)], force)
    path = plot_curves(read_metrics(run), out or run / "curves.png", title=str(run))
    click.echo(f"wrote {path}")

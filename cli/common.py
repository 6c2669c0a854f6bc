"""Helpers shared by the subcommands: logging, devices, turning user errors into one line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import click


def setup_logging(verbose: bool = False) -> None:
    """Library warnings reach the terminal as one `warning: ...` line each."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger("wavenet")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    root.propagate = False
    for level in (logging.WARNING, logging.INFO, logging.ERROR):
        logging.addLevelName(level, logging.getLevelName(level).lower())


def resolve_device(name: str | None) -> str:
    """`cuda` when asked (and present), else `cpu`; a missing GPU is a user error."""
    import torch

    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise click.ClickException("--device cuda was given but no CUDA device is available")
    return name


@contextmanager
def user_errors() -> Iterator[None]:
    """Errors caused by the user's input become one clear line and exit status 1."""
    from wavenet.checkpoint import CheckpointError
    from wavenet.config import ConfigError
    from wavenet.data import DataError

    try:
        yield
    except (ConfigError, CheckpointError, DataError) as error:
        raise click.ClickException(str(error)) from None
    except FileExistsError as error:
        raise click.ClickException(str(error)) from None

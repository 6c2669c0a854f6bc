"""Helpers shared by the subcommands: logging, devices, seeds, limits, turning user errors
into one line."""

from __future__ import annotations

import logging
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

# A WAV file holds at most 4 GiB: 2**31 - 1 samples of 16 bits.
MAX_SAMPLES = 2**31 - 1
# An unseeded generation draws its seed below this (short enough to type back).
SEED_RANGE = 2**31


def choose_seed(seed: int | None) -> int:
    """The seed given, or a new one; printed either way, so that any run can be repeated."""
    if seed is None:
        seed = secrets.randbelow(SEED_RANGE)
    click.echo(f"seed {seed} (pass --seed {seed} to repeat)")
    return seed


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
    """`cuda` when asked (and present), else `cpu`; any other name, a missing GPU or a GPU
    index beyond the machine's is a user error, found before any work."""
    import torch

    from wavenet.errors import InvalidArgumentError
    from wavenet.util.hardware import check_device

    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        check_device(name)  # the library's check, its message prefixed with the option
    except InvalidArgumentError as error:
        raise click.ClickException(f"--{error}") from None
    return name


def check_writable(path: Path) -> None:
    """Make `path`'s folder and write a probe file there, so that an output that cannot
    be written is refused before any work, not after it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".wavenet-probe-"):
            pass
    except (FileExistsError, NotADirectoryError):
        raise click.ClickException(
            f"cannot write {path}: part of its folder path is a file"
        ) from None
    except OSError as error:
        raise click.ClickException(f"cannot write {path}: {error.strerror or error}") from None


def one_line(error: BaseException) -> str:
    """The first line of an error's message; an OSError as `path: reason`."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        text = f"{error.filename}: {error.strerror}"
    else:
        text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


# Exit status of a command stopped by Ctrl-C (SIGINT), as shells report it: 128 + 2.
INTERRUPTED = 130


@contextmanager
def user_errors() -> Iterator[None]:
    """The one place where errors caused by the user's input become one line and exit 1.

    Every library error (`WavenetError`) is one; so is an OSError, which here comes from a
    path the user gave (missing, unreadable, unwritable, a full disk). A broken pipe on
    stdout is left to click. A Ctrl-C that reaches here (training turns the first one
    into a checkpoint and its own message) is the line `interrupted` and exit status
    INTERRUPTED, not click's "Aborted!" and 1. The command group wraps every subcommand
    in this.
    """
    from wavenet.errors import WavenetError

    try:
        yield
    except BrokenPipeError:
        raise
    except (WavenetError, OSError) as error:
        raise click.ClickException(one_line(error)) from None
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        raise SystemExit(INTERRUPTED) from None


class WavenetGroup(click.Group):
    """A click group that runs each subcommand inside `user_errors`."""

    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's own signature
        with user_errors():
            return super().invoke(ctx)

"""Helpers shared by the subcommands: the options every command spells alike, logging,
devices, seeds, limits, progress bars, turning user errors into one line. Each command
lives in a module of its own and imports from here, never from another command."""

from __future__ import annotations

import logging
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

# A WAV file holds at most 4 GiB: 2**31 - 1 samples of 16 bits.
MAX_SAMPLES = 2**31 - 1
# Generation keeps int64 codes twice (the kernel's time-major array and the result), then
# float32 audio and 16-bit samples, for every sample of every stream.
BYTES_PER_SAMPLE = 8 + 8 + 4 + 2
# Each stream also costs its output path (checked and written) and file: a lower bound.
BYTES_PER_STREAM = 1024
# An unseeded generation draws its seed below this (short enough to type back).
SEED_RANGE = 2**31


def choose_seed(seed: int | None, err: bool = False) -> int:
    """The seed given, or a new one; printed either way (on stderr when `err`, as with
    --json), so that any run can be repeated."""
    if seed is None:
        seed = secrets.randbelow(SEED_RANGE)
    click.echo(f"seed {seed} (pass --seed {seed} to repeat)", err=err)
    return seed


def verbose_option(command: F) -> F:
    """`-v/--verbose`, the same on every command: the library's info lines too."""
    return click.option("-v", "--verbose", is_flag=True, help="More log output.")(command)


def json_option(command: F) -> F:
    """`--json`, the same on every command that reports: one JSON object on stdout (the
    progress bar and notes go to stderr)."""
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")(command)


def refuse_existing(paths: list[Path], force: bool) -> None:
    """The one line every writer gives for an output that exists, without --force."""
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise click.ClickException(f"{existing[0]} exists; pass --force to overwrite")


def check_length(n: int, batch: int) -> None:
    """The length in samples: at least one, at most a WAV file's, within the memory this
    process may use (`hardware.memory_limit`: RAM, `ulimit -v`, a container's limit)."""
    from wavenet.util.hardware import memory_limit

    if n < 1:
        raise click.ClickException(f"the length must be at least one sample, got {n}")
    if n > MAX_SAMPLES:
        raise click.ClickException(
            f"the length must be <= {MAX_SAMPLES:,} samples (a WAV file's limit), got {n:,}"
        )
    memory = memory_limit()
    needed = batch * (n * BYTES_PER_SAMPLE + BYTES_PER_STREAM)
    if memory is not None and needed > memory:
        raise click.ClickException(
            f"{batch:,} x {n:,} samples need about "
            f"{needed / 2**30:,.1f} GiB, more than the "
            f"{memory / 2**30:,.1f} GiB this process may use (this "
            f"machine's memory, ulimit or container limit)"
        )


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


class ProgressBar:
    """click's progress bar fed by the training loop's per-step reports.

    Counts steps, or seconds when the run has a time budget (`seconds`).
    """

    def __init__(
        self, total: int | None, label: str = "training", seconds: float | None = None
    ) -> None:
        self.total = total
        self.label = label
        self.seconds = seconds
        self.bar: Any = None
        self.text = ""
        self.started = time.monotonic()

    def update(self, report: Any) -> None:  # report: wavenet.train.monitor.StepReport
        if self.bar is None:
            length = round(self.seconds) if self.seconds else (report.total_steps or self.total)
            if length is None:  # a budget kept in the run, its steps being timed again
                return
            self.bar = click.progressbar(
                length=length, label=self.label, item_show_func=lambda _: self.text, show_pos=True
            )
            self.bar.__enter__()
            if not self.seconds:
                self.bar.update(report.step - 1)
        val = f" val {report.val_bits:.3f}" if report.val_bits is not None else ""
        self.text = (
            f"step {report.step} loss {report.train_bits:.3f} bits{val} "
            f"{report.samples_per_s:,.0f} samples/s"
        )
        if self.seconds:
            elapsed = min(round(time.monotonic() - self.started), self.bar.length)
            self.bar.update(elapsed - self.bar.pos)
        else:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)

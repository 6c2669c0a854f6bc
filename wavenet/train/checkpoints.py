"""Writing a run's checkpoints (`last`, `best`) into its folder, and what a failed write
(a full disk) leaves and how to go on. What a checkpoint holds is `state.TrainState`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import TrainError
from ..io import checkpoint as ckpt
from .state import TrainState


class Checkpoints:
    """Writes the run's checkpoints under run_dir/checkpoints; `wall_time()` is the
    seconds trained so far (the budget's), recorded in each."""

    def __init__(self, run_dir: Path, wall_time: Callable[[], float]) -> None:
        self.folder = Path(run_dir) / ckpt.CHECKPOINT_DIR
        self.wall_time = wall_time

    def save(self, state: TrainState, name: str) -> None:
        """Write checkpoint `name`; a failed write (a full disk) is one TrainError line that
        says what is kept and how to go on (`kept_after_failed_save`)."""
        state.wall_time = self.wall_time()
        path = self.folder / name
        try:
            state.save(path)
        except OSError as error:
            raise TrainError(
                f"cannot write checkpoint {path} at step {state.step}: "
                f"{error.strerror or error}; "
                f"{kept_after_failed_save(path.parent, state.step)}"
            ) from None


def kept_after_failed_save(folder: Path, step: int) -> str:
    """What a run has after a checkpoint write failed (the write is atomic: a file there
    before is whole) and what to do: --resume needs `last`."""
    last, best = folder / ckpt.LAST, folder / ckpt.BEST
    if last.is_file():
        return f"{last} (saved before) is kept: make room, then continue with --resume"
    if best.is_file():
        return (
            f"no {last.name} was saved before, so --resume cannot continue; {best} is "
            f"kept: make room, then copy it to {last} and --resume from it, or start "
            f"again in another --out"
        )
    return (
        f"no checkpoint was saved before this one, so the {step} step(s) trained are "
        f"lost: make room, then start the run again (without --resume)"
    )

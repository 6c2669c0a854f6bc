"""What a training run is told: where its data is, where it goes, how long it runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# A run given neither steps nor a budget (and no stored schedule to resume) trains this long.
DEFAULT_STEPS = 1000


@dataclass
class TrainOptions:
    """Where the data is, where the run goes, and how long it runs."""

    data: Path
    out: Path
    # Total steps; with `budget`, at most this many. None: as many as the budget holds,
    # or without a budget the stored schedule of the run resumed, else DEFAULT_STEPS.
    steps: int | None
    resume: bool = False
    device: str = "cpu"
    val_data: Path | None = None
    cache_dir: Path | None = None
    tensorboard: bool = False
    # Take each file's first sub-folder under `data` as its speaker (global conditioning).
    speakers_from_folders: bool = False
    # `train.key=value` overrides applied to the run's own config on resume (say, a new
    # batch size when moving to another number of processes); model and data are fixed.
    resume_overrides: tuple[str, ...] = ()
    # Stop (with a checkpoint) once this many seconds of training have passed.
    time_limit: float | None = None
    # Stop (with a checkpoint) at this step; the schedule still spans `steps`, so a run
    # trained in slices equals one trained in one go.
    stop_at: int | None = None
    # Seconds of training for the whole run (`--minutes`): the total steps are estimated
    # from the first steps' speed, then fixed and stored in the run (`schedule.Schedule`),
    # so a resume continues the same schedule; the run also stops at the budget.
    budget: float | None = None
    # Skip the budget's calibration and take this figure (tests, a speed measured before).
    seconds_per_step: float | None = None
    # A vocoder's mels from this folder (x.npy or x.pt for audio x.wav), not computed.
    mel_dir: Path | None = None
    # Start a new run from this model's weights (a run folder, checkpoint or export;
    # `finetune`): fresh optimizer, schedule and EMA. The config must come from it
    # (`finetune.fine_tune_config`).
    init_from: Path | None = None

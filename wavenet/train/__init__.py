"""Training: a folder of audio in, a run folder out (config, checkpoints, metrics),
resumable bit for bit, from one CPU to many GPUs under torchrun.

- `loop.py`: `train(config, options)`, set-up once, then a short loop of a step and an
  after-step; `options.py`: `TrainOptions`, what a run is told.
- `state.py`: `TrainState`, what a run needs to continue and what its checkpoints hold
  (the file format is `wavenet.io.checkpoint`'s).
- `loss.py`, `schedule.py`, `monitor.py`, `samples.py`, `memorization.py`: the loss, the
  learning rate and time budget, what happens after each step, audio samples while it
  trains, and noticing a memorized folder.
- `finetune.py`: starting a new run from a trained model's weights (`--init-from`).
- `distributed.py`, `runlock.py`: processes under torchrun, one trainer per run folder.
"""

from .finetune import fine_tune_config, read_source
from .loop import TrainSummary, train
from .options import TrainOptions

__all__ = ["TrainOptions", "TrainSummary", "fine_tune_config", "read_source", "train"]

"""The recipe adapted to how much audio a run trains on (`data.adapt_to_duration`).

A preset is tuned on folders of many minutes; a folder of 30 seconds trained on for 15
minutes is seen some sixty times over and learned by heart. With adapt_to_duration on
(the `cpu` preset), a new run measures its training audio once it is prepared and, under
these durations, changes its config before the model is built:

    under AUGMENT_UNDER_SECONDS   training items augmented (AUGMENTATION: speed +-5 %,
                                  polarity), where the config has none
    under SMALL_MODEL_UNDER_SECONDS   the model's channels at most SMALL_MODEL (the
                                  receptive field is kept)

Chosen by held-out bits at a fixed budget (benchmarks/quality.py, docs/decisions.md). The
config the run is saved with is the adapted one, so a resumed run keeps it; a fine-tuned
run (`--init-from`) keeps its source's model, and a vocoder its own recipe.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..config import Config

AUGMENT_UNDER_SECONDS = 600.0
SMALL_MODEL_UNDER_SECONDS = 120.0
# No gain: on the 30-second folder it did not lower held-out bits (4.349 with it, 4.326
# without) and the generated audio fell silent more often (active 0.55 against 0.81).
AUGMENTATION: dict[str, Any] = {"augment_speed": 0.05, "augment_polarity": True}
SMALL_MODEL: dict[str, Any] = {"residual_channels": 32, "gate_channels": 64, "skip_channels": 128}


def adapt_to_duration(config: Config, seconds: float) -> tuple[Config, list[str]]:
    """-> (the config for `seconds` of training audio, what was changed as
    `section.key=value` texts; none when nothing was)."""
    if not config.data.adapt_to_duration or config.model.local_channels is not None:
        return config, []
    data, model, changes = config.data, config.model, []
    if seconds < AUGMENT_UNDER_SECONDS:
        updates = {k: v for k, v in AUGMENTATION.items() if not getattr(data, k)}
        data = dataclasses.replace(data, **updates)
        changes += [f"data.{k}={str(v).lower()}" for k, v in updates.items()]
    if seconds < SMALL_MODEL_UNDER_SECONDS:
        updates = {k: v for k, v in SMALL_MODEL.items() if getattr(model, k) > v}
        model = dataclasses.replace(model, **updates)
        changes += [f"model.{k}={v}" for k, v in updates.items()]
    if not changes:
        return config, []
    return dataclasses.replace(config, data=data, model=model), changes

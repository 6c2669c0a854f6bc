"""Model files: the checkpoint format and the shareable export.

- `checkpoint.py`: one self-describing, checksummed `torch.save` file, written atomically
  and read with `weights_only=True`; `load_model(path)` rebuilds a model from a run
  folder, a checkpoint or an export, with nothing else needed. What a training run puts in
  its checkpoints is decided in `wavenet.train.state`.
- `export.py`: a folder of `config.json` + `model.safetensors` + `README.md` (the layout
  of a Hugging Face Hub model repository), with its own format version.
"""

from .checkpoint import (
    config_from_checkpoint,
    load_checkpoint,
    load_model,
    model_from_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)
from .export import read_export, write_export

__all__ = [
    "config_from_checkpoint",
    "load_checkpoint",
    "load_model",
    "model_from_checkpoint",
    "read_export",
    "resolve_checkpoint",
    "save_checkpoint",
    "write_export",
]

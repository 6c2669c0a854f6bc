"""Generation: sampling codes from a trained model, one step per sample.

- `driver.py`: `generate(model, n_samples, ...)`, which checks its arguments once and
  picks a generator (`method="fast"`, "fast-numba", "fast-torch" or "naive"); all of them
  give the same codes for the same seed (`sampling.py`: one sampling rule, one stream of
  uniform numbers).
- `incremental.py`: the generator interface (`CodeGenerator`, `GeneratorState`) and the
  PyTorch generator `FastGenerator` with its explicit `IncrementalState` (a ring buffer
  per layer): the reference for the fast paths, and the path on CUDA.
- `kernel.py` + `fastpath.py`: the numba kernel (every step compiled) and its Python
  side `NumbaGenerator`, the fastest path on CPUs. Importing them loads numba, so this face
  does not.
- `reduced.py`: bf16 or int8 weights (`reduced_model`), the definition that the kernel's
  reduced-precision weights are held to.
- `naive.py`: `NaiveGenerator`, `model(codes)` over the last receptive field for every
  sample: the slow reference the others are tested against.
- `vocoder.py`: `vocode(model, mels, ...)`, many mels of different lengths at once.
"""

from .driver import METHODS, generate
from .incremental import CodeGenerator, FastGenerator, GeneratorState, IncrementalState
from .naive import NaiveGenerator
from .reduced import reduced_model
from .vocoder import vocode

__all__ = [
    "METHODS",
    "CodeGenerator",
    "FastGenerator",
    "GeneratorState",
    "IncrementalState",
    "NaiveGenerator",
    "generate",
    "reduced_model",
    "vocode",
]

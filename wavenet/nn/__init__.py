"""The network: layers, the WaveNet model, its conditioning (speaker embedding, mel
upsampler) and the fused training pass.

The network is written more than once; these are the definitions and the fast kernels
held to them:

- `layers.py` (`CausalConv1d`, `ResidualBlock`) and `model.py`'s `WaveNet.forward_blocks`
  + `WaveNet.head`: the readable definition, block after block.
- `fused.py` (`stack_logits`): the same function as a few large time-major products with a
  hand-written backward; `WaveNet.forward` runs through it (training, evaluation).
- Generation writes one step of it again: `wavenet.generation.incremental` (PyTorch) and
  `wavenet.generation.kernel` (numba); the tests hold each to `forward_blocks`.
"""

from .layers import CausalConv1d, ResidualBlock, causal_padding, gated_activation
from .model import Upsampler, WaveNet, parameter_count

__all__ = [
    "CausalConv1d",
    "ResidualBlock",
    "Upsampler",
    "WaveNet",
    "causal_padding",
    "gated_activation",
    "parameter_count",
]

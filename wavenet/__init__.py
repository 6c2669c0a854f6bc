"""wavenet: WaveNet-style audio modelling in PyTorch.

The public API: configs, layers, the model, mu-law coding. Importing this package does
not import the command-line app.
"""

from .coding.mulaw import mu_law_decode, mu_law_encode
from .config import (
    Config,
    ConfigError,
    DataConfig,
    ModelConfig,
    TrainConfig,
    load_config,
    preset_names,
)
from .errors import WavenetError
from .generation.driver import generate
from .generation.incremental import FastGenerator, IncrementalState
from .nn.layers import CausalConv1d, ResidualBlock, causal_padding, gated_activation
from .nn.model import WaveNet, parameter_count
from .version import __version__

__all__ = [
    "CausalConv1d",
    "Config",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "ResidualBlock",
    "TrainConfig",
    "WaveNet",
    "__version__",
    "causal_padding",
    "gated_activation",
    "load_config",
    "mu_law_decode",
    "mu_law_encode",
    "parameter_count",
    "preset_names",
    "FastGenerator",
    "IncrementalState",
    "generate",
    "WavenetError",
]

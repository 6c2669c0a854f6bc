"""wavenet: WaveNet-style audio modelling in PyTorch.

The public API: configs, layers, the model, coding and decoding, generation, loading a
trained model, and the error family. Each subpackage (`wavenet.coding`, `nn`, `data`,
`generation`, `io`, `eval`, `train`, `util`) has its own public face in its `__init__`,
which says which module is the reference definition and which are fast kernels.

Importing this package is cheap: it does not import the command-line app, numba or
torchaudio (the numba generator and the data pipeline load them when first used).
"""

from .coding.decoding import decode
from .coding.mulaw import mu_law_decode, mu_law_encode
from .config import (
    Config,
    DataConfig,
    MelConfig,
    ModelConfig,
    TrainConfig,
    load_config,
    preset_names,
)
from .errors import (
    AudioDecodeError,
    CheckpointError,
    ConditioningError,
    ConfigError,
    DataError,
    DependencyError,
    ExportError,
    InvalidArgumentError,
    InvalidTypeError,
    PlotError,
    RunLockedError,
    TrainError,
    WavenetError,
)
from .generation.driver import generate
from .generation.incremental import FastGenerator, IncrementalState
from .generation.vocoder import vocode
from .io.checkpoint import load_model
from .nn.layers import CausalConv1d, ResidualBlock, causal_padding, gated_activation
from .nn.model import WaveNet, parameter_count
from .version import __version__

__all__ = [
    # configs
    "Config",
    "DataConfig",
    "MelConfig",
    "ModelConfig",
    "TrainConfig",
    "load_config",
    "preset_names",
    # the network
    "CausalConv1d",
    "ResidualBlock",
    "WaveNet",
    "causal_padding",
    "gated_activation",
    "parameter_count",
    # codes and waveforms
    "decode",
    "mu_law_decode",
    "mu_law_encode",
    # generation and trained models
    "FastGenerator",
    "IncrementalState",
    "generate",
    "load_model",
    "vocode",
    # errors
    "AudioDecodeError",
    "CheckpointError",
    "ConditioningError",
    "ConfigError",
    "DataError",
    "DependencyError",
    "ExportError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "PlotError",
    "RunLockedError",
    "TrainError",
    "WavenetError",
    "__version__",
]

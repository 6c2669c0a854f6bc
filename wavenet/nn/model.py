"""The WaveNet model: code embedding, stacks of gated residual blocks, output head.

The output (`model.output`) is a softmax over mu-law codes ("categorical") or a
discretized mixture of logistics over 16-bit samples ("mol", wavenet/coding/logistic.py). Both
read an embedding of each past sample's mu-law code; a "mol" model's codes are 16-bit
samples, mapped to their mu-law codes first (`WaveNet.embedding_index`), and it also reads
each sample's exact value through a 1x1 (`sample_input`), so that it sees its past at 16
bits (the embedding, the value and both were measured: docs/decisions.md). Only the input
and the head's last projection differ between the two; under bf16 autocast a "mol"
model's value input and last projection stay in float32 (`output_layer`).

Optional conditioning adds, in every block, a projection to the dilated convolution's
pre-activation (before the tanh/sigmoid split):
- global: an embedding of one id per stream (speaker, class), the same at every step;
- local: log-mel frames upsampled to the sample rate (a vocoder). Upsampling may look
  ahead in the mel (the whole mel is known before generation); the audio path stays causal.
  The mel is first standardized with the training set's statistics (per-band means, one
  pooled std), which are buffers of the model (see `WaveNet.set_mel_statistics`).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from ..coding.logistic import INITIAL_LOG_SCALE
from ..coding.pcm import code_values, mu_law_of_pcm16
from ..config import Config, ModelConfig
from ..errors import InvalidArgumentError, InvalidTypeError
from .fused import stack_logits
from .layers import ResidualBlock, bias_of


class Upsampler(nn.Module):
    """Mel frames to per-sample features: per scale s, repeat each frame s times, then a
    learned smoothing filter of width 2s + 1 along time, one per mel band (started as a
    moving average). Filtering each band on its own keeps the features on the mel's
    scale: a full channel-mixing convolution here drifted under Adam until it saturated
    every gate (measured: the loss on pure tones stalled at 5.4 bits instead of ~0).
    Edges are padded by repeating the end values, not zeros, so that a training crop's
    features near its ends resemble those of the whole file.

    forward: mel (B, C, frames) -> (B, C, frames * prod(scales)).
    """

    def __init__(self, channels: int, scales: tuple[int, ...]) -> None:
        super().__init__()
        self.scales = scales
        convs = [
            nn.Conv1d(
                channels,
                channels,
                2 * s + 1,
                padding=s,
                groups=channels,
                bias=False,
                padding_mode="replicate",
            )
            for s in scales
        ]
        self.convs = nn.ModuleList(convs)
        with torch.no_grad():
            for conv, s in zip(convs, scales):
                conv.weight.fill_(1.0 / (2 * s + 1))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = mel
        for scale, conv in zip(self.scales, self.convs):
            x = conv(x.repeat_interleave(scale, dim=2))
        return x


class WaveNet(nn.Module):
    """Autoregressive model of audio codes (mu-law codes, or 16-bit samples for "mol").

    forward: codes (B, T) long in [0, classes), B and T >= 1 -> logits (B, O, T), where
    logits[:, :, t] is the distribution of code t + 1 and depends only on
    codes[:, :t + 1]. O is `config.output_channels`: Q logits, or the 3K mixture
    parameters of wavenet/coding/logistic.py.

    Conditioning (when the config enables it):
    - global_cond: (B,) long ids in [0, global_classes).
    - mel: (B, local_channels, frames) log-mel with frames * upsample_factor >= T; upsampled
      feature j conditions position j, that is the prediction of code j + 1. Frame i thus
      describes the codes predicted at positions [i * hop, (i + 1) * hop).
    """

    # Buffers, declared for the type checker (nn.Module types what it finds by name as
    # `Tensor | Module`); each exists only when the config asks for it.
    input_codes: torch.Tensor  # "mol"
    mel_mean: torch.Tensor  # local conditioning
    mel_std: torch.Tensor

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        if config is not None and not isinstance(config, ModelConfig):
            hint = " (pass config.model)" if isinstance(config, Config) else ""
            raise InvalidTypeError(
                f"WaveNet expects a ModelConfig{hint}, got {type(config).__name__}"
            )
        self.config = config if config is not None else ModelConfig()
        c = self.config
        self.embedding = nn.Embedding(c.quantization_channels, c.residual_channels)
        if c.output == "mol":
            # The mu-law code of each 16-bit sample (derived, so not in the state dict).
            self.register_buffer(
                "input_codes", mu_law_of_pcm16(c.quantization_channels), persistent=False
            )
            self.sample_input = nn.Conv1d(1, c.residual_channels, 1)
        last = len(c.dilations) - 1
        self.blocks = nn.ModuleList(
            ResidualBlock(
                c.residual_channels,
                c.gate_channels,
                c.skip_channels,
                c.kernel_size,
                dilation,
                has_residual=layer < last,
            )
            for layer, dilation in enumerate(c.dilations)
        )
        # ReLU -> 1x1 -> ReLU -> 1x1 on the sum of skips.
        self.head_hidden = nn.Conv1d(c.skip_channels, c.skip_channels, 1)
        self.head_out = nn.Conv1d(c.skip_channels, c.output_channels, 1)
        if c.output == "mol":
            # Start the logistics at the spread of audio (logistic.INITIAL_LOG_SCALE). A
            # fill draws no random numbers: every other init stays as it was.
            with torch.no_grad():
                bias_of(self.head_out)[2 * c.mixtures :].fill_(INITIAL_LOG_SCALE)
        if c.global_classes is not None:
            self.global_embedding = nn.Embedding(c.global_classes, c.global_channels)
            self.global_projections = nn.ModuleList(
                nn.Linear(c.global_channels, c.gate_channels) for _ in c.dilations
            )
        if c.local_channels is not None:
            # Per-band means and pooled standard deviation of the training mel
            # (data.mel_statistics; one value per band here). Standardizing
            # matters under Adam: the raw features are all positive (mean ~0.86 on
            # speech), so the updates of a projection's n_mels weights move together
            # like one bias with an n_mels-times larger step, which shakes every gate.
            # Measured on 8 kHz speech after 400 steps: 5.347 bits/sample raw against
            # 5.208 with no mel at all; standardized, 5.024.
            self.register_buffer("mel_mean", torch.zeros(c.local_channels))
            self.register_buffer("mel_std", torch.ones(c.local_channels))
            self.upsampler = Upsampler(c.local_channels, c.upsample_scales)
            projections = [nn.Conv1d(c.local_channels, c.gate_channels, 1) for _ in c.dilations]
            self.local_projections = nn.ModuleList(projections)
            # Start from "no conditioning": zero projections leave the audio path as an
            # unconditioned model's and still receive gradients. With random ones the
            # mel-conditioned tiny model trained worse than the plain one (measured:
            # 2.51 vs 2.26 bits after 400 steps on pure-tone notes).
            for projection in projections:
                nn.init.zeros_(projection.weight)
                nn.init.zeros_(bias_of(projection))

    @property
    def receptive_field(self) -> int:
        return self.config.receptive_field

    def residual_blocks(self) -> list[ResidualBlock]:
        """`blocks` in order, typed as what they are (an nn.ModuleList yields Modules)."""
        return [cast(ResidualBlock, block) for block in self.blocks]

    @torch.no_grad()
    def set_mel_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Set the statistics (local_channels,) that standardize the mel input: the model
        reads (mel - mean) / std."""
        if self.config.local_channels is None:
            raise InvalidArgumentError("this model has no local conditioning")
        shape = (self.config.local_channels,)
        if tuple(mean.shape) != shape or tuple(std.shape) != shape:
            raise InvalidArgumentError(f"mel statistics must have shape {shape}")
        if not bool((std > 0).all()):
            raise InvalidArgumentError("mel standard deviations must be positive")
        self.mel_mean.copy_(mean)
        self.mel_std.copy_(std)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        # State dicts saved before the mel statistics existed load with the identity
        # statistics their models were trained with.
        if self.config.local_channels is not None:
            state_dict.setdefault(prefix + "mel_mean", torch.zeros_like(self.mel_mean))
            state_dict.setdefault(prefix + "mel_std", torch.ones_like(self.mel_std))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def forward(
        self,
        codes: torch.Tensor,
        global_cond: torch.Tensor | None = None,
        mel: torch.Tensor | None = None,
    ) -> torch.Tensor:
        codes = self._checked_codes(codes)
        global_features, local_features = self.conditioning_features(
            codes.shape[0], codes.shape[1], global_cond, mel
        )
        return stack_logits(self, codes, global_features, local_features).permute(1, 2, 0)

    def forward_features(
        self,
        codes: torch.Tensor,
        global_features: torch.Tensor | None = None,
        local_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`forward` with the conditioning already embedded and upsampled
        (see `conditioning_features`): global (B, Cg), local (B, Cl, T) aligned with codes.

        Computed time-major as large matrix products with a hand-written backward
        (`wavenet.nn.fused`); equal, within float rounding, to running the blocks one after
        another (`forward_blocks`). The logits come back as a (B, O, T) view of time-major
        (T, B, O) memory: `logits.permute(2, 0, 1)` is contiguous.
        """
        codes = self._checked_codes(codes)
        return stack_logits(self, codes, global_features, local_features).permute(1, 2, 0)

    def forward_blocks(
        self,
        codes: torch.Tensor,
        global_features: torch.Tensor | None = None,
        local_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The same function as `forward_features`, block by block through the layers'
        own `forward`: the readable definition that the fused path is tested against."""
        x = self.embed(codes).transpose(1, 2)  # (B, R, T)
        skips = None
        for layer, block in enumerate(self.blocks):
            x, skip = block(x, self.layer_conditioning(layer, global_features, local_features))
            skips = skip if skips is None else skips + skip
        assert skips is not None  # a config has at least one layer
        return self.head(skips)

    def _checked_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, T) of any integer dtype, on the model's device, in [0, classes)
        -> the same as int64; InvalidTypeError or InvalidArgumentError otherwise."""
        _check_codes(codes)
        device = self.embedding.weight.device
        if codes.device != device:
            raise InvalidArgumentError(
                f"codes are on {codes.device}, the model on {device}: "
                f"move them with codes.to({str(device)!r})"
            )
        low, high = (int(v) for v in torch.aminmax(codes))
        classes = self.config.classes
        if low < 0 or high >= classes:
            raise InvalidArgumentError(
                f"codes must lie in [0, {classes - 1}], found [{low}, {high}]"
            )
        return codes if codes.dtype == torch.long else codes.long()

    def embedding_index(self, codes: torch.Tensor) -> torch.Tensor:
        """The embedding rows codes (...) read: the codes themselves, or for "mol" the
        mu-law code of each 16-bit sample."""
        return self.input_codes[codes] if self.config.output == "mol" else codes

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """The first block's input, channels-last: codes (..., T) -> (..., T, R).

        "mol" adds v w + b for each sample's value v (pcm.code_values), written as
        elementwise products (not a matrix product that autocast would run in bf16)."""
        x = self.embedding(self.embedding_index(codes))
        if self.config.output == "mol":
            weight = self.sample_input.weight[:, 0, 0]
            x = x + code_values(codes, weight.dtype).unsqueeze(-1) * weight + self.sample_input.bias
        return x

    def head(self, skips: torch.Tensor) -> torch.Tensor:
        """Output head: summed skips (B, S, T) -> logits (B, O, T)."""
        hidden = F.dropout(
            torch.relu(self.head_hidden(torch.relu(skips))), self.config.dropout, self.training
        )
        return self.output_layer(hidden.transpose(1, 2)).transpose(1, 2)

    def output_layer(self, hidden: torch.Tensor) -> torch.Tensor:
        """The head's last projection on channels-last features: (..., S) -> (..., O).

        For "mol" it runs with autocast off on the features cast to the parameters'
        dtype, so that under bf16 autocast (`train.bf16`) the mixture parameters still
        come from a float32 product. Its means must resolve 16-bit bins (1/32768 of full
        scale); bf16 keeps 1/256 of a value. The body before it may run in bf16:
        measured (docs/decisions.md), that trains as well as float32 at 1.72x the step
        rate. A categorical head runs as autocast says."""
        weight, bias = self.head_out.weight[:, :, 0], self.head_out.bias
        if self.config.output != "mol":
            return F.linear(hidden, weight, bias)
        with torch.autocast(self.embedding.weight.device.type, enabled=False):
            return F.linear(hidden.to(weight.dtype), weight, bias)

    def conditioning_features(
        self,
        batch: int,
        length: int,
        global_cond: torch.Tensor | None = None,
        mel: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Check the conditioning inputs; -> (global (B, Cg) or None, local (B, Cl, T) or None)."""
        c = self.config
        global_features = local_features = None
        if c.global_classes is None:
            if global_cond is not None:
                raise InvalidArgumentError(
                    "this model has no global conditioning; global_cond must be None"
                )
        else:
            if global_cond is None:
                raise InvalidArgumentError(
                    f"this model is conditioned on {c.global_classes} "
                    f"global ids; pass global_cond ({batch},)"
                )
            global_cond = _integer_tensor(global_cond, "global_cond", "ids")
            global_cond = global_cond.to(self.embedding.weight.device)
            if global_cond.shape != (batch,):
                raise InvalidArgumentError(
                    f"global_cond must have shape ({batch},), got {tuple(global_cond.shape)}"
                )
            low, high = (int(v) for v in torch.aminmax(global_cond))
            if low < 0 or high >= c.global_classes:
                raise InvalidArgumentError(
                    f"global ids must be in [0, {c.global_classes}), found [{low}, {high}]"
                )
            global_features = self.global_embedding(global_cond.long())
        if c.local_channels is None:
            if mel is not None:
                raise InvalidArgumentError("this model has no local conditioning; mel must be None")
        else:
            if mel is None:
                raise InvalidArgumentError(
                    f"this model is a vocoder; pass mel ({batch}, {c.local_channels}, frames)"
                )
            if not isinstance(mel, torch.Tensor) or not mel.is_floating_point():
                found = mel.dtype if isinstance(mel, torch.Tensor) else type(mel).__name__
                raise InvalidTypeError(
                    f"mel must be a float tensor ({batch}, {c.local_channels}, frames), got {found}"
                )
            if mel.dim() != 3 or mel.shape[0] != batch or mel.shape[1] != c.local_channels:
                raise InvalidArgumentError(
                    f"mel must be ({batch}, {c.local_channels}, frames), got {tuple(mel.shape)}"
                )
            if mel.shape[2] * c.upsample_factor < length:
                raise InvalidArgumentError(
                    f"mel has {mel.shape[2]} frames, covering "
                    f"{mel.shape[2] * c.upsample_factor} samples; "
                    f"{length} needed"
                )
            mel = mel.to(self.embedding.weight.device)
            mel = mel.to(self.embedding.weight.dtype)
            standardized = (mel - self.mel_mean[:, None]) / self.mel_std[:, None]
            local_features = self.upsampler(standardized)[:, :, :length]
        return global_features, local_features

    def layer_conditioning(
        self, layer: int, global_features: torch.Tensor | None, local_features: torch.Tensor | None
    ) -> torch.Tensor | None:
        """The term added to block `layer`'s pre-activation: (B, G, T), (B, G, 1) or None."""
        term = None
        if global_features is not None:
            term = self.global_projections[layer](global_features).unsqueeze(2)
        if local_features is not None:
            local = self.local_projections[layer](local_features)
            term = local if term is None else term + local
        return term

    def conditioning_terms(
        self, global_features: torch.Tensor | None, local_features: torch.Tensor | None
    ) -> torch.Tensor:
        """Every layer's `layer_conditioning` at once, laid out as the generators read it:
        global (B, Cg) and/or local (B, Cl, T) -> (T, L, B, G), T = 1 without local.

        The local 1x1s of all layers are one (Cl, L G) product here, not L convolutions
        followed by a stack and a transposed copy (generation calls this a chunk of steps
        at a time)."""
        layers, gate = len(self.blocks), self.config.gate_channels
        terms = None
        if local_features is not None:
            projections = cast(list[nn.Conv1d], list(self.local_projections))
            weight = torch.cat([p.weight[:, :, 0] for p in projections]).T
            bias = torch.cat([bias_of(p) for p in projections])
            rows = local_features.permute(2, 0, 1)  # (T, B, Cl)
            local = torch.addmm(bias, rows.reshape(-1, rows.shape[2]), weight)  # (T B, L G)
            terms = local.view(rows.shape[0], -1, layers, gate).transpose(1, 2)
        if global_features is not None:
            term = torch.stack([p(global_features) for p in self.global_projections])[None]
            terms = term if terms is None else terms + term
        if terms is None:
            raise InvalidArgumentError("this model has no conditioning")
        return terms


def _integer_tensor(value: object, name: str, what: str) -> torch.Tensor:
    """`value` if it is a tensor of integers (not bool), else InvalidTypeError."""
    if not isinstance(value, torch.Tensor):
        raise InvalidTypeError(
            f"{name} must be a torch.Tensor of integer {what}, got {type(value).__name__}"
        )
    if value.dtype == torch.bool or value.is_floating_point() or value.is_complex():
        raise InvalidTypeError(f"{name} must hold integer {what}, got {value.dtype}")
    return value


def _check_codes(codes: torch.Tensor) -> None:
    """codes must be an integer tensor (B, T) with B, T >= 1."""
    if not isinstance(codes, torch.Tensor):
        raise InvalidTypeError(f"codes must be a torch.Tensor, got {type(codes).__name__}")
    if codes.dtype == torch.bool or codes.is_floating_point() or codes.is_complex():
        raise InvalidTypeError(f"codes must be an integer tensor, got {codes.dtype}")
    if codes.dim() != 2 or 0 in codes.shape:
        raise InvalidArgumentError(
            f"codes must be (batch, time) with batch >= 1 and time >= 1, "
            f"got shape {tuple(codes.shape)}"
        )


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def at_least_float32(logits: torch.Tensor) -> torch.Tensor:
    """The model's outputs in the precision a loss is taken in: bf16/fp16 logits are
    upcast to float32; float32 and float64 stay as they are. Used by the training loss
    and by `wavenet.eval.bits`, so that both score the same numbers."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))

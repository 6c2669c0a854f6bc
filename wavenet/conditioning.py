"""Conditioning inputs for generation, from what a user hands over: a speaker name, an
audio file to resynthesize, or a saved log-mel tensor.

    speaker name --(the run's speaker list)--> global ids (B,)
    audio file --(decode, codes, log-mel)---+
    .npy / .pt tensor file -----------------+--> checked mel (B, n_mels, frames)

Every refusal is a `ConditioningError` (a `WavenetError` and a `ValueError`) with one
line that says what was expected and what was found.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .audio import decode_audio
from .config import Config
from .errors import WavenetError
from .features import log_mel_of_waveform


class ConditioningError(WavenetError, ValueError):
    """A speaker or mel given for generation does not suit the model."""


def speaker_ids(config: Config, speakers: Sequence[str] | None, speaker: str | None,
                batch_size: int) -> torch.Tensor | None:
    """Global ids (batch_size,) for `speaker`: required by a speaker model, refused by others.

    `speakers` are the names saved with the run (index = id); without them the names are
    the ids themselves, "0" ... str(global_classes - 1). -> None for a model without
    global conditioning.
    """
    if config.model.global_classes is None:
        if speaker is not None:
            raise ConditioningError("this model was not trained with speakers; drop --speaker")
        return None
    known = list(speakers) if speakers else [str(i) for i in range(config.model.global_classes)]
    if speaker is None:
        raise ConditioningError(f"this model needs --speaker; known: {', '.join(known)}")
    if speaker not in known:
        raise ConditioningError(f"unknown speaker {speaker!r}; known: {', '.join(known)}")
    return torch.full((batch_size,), known.index(speaker), dtype=torch.long)


def read_mel_file(path: str | os.PathLike[str]) -> torch.Tensor:
    """A saved mel tensor: `.npy` (numpy, no pickle) or anything else as a `torch.save`
    file (weights only). -> the tensor as stored; ConditioningError when unreadable or
    not one tensor."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            mel = torch.from_numpy(np.load(path, allow_pickle=False))
        else:
            mel = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a user's file: any failure to read it is their error
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConditioningError(f"cannot read mel file {path}: {first}") from None
    if not isinstance(mel, torch.Tensor):
        raise ConditioningError(f"mel file {path} holds no tensor")
    return mel


def mel_of_audio(path: str | os.PathLike[str], config: Config) -> torch.Tensor:
    """Log-mel (n_mels, frames) of an audio file, computed as in training; raises
    AudioDecodeError for a file that cannot be decoded."""
    waveform = torch.from_numpy(decode_audio(path, config.data.sample_rate))
    return log_mel_of_waveform(waveform, config.data.sample_rate, config.mel,
                               config.model.classes, config.model.coding)


def check_mel(mel: torch.Tensor, config: Config, batch_size: int) -> torch.Tensor:
    """A real, finite log-mel (n_mels, frames) or (1 or batch_size, n_mels, frames)
    -> float32 (batch_size, n_mels, frames), the one mel repeated for every stream."""
    if mel.is_complex():
        raise ConditioningError(f"the mel must be real, got a {mel.dtype} tensor")
    if not (mel.is_floating_point() or mel.dtype in (torch.int8, torch.int16, torch.int32,
                                                     torch.int64, torch.uint8)):
        raise ConditioningError(f"the mel must hold numbers, got a {mel.dtype} tensor")
    n_mels = config.mel.n_mels
    mel = mel.float()
    if mel.dim() == 2:
        mel = mel.unsqueeze(0)
    if mel.dim() != 3 or mel.shape[1] != n_mels or mel.shape[0] not in (1, batch_size):
        raise ConditioningError(f"the mel must be (n_mels={n_mels}, frames) or "
                                f"({batch_size}, {n_mels}, frames), got {tuple(mel.shape)}")
    if mel.shape[2] == 0:
        raise ConditioningError("the mel has no frames (audio shorter than one hop?)")
    if not torch.isfinite(mel).all():
        bad = int((~torch.isfinite(mel)).sum())
        raise ConditioningError(f"the mel holds {bad} NaN or infinite value(s) out of "
                                f"{mel.numel()}")
    return mel.expand(batch_size, -1, -1).contiguous()


def mel_input(config: Config, *, audio: str | os.PathLike[str] | None = None,
              mel_file: str | os.PathLike[str] | None = None,
              batch_size: int = 1) -> torch.Tensor | None:
    """The mel a vocoder generates from: (batch_size, n_mels, frames), or None for a
    model without local conditioning.

    A vocoder needs exactly one of `audio` (resynthesize this file) and `mel_file` (a
    saved log-mel, see `read_mel_file`); other models refuse both.
    """
    if config.model.local_channels is None:
        if audio is not None or mel_file is not None:
            raise ConditioningError("this model is not a vocoder; drop --mel-from/--mel")
        return None
    if (audio is None) == (mel_file is None):
        raise ConditioningError("this model is a vocoder: give --mel-from AUDIO or --mel FILE")
    mel = mel_of_audio(audio, config) if audio is not None else read_mel_file(mel_file)
    return check_mel(mel, config, batch_size)

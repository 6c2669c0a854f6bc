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
import unicodedata
from collections.abc import Sequence

import torch

from ..config import Config
from ..errors import ConditioningError
from .audio import decode_audio
from .features import log_mel_of_waveform
from .melfiles import orient_mel, read_mel_file

__all__ = [
    "ConditioningError",
    "check_mel",
    "mel_input",
    "mel_of_audio",
    "read_mel_file",
    "speaker_ids",
]


def speaker_ids(
    config: Config, speakers: Sequence[str] | None, speaker: str | None, batch_size: int
) -> torch.Tensor | None:
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
    # Names compare in NFC: a folder written on macOS (NFD) and a name typed (NFC) match.
    normalized = [unicodedata.normalize("NFC", name) for name in known]
    wanted = unicodedata.normalize("NFC", speaker)
    if wanted not in normalized:
        raise ConditioningError(f"unknown speaker {speaker!r}; known: {', '.join(known)}")
    return torch.full((batch_size,), normalized.index(wanted), dtype=torch.long)


def mel_of_audio(path: str | os.PathLike[str], config: Config) -> torch.Tensor:
    """Log-mel (n_mels, frames) of an audio file, computed as in training; raises
    AudioDecodeError for a file that cannot be decoded."""
    waveform = torch.from_numpy(decode_audio(path, config.data.sample_rate))
    return log_mel_of_waveform(
        waveform, config.data.sample_rate, config.mel, config.model.classes, config.model.coding
    )


def check_mel(mel: torch.Tensor, config: Config, batch_size: int) -> torch.Tensor:
    """A real, finite log-mel (n_mels, frames) or (1 or batch_size, n_mels, frames), or
    the same with (frames, n_mels) (`melfiles.orient_mel` tells them apart)
    -> float32 (batch_size, n_mels, frames), the one mel repeated for every stream."""
    n_mels = config.mel.n_mels
    if mel.dim() == 3 and mel.shape[0] in (1, batch_size):
        mel = torch.stack([orient_mel(m, n_mels) for m in mel])
    elif mel.dim() == 2:
        mel = orient_mel(mel, n_mels).unsqueeze(0)
    else:
        raise ConditioningError(
            f"the mel must be (n_mels={n_mels}, frames) or "
            f"({batch_size}, {n_mels}, frames), got {tuple(mel.shape)}"
        )
    return mel.expand(batch_size, -1, -1).contiguous()


def mel_input(
    config: Config,
    *,
    audio: str | os.PathLike[str] | None = None,
    mel_file: str | os.PathLike[str] | None = None,
    batch_size: int = 1,
) -> torch.Tensor | None:
    """The mel a vocoder generates from: (batch_size, n_mels, frames), or None for a
    model without local conditioning.

    A vocoder needs exactly one of `audio` (resynthesize this file) and `mel_file` (a
    saved log-mel, see `read_mel_file`); other models refuse both.
    """
    if config.model.local_channels is None:
        if audio is not None or mel_file is not None:
            raise ConditioningError("this model is not a vocoder; drop --mel-from/--mel")
        return None
    if audio is not None and mel_file is None:
        mel = mel_of_audio(audio, config)
    elif mel_file is not None and audio is None:
        mel = read_mel_file(mel_file)
    else:  # both or neither
        raise ConditioningError("this model is a vocoder: give --mel-from AUDIO or --mel FILE")
    return check_mel(mel, config, batch_size)

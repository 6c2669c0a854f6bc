r"""Copy synthesis: how close a vocoder's resynthesis of held-out audio comes to it, beside
Griffin-Lim from the same mel as a baseline.

    held-out file --its mel (as training computes it)--> vocoder (generation.vocoder) -> audio
                                                     \--> Griffin-Lim (torchaudio) -> audio
    log_mel_distance(file, each): RMS over bands and frames of the difference of
      20 log10(mel magnitude), in dB, both floored at the file's loudest band and frame
      less DYNAMIC_RANGE_DB; the run's mel sizes with HiFi-GAN's Slaney filterbank
      whatever the run's format, so figures compare across formats

The reference is the held-out file itself (float audio, decoded again). The floor keeps
bands far below hearing from deciding the figure: with HiFi-GAN's 1e-5 clamp alone, the
8-bit mu-law noise of every sample this package generates, some 40 dB under the signal,
scored 36 dB against a clean synthetic tone, whatever the model.
Griffin-Lim: the mel's magnitudes (`features.mel_magnitude`) mapped back to a linear
spectrum by the filterbank's pseudo-inverse (negatives clipped), then 32 iterations from
zero phase (deterministic); its output is moved by the offset between centred frames
and this package's (n_fft - hop) / 2 padding, so that both line up with the file.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from ..config import Config, MelConfig
from ..data.features import hifigan_log_mel, mel_filterbank, mel_magnitude
from ..data.prepare import FileSet, file_waveform
from ..errors import DataError, InvalidArgumentError
from ..generation.sampling import Progress
from ..nn.model import WaveNet
from ..util import dependencies

DB_PER_NEPER = 20.0 / math.log(10.0)
# Range below the reference's loudest mel value that the distance looks at (librosa's
# `power_to_db` default top_db).
DYNAMIC_RANGE_DB = 80.0
GRIFFIN_LIM_ITERATIONS = 32


@dataclass
class CopySynthesis:
    """Log-mel distances (dB) per file: the vocoder's and Griffin-Lim's, over `seconds`
    of each file (its start)."""

    files: list[str]
    vocoder_db: list[float]
    griffin_lim_db: list[float]
    seconds: list[float]

    @property
    def mean_vocoder_db(self) -> float:
        return float(np.mean(self.vocoder_db))

    @property
    def mean_griffin_lim_db(self) -> float:
        return float(np.mean(self.griffin_lim_db))

    def to_dict(self) -> dict[str, object]:
        return {
            "vocoder_db": self.mean_vocoder_db,
            "griffin_lim_db": self.mean_griffin_lim_db,
            "files": [
                {"file": f, "seconds": s, "vocoder_db": v, "griffin_lim_db": g}
                for f, s, v, g in zip(
                    self.files, self.seconds, self.vocoder_db, self.griffin_lim_db
                )
            ],
        }


def _distance_mel(mel: MelConfig) -> MelConfig:
    return dataclasses.replace(mel, format="hifigan")


def log_mel_distance(
    reference: torch.Tensor, other: torch.Tensor, sample_rate: int, mel: MelConfig
) -> float:
    """RMS difference in dB of two waveforms' log-mels (module docstring); both (T,),
    same length, at least one hop."""
    if reference.shape != other.shape or reference.dim() != 1:
        raise InvalidArgumentError(
            f"expected two waveforms of one length, got {tuple(reference.shape)} "
            f"and {tuple(other.shape)}"
        )
    spec = _distance_mel(mel)
    a = hifigan_log_mel(reference.float(), sample_rate, spec).double()
    b = hifigan_log_mel(other.float(), sample_rate, spec).double()
    if a.shape[1] == 0:
        raise InvalidArgumentError(
            f"the waveforms are shorter than one hop ({mel.hop_length} samples)"
        )
    floor = a.max() - DYNAMIC_RANGE_DB / DB_PER_NEPER
    return float(DB_PER_NEPER * (a.clamp(min=floor) - b.clamp(min=floor)).square().mean().sqrt())


def griffin_lim_min_frames(mel: MelConfig) -> int:
    """Fewest mel frames `griffin_lim` rebuilds: its centred STFT pads n_fft // 2 samples
    by reflection on each side, which needs more than that many samples in the
    (frames - 1) x hop of a centred inverse STFT."""
    return (mel.n_fft // 2) // mel.hop_length + 2


def griffin_lim(
    features: torch.Tensor,
    sample_rate: int,
    mel: MelConfig,
    iterations: int = GRIFFIN_LIM_ITERATIONS,
) -> torch.Tensor:
    """A waveform (frames x hop,) float32 from mel features (n_mels, frames) of either
    format by Griffin-Lim, aligned with the audio the features came from."""
    frames = features.shape[1]
    bank = mel_filterbank(sample_rate, mel).double()  # (n_freqs, n_mels)
    linear = (torch.linalg.pinv(bank.T) @ mel_magnitude(features.double(), mel)).clamp(min=0.0)
    window = torch.hann_window(mel.win_length, dtype=torch.float64)
    # Centred frames: frame i is centred on sample i * hop; here on i * hop + offset.
    offset = mel.n_fft // 2 - (mel.n_fft - mel.hop_length) // 2
    length = frames * mel.hop_length
    audio = dependencies.torchaudio().functional.griffinlim(
        linear,
        window,
        mel.n_fft,
        mel.hop_length,
        mel.win_length,
        power=1.0,
        n_iter=iterations,
        momentum=0.99,
        length=None,
        rand_init=False,
    )
    shifted = torch.cat([torch.zeros(offset, dtype=audio.dtype), audio])[:length]
    shifted = torch.nn.functional.pad(shifted, (0, length - shifted.shape[0]))
    return shifted.float().clamp(-1.0, 1.0)


def copy_synthesis(
    model: WaveNet,
    config: Config,
    files: FileSet,
    *,
    seconds: float,
    batch_size: int = 8,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    progress: Progress | None = None,
    weights: str = "float32",
) -> CopySynthesis:
    """Resynthesize the first `seconds` (whole hops, at least `griffin_lim_min_frames`) of
    each file from its mel with the vocoder and with Griffin-Lim; -> both distances to the
    file's audio. Files shorter than that are left out; DataError when all are.

    files: a vocoder's FileSet (`data.prepare_data(..., purpose="eval").val`), mels set.
    weights: the products' format in the CPU kernel (`generate`'s `weights`).
    """
    from ..generation.vocoder import vocode

    if files.mels is None:
        raise InvalidArgumentError("copy synthesis needs each file's mel (a vocoder's FileSet)")
    hop, rate = config.mel.hop_length, config.data.sample_rate
    fewest = griffin_lim_min_frames(config.mel)
    wanted = max(fewest, int(seconds * rate) // hop)
    kept, references, clips = [], [], []
    for file, file_mel in zip(files.files, files.mels):
        frames = min(wanted, file_mel.shape[1], len(file) // hop)
        if frames < fewest:
            continue
        kept.append(file.path.name)
        audio = file_waveform(
            file,
            sample_rate=rate,
            trim_silence=config.data.trim_silence,
            silence_threshold_db=config.data.silence_threshold_db,
        )
        references.append(torch.from_numpy(audio[: frames * hop]))
        clips.append(torch.from_numpy(np.array(file_mel[:, :frames], dtype=np.float32)))
    if not kept:
        raise DataError(
            f"no file holds the {fewest} whole hops ({fewest * hop} samples) with "
            f"their mel that copy synthesis needs (--resynth-seconds 0 skips it)"
        )
    resynthesized = vocode(
        model,
        clips,
        batch_size=batch_size,
        temperature=temperature,
        generator=generator,
        progress=progress,
        weights=weights,
    )
    result = CopySynthesis([], [], [], [])
    for name, reference, clip, vocoded in zip(kept, references, clips, resynthesized):
        result.files.append(name)
        result.seconds.append(len(reference) / rate)
        result.vocoder_db.append(log_mel_distance(reference, vocoded, rate, config.mel))
        result.griffin_lim_db.append(
            log_mel_distance(reference, griffin_lim(clip, rate, config.mel), rate, config.mel)
        )
    return result

"""Audio samples while a run trains, to hear whether it is learning.

Every `train.sample_every` steps (rank 0 only), `SampleWriter.write` generates
`train.sample_seconds` of audio with the weights that validation uses (EMA when kept),
through the fast generation path and from a fixed seed, so that samples of successive
steps differ only by what the model learned:

    RUN/samples/step-NNNNNNN.wav   the sample (PCM 16-bit)
    RUN/samples/step-NNNNNNN.png   its spectrogram (beside the original's for a vocoder)
    RUN/samples/original.wav       a vocoder's held-out clip, as the model hears it
                                   (its mu-law codes decoded), written once
    TensorBoard (when the run has a writer): audio "sample" and image "spectrogram"

A plain or speaker model samples freely (a speaker model as its first speaker); a vocoder
resynthesizes the start of a held-out file from its mel (of a training file when nothing
is held out). The caller times `write` and logs the seconds.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..coding.pcm import codes_to_waveform
from ..config import Config
from ..data.prepare import PreparedData
from ..generation.driver import generate
from ..nn.model import WaveNet
from ..util.files import atomic_write_audio

logger = logging.getLogger(__name__)

SAMPLES_DIR = "samples"
# Audio samples generated before a sample is timed (compiling the generation kernel).
WARM_UP_SAMPLES = 100


@dataclass
class VocoderClip:
    """What a vocoder resynthesizes: mel (n_mels, frames) and the audio it came from
    (frames x hop,) float32."""

    mel: torch.Tensor
    original: np.ndarray
    name: str


@dataclass
class SampleWriter:
    """Writes one sample per call; holds the run folder, the length, the seed, the clip,
    and the clock its seconds are read from (the run's budget's)."""

    run_dir: Path
    config: Config
    clip: VocoderClip | None = None
    writer: Any = None  # a TensorBoard SummaryWriter, or None
    # A factory, so that a plain function passed as the clock is not bound as a method.
    clock: Callable[[], float] = field(default_factory=lambda: time.monotonic, repr=False)
    _pictures: bool = field(default=True, repr=False)

    @property
    def folder(self) -> Path:
        return self.run_dir / SAMPLES_DIR

    def write(self, model: WaveNet, step: int) -> float:
        """Generate and write the sample of `step`; -> the seconds it took."""
        started = self.clock()
        rate = self.config.data.sample_rate
        audio = self._audio(model, self._length())
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = f"step-{step:07d}"
        _write_wav(self.folder / f"{stem}.wav", audio, rate)
        clips = [(f"step {step}", audio)]
        if self.clip is not None:
            original = self.folder / "original.wav"
            if not original.exists():
                _write_wav(original, self.clip.original, rate)
                if self.writer is not None:
                    self.writer.add_audio(
                        "original",
                        torch.from_numpy(self.clip.original)[None],
                        step,
                        sample_rate=rate,
                    )
            clips.append((f"original ({self.clip.name})", self.clip.original))
        picture = self._picture(clips, self.folder / f"{stem}.png")
        if self.writer is not None:
            self.writer.add_audio("sample", torch.from_numpy(audio)[None], step, sample_rate=rate)
            if picture is not None:
                import matplotlib.pyplot as plt

                self.writer.add_image(
                    "spectrogram", plt.imread(picture)[..., :3], step, dataformats="HWC"
                )
        return self.clock() - started

    def estimate_seconds(self, model: WaveNet) -> float:
        """What `write` takes: one whole sample written to a scratch folder (no
        TensorBoard), after a short untimed generation that pays the generation kernel's
        one-time compile (seconds where numba's on-disk cache is cold), so that a time
        budget's calibration pays it rather than the run's first sample. The picture and
        the files count: for a short sample they cost more than generating it."""
        per_unit = 1 if self.clip is None else self.config.model.upsample_factor
        self._audio(model, min(self._length(), -(-WARM_UP_SAMPLES // per_unit)))
        with tempfile.TemporaryDirectory() as scratch:
            return replace(self, run_dir=Path(scratch), writer=None).write(model, 0)

    def _length(self) -> int:
        """The sample's length: audio samples, or a vocoder's mel frames."""
        if self.clip is not None:
            return self.clip.mel.shape[1]
        return max(1, round(self.config.train.sample_seconds * self.config.data.sample_rate))

    def _audio(self, model: WaveNet, length: int) -> np.ndarray:
        """The first `length` of the sample (audio samples, or mel frames for a vocoder):
        float32 audio, from the run's seed."""
        generator = torch.Generator(device=model.embedding.weight.device)
        generator.manual_seed(self.config.train.seed)
        if self.clip is not None:
            from ..generation.vocoder import vocode

            return vocode(model, [self.clip.mel[:, :length]], generator=generator)[0].numpy()
        ids = (
            None
            if self.config.model.global_classes is None
            else torch.zeros(1, dtype=torch.long, device=model.embedding.weight.device)
        )
        codes = generate(model, length, generator=generator, global_cond=ids)
        m = self.config.model
        return codes_to_waveform(codes[0].cpu(), m.classes, m.coding).numpy()

    def _picture(self, clips: list[tuple[str, np.ndarray]], path: Path) -> Path | None:
        """The spectrogram PNG, or None without matplotlib (one warning per run)."""
        from ..eval.plots import PlotError, plot_spectrograms

        if not self._pictures:
            return None
        try:
            return plot_spectrograms(clips, self.config.data.sample_rate, path)
        except PlotError as error:
            logger.warning("samples are written without spectrograms: %s", error)
            self._pictures = False
            return None


def sample_writer(
    config: Config,
    data: PreparedData,
    run_dir: Path,
    writer: Any = None,
    clock: Callable[[], float] = time.monotonic,
) -> SampleWriter | None:
    """The run's SampleWriter, or None when `train.sample_every` is 0; its seconds are
    read from `clock`."""
    if config.train.sample_every == 0:
        return None
    clip = None
    if config.model.local_channels is not None:
        clip = vocoder_clip(config, data)
    return SampleWriter(Path(run_dir), config, clip, writer, clock)


def vocoder_clip(config: Config, data: PreparedData) -> VocoderClip:
    """The start of the first held-out file (else of the first training file), at most
    train.sample_seconds and at least one frame long, with its mel."""
    fileset = data.val if len(data.val) else data.train
    if fileset.mels is None or not len(fileset):
        raise ValueError("a vocoder's samples need a file with its mel")
    hop = config.mel.hop_length
    wanted = max(1, int(config.train.sample_seconds * config.data.sample_rate) // hop)
    mel = torch.from_numpy(np.array(fileset.mels[0], dtype=np.float32))
    frames = min(wanted, mel.shape[1], len(fileset.files[0]) // hop)
    codes = torch.from_numpy(np.array(fileset.files[0].codes[: frames * hop], dtype=np.int64))
    original = codes_to_waveform(codes, config.model.classes, config.model.coding).numpy()
    return VocoderClip(mel[:, :frames].contiguous(), original, fileset.files[0].path.name)


def _write_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    atomic_write_audio(path, np.asarray(audio, dtype=np.float32), rate)

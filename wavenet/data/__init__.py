"""Data: audio files in, the codes, crops and mel features that training and evaluation
read out (decoding with soundfile and libsoxr; no model, no torchaudio at import).

- `audio.py`: finding and decoding audio files (mono, resampled, float32).
- `cache.py`: the on-disk cache of decoded codes and mels (memory-mapped .npy).
- `prepare.py`: a folder -> cached codes -> the train/validation split, speakers and mels
  a config needs (`prepare_data`).
- `crops.py`: random fixed-length training crops (context + scored samples).
- `features.py`: log-mel features aligned to samples (the vocoder's conditioning), and the
  spectral figures (flatness, periodicity, activity) used to judge audio.
- `melfiles.py`: mel files made elsewhere (an acoustic model's), read and paired with audio.
- `conditioning.py`: a speaker name, an audio file or a mel file turned into what
  `generate` takes.
- `demo.py`: the demo's plucked-string melodies.
"""

from .audio import decode_audio, find_audio_files
from .conditioning import mel_input, mel_of_audio, speaker_ids
from .crops import Batch, CropSampler
from .features import log_mel_of_waveform
from .melfiles import orient_mel, read_mel_file
from .prepare import EncodedFile, EncodedSet, FileSet, PreparedData, prepare_data

__all__ = [
    "Batch",
    "CropSampler",
    "EncodedFile",
    "EncodedSet",
    "FileSet",
    "PreparedData",
    "decode_audio",
    "find_audio_files",
    "log_mel_of_waveform",
    "mel_input",
    "mel_of_audio",
    "orient_mel",
    "prepare_data",
    "read_mel_file",
    "speaker_ids",
]

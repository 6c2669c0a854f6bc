"""Write a small synthetic speech set with espeak-ng, for the vocoder benchmark.

    python benchmarks/speech_data.py OUT            # OUT/train and OUT/held-out
    python benchmarks/vocoder.py --train-data OUT/train --held-out-data OUT/held-out

Training: 12 sentences in 3 voices (36 files). Held out: 4 other sentences in 2 of those
voices (8 files), so the score is on words the model never heard. Needs the espeak-ng
program (Debian: apt install espeak-ng); the package itself does not.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

TRAIN_SENTENCES = [
    "The quiet river carried small boats past the old mill every morning.",
    "Seven bright lamps were hanging over the long wooden table.",
    "She measured the height of the wall twice before cutting the beam.",
    "A cold wind came down from the hills and rattled the shutters.",
    "Please bring the blue folder and the spare keys to the front desk.",
    "Our train left the station four minutes later than planned.",
    "The garden needs water, sunlight and a little patience.",
    "He tuned the violin slowly, listening to every string.",
    "Thick fog covered the harbour until nearly noon.",
    "Numbers on the screen changed faster than anyone could read them.",
    "Children laughed as the kite climbed above the tall trees.",
    "Every recipe in the book asks for fresh bread and butter.",
]
HELD_OUT_SENTENCES = [
    "The baker opened his shop early to sell warm rolls.",
    "Distant thunder rolled across the valley after sunset.",
    "Four students solved the puzzle before the bell rang.",
    "A grey cat slept on the porch beside the empty chair.",
]
TRAIN_VOICES = ["en", "en+f3", "en+m3"]
HELD_OUT_VOICES = ["en", "en+f3"]


def speak(text: str, voice: str, path: Path) -> None:
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True,
                   capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is not installed (Debian: apt install espeak-ng)")
    for folder, sentences, voices in (("train", TRAIN_SENTENCES, TRAIN_VOICES),
                                      ("held-out", HELD_OUT_SENTENCES, HELD_OUT_VOICES)):
        target = args.out / folder
        target.mkdir(parents=True, exist_ok=True)
        for i, text in enumerate(sentences):
            for voice in voices:
                speak(text, voice, target / f"s{i:02d}_{voice.replace('+', '-')}.wav")
    print(f"wrote {len(TRAIN_SENTENCES) * len(TRAIN_VOICES)} training and "
          f"{len(HELD_OUT_SENTENCES) * len(HELD_OUT_VOICES)} held-out files under {args.out}")


if __name__ == "__main__":
    main()

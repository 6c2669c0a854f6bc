"""Write synthetic speech sets with espeak-ng, for the vocoder and quality benchmarks.

    python benchmarks/speech_data.py OUT            # OUT/train and OUT/held-out
    python benchmarks/vocoder.py --train-data OUT/train --held-out-data OUT/held-out
    python benchmarks/speech_data.py OUT --large    # OUT/train, OUT/test, OUT/test-new-voice

Small set (the vocoder's): 12 sentences in 3 voices (36 files) at espeak-ng's 22,050 Hz
for training; 4 other sentences in 2 of those voices (8 files) held out, so the score is
on words the model never heard.

Large set (`benchmarks/quality.py`'s), 16 kHz mono (resampled by sox): the 48 training
sentences in 5 voices (accents, espeak-ng variants, speeds and pitches; ~10 minutes),
the 12 held-out sentences in 2 of those voices (test, ~1 minute) and in a sixth voice
heard in no training file (test-new-voice, ~30 s).

Needs the espeak-ng program (Debian: apt install espeak-ng), and sox for the large set;
the package itself needs neither.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import dataclass
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
# More training sentences for the large set (the first 12 are TRAIN_SENTENCES).
MORE_TRAIN_SENTENCES = [
    "The engineer checked each valve before she opened the main pipe.",
    "Heavy rain is expected along the coast later this evening.",
    "My neighbour keeps three goats and a very noisy rooster.",
    "The museum will close early on Friday for a private event.",
    "Turn left at the bakery and walk until you reach the bridge.",
    "He wrote the letter by hand and sealed it with red wax.",
    "A flock of geese flew south over the frozen lake.",
    "The doctor asked him to breathe slowly and count to ten.",
    "Nobody expected the small team to win the final match.",
    "Fresh paint was still drying on the railings of the pier.",
    "The library lends out tools as well as books and maps.",
    "Jupiter rose above the roofs shortly after midnight.",
    "She practised the same difficult passage for an hour.",
    "The old clock in the hall struck nine as we sat down.",
    "Pack a warm jumper, because the nights get chilly up there.",
    "The lorry reversed carefully into the narrow yard.",
    "Six volunteers planted two hundred trees along the road.",
    "Can you remember where we parked the car this morning?",
    "The soup tasted of ginger, garlic and a hint of lemon.",
    "Bright yellow tulips lined the path to the front door.",
    "The pilot announced a short delay because of strong winds.",
    "A sudden silence fell over the crowded market square.",
    "They repaired the roof before the first snow arrived.",
    "Most of the island is covered with pine forest and moss.",
    "The committee will vote on the proposal next Tuesday.",
    "Water boils at a lower temperature high in the mountains.",
    "The fisherman mended his nets while the tide came in.",
    "Our teacher read us a story about a brave little mouse.",
    "Copper wire conducts electricity far better than steel.",
    "The choir sang softly as the candles were lit one by one.",
    "Please switch off your phone during the performance.",
    "Rows of apple trees stretched all the way to the river.",
    "An old map showed a path that no longer exists.",
    "The twins argued about whose turn it was to wash up.",
    "Strong coffee and toast were all he had for breakfast.",
    "The shop on the corner sells buttons, thread and ribbon.",
]
HELD_OUT_SENTENCES = [
    "The baker opened his shop early to sell warm rolls.",
    "Distant thunder rolled across the valley after sunset.",
    "Four students solved the puzzle before the bell rang.",
    "A grey cat slept on the porch beside the empty chair.",
]
# More held-out sentences for the large set (the first 4 are HELD_OUT_SENTENCES).
MORE_HELD_OUT_SENTENCES = [
    "The postman whistled a tune as he climbed the steep hill.",
    "Lightning struck the tall oak at the edge of the field.",
    "We shared a pot of tea while the snow kept falling.",
    "The carpenter sanded the drawer until it slid smoothly.",
    "Eight red balloons drifted slowly over the stadium.",
    "Her grandfather grew tomatoes in a small glass house.",
    "The ferry to the island leaves twice a day in winter.",
    "A loud knock at the door woke the whole household.",
]
TRAIN_VOICES = ["en", "en+f3", "en+m3"]
HELD_OUT_VOICES = ["en", "en+f3"]


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice (language, optionally +variant), speed (words/min) and pitch (0-99)."""

    name: str
    speed: int = 175
    pitch: int = 50

    @property
    def tag(self) -> str:
        return f"{self.name.replace('+', '-')}_s{self.speed}_p{self.pitch}"


LARGE_TRAIN_VOICES = [
    Voice("en-us", 170, 50),
    Voice("en-gb", 180, 42),
    Voice("en+f3", 160, 62),
    Voice("en+m3", 185, 35),
    Voice("en-gb-x-rp+f2", 150, 70),
]
LARGE_TEST_VOICES = [LARGE_TRAIN_VOICES[0], LARGE_TRAIN_VOICES[2]]
LARGE_NEW_VOICE = Voice("en-gb-scotland+m4", 165, 45)
LARGE_SAMPLE_RATE = 16000


def speak(text: str, voice: str | Voice, path: Path, sample_rate: int | None = None) -> None:
    """Write `text` spoken by `voice` to the WAV file `path`: at espeak-ng's own rate
    (22,050 Hz), or resampled to `sample_rate` (mono, 16 bit) by sox."""
    if isinstance(voice, str):
        voice = Voice(voice)
    speak_command = ["espeak-ng", "-v", voice.name, "-s", str(voice.speed), "-p", str(voice.pitch)]
    if sample_rate is None:
        subprocess.run([*speak_command, "-w", str(path), text], check=True, capture_output=True)
        return
    raw = path.with_name(path.stem + ".espeak.wav")
    try:
        subprocess.run([*speak_command, "-w", str(raw), text], check=True, capture_output=True)
        subprocess.run(
            ["sox", str(raw), "-r", str(sample_rate), "-c", "1", "-b", "16", str(path)],
            check=True,
            capture_output=True,
        )
    finally:
        raw.unlink(missing_ok=True)


def write_set(
    folder: Path,
    sentences: list[str],
    voices: list[Voice] | list[str],
    sample_rate: int | None = None,
) -> int:
    """Every sentence in every voice, one file each: s{index}_{voice}.wav. -> files written."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(sentences):
        for voice in voices:
            tag = voice.tag if isinstance(voice, Voice) else voice.replace("+", "-")
            speak(text, voice, folder / f"s{i:02d}_{tag}.wav", sample_rate)
    return len(sentences) * len(voices)


def write_large_set(out: Path) -> dict[str, int]:
    """The quality benchmark's set under `out` -> files written per sub-folder."""
    train = TRAIN_SENTENCES + MORE_TRAIN_SENTENCES
    held_out = HELD_OUT_SENTENCES + MORE_HELD_OUT_SENTENCES
    assert not set(train) & set(held_out), "a held-out sentence is also a training sentence"
    rate = LARGE_SAMPLE_RATE
    return {
        "train": write_set(out / "train", train, LARGE_TRAIN_VOICES, rate),
        "test": write_set(out / "test", held_out, LARGE_TEST_VOICES, rate),
        "test-new-voice": write_set(out / "test-new-voice", held_out, [LARGE_NEW_VOICE], rate),
    }


def require(*programs: str) -> None:
    """Exit with a one-line message if a program is not on PATH."""
    for program in programs:
        if shutil.which(program) is None:
            sys.exit(f"{program} is not installed (Debian: apt install {program})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument(
        "--large",
        action="store_true",
        help="the quality benchmark's 16 kHz set (train, test, test-new-voice)",
    )
    args = parser.parse_args()
    if args.large:
        require("espeak-ng", "sox")
        written = write_large_set(args.out)
        print(", ".join(f"{n} {name}" for name, n in written.items()) + f" files under {args.out}")
        return
    require("espeak-ng")
    n_train = write_set(args.out / "train", TRAIN_SENTENCES, TRAIN_VOICES)
    n_held_out = write_set(args.out / "held-out", HELD_OUT_SENTENCES, HELD_OUT_VOICES)
    print(f"wrote {n_train} training and {n_held_out} held-out files under {args.out}")


if __name__ == "__main__":
    main()

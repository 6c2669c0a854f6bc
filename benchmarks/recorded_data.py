"""Real recordings from Debian packages, as train and test folders for quality.py.

    python benchmarks/recorded_data.py asterisk-en OUT   # OUT/train, OUT/test
    python benchmarks/recorded_data.py wesnoth OUT

The sets (the packages must be installed; `apt install PACKAGE`):

  asterisk-en: asterisk-core-sounds-en-wav 1.6.1-1, licence CC-BY-SA-3.0, the prompts of
      the Asterisk PBX recorded by Allison Smith: 568 WAV files, 8 kHz mono, 25.5 min,
      under /usr/share/asterisk/sounds/en (a link, followed; sub-folders digits/, letters/,
      phonetic/ ... included; silence/, ten files of 1-10 s of digital silence that the
      PBX plays as pauses, left out: no speaker records them, and in a 5-minute subset
      their 55 s would be a sixth of the audio).
  asterisk-fr: asterisk-core-sounds-fr-wav 1.6.1-1, CC-BY-SA-3.0, the same prompts in
      Canadian French recorded by June Wallack: 561 files, 8 kHz mono, 26.0 min, under
      /usr/share/asterisk/sounds/fr.
  wesnoth: wesnoth-1.16-music 1:1.16.9-1, GPL-2+, the music of The Battle for Wesnoth
      (recorded and produced orchestral pieces): 41 Ogg Vorbis tracks, 44.1 kHz stereo,
      128 min, in /usr/share/games/wesnoth/1.16/data/core/music.

Prompts are copied as they are (relative path kept); a file is a test file when the
SHA-256 of its relative path, as an integer, is 0 mod 10 (about a tenth of the files; the
same on every machine), a training file otherwise. Tracks are decoded to mono and
resampled to 16 kHz by the package's own decoder (`wavenet.data.audio.decode_audio`:
soundfile, libsoxr "HQ") and cut into 10 s pieces (a last piece of 2 s or more is kept,
shorter ones dropped), written as 16-bit WAV, so that a small training subset can take
pieces of many tracks (five tracks' decoded peaks reach 0.1-0.8 dB over full scale, and are
clipped, as the decoder logs). The 4 test tracks are whole tracks no training piece comes from:
of the tracks of a minute or more, the 4 whose names have the lowest SHA-256; of each, 6
pieces spread evenly over the track are kept (4 minutes in all: scoring the whole 19
minutes with `xz -9e` and the model took most of a run's time).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf

from wavenet.data.audio import decode_audio


@dataclass(frozen=True)
class Source:
    name: str
    package: str
    version: str  # the version these notes describe (the installed one goes in the manifest)
    licence: str
    credit: str
    root: Path
    kind: str  # "prompts" (files copied, split by path) or "tracks" (cut into pieces)


SOURCES = {
    "asterisk-en": Source(
        "asterisk-en",
        "asterisk-core-sounds-en-wav",
        "1.6.1-1",
        "CC-BY-SA-3.0",
        "Asterisk core sounds (English, US), recorded by Allison Smith",
        Path("/usr/share/asterisk/sounds/en"),
        "prompts",
    ),
    "asterisk-fr": Source(
        "asterisk-fr",
        "asterisk-core-sounds-fr-wav",
        "1.6.1-1",
        "CC-BY-SA-3.0",
        "Asterisk core sounds (French, Canadian), recorded by June Wallack",
        Path("/usr/share/asterisk/sounds/fr"),
        "prompts",
    ),
    "wesnoth": Source(
        "wesnoth",
        "wesnoth-1.16-music",
        "1:1.16.9-1",
        "GPL-2+",
        "The Battle for Wesnoth 1.16 music",
        Path("/usr/share/games/wesnoth/1.16/data/core/music"),
        "tracks",
    ),
}

TEST_MODULUS = 10  # a prompt is a test file when sha256(relative path) % 10 == 0
TRACK_RATE = 16000
PIECE_SECONDS = 10.0
MIN_PIECE_SECONDS = 2.0
TEST_TRACKS = 4
MIN_TEST_TRACK_SECONDS = 60.0
TEST_PIECES_PER_TRACK = 6
SKIPPED_PROMPT_FOLDERS = ("silence",)


def installed_version(package: str) -> str | None:
    """The version dpkg has installed, or None when the package is not installed."""
    try:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Status} ${Version}", package],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:  # not a Debian system
        return None
    words = result.stdout.split()
    if result.returncode != 0 or "installed" not in words[:3]:
        return None
    return words[-1]


def require_source(source: Source) -> str:
    """The installed version of the source's package; exits with how to install it when
    its files are missing."""
    version = installed_version(source.package)
    if not source.root.is_dir():
        sys.exit(f"{source.root} not found (Debian: apt install {source.package})")
    return version or "unknown (files present, package not known to dpkg)"


def _digest(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest(), 16)


def is_test_prompt(relative: str) -> bool:
    return _digest(relative) % TEST_MODULUS == 0


def audio_under(root: Path, suffix: str) -> list[Path]:
    """Files with `suffix` under root, following links, sorted by relative path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        found += [Path(dirpath) / n for n in filenames if n.lower().endswith(suffix)]
    return sorted(found, key=lambda p: p.relative_to(root).parts)


def write_prompts(source: Source, out: Path) -> dict[str, Any]:
    """Copy the source's WAV prompts into out/train and out/test (split by path hash)."""
    counts = {"train": 0, "test": 0}
    seconds = {"train": 0.0, "test": 0.0}
    for path in audio_under(source.root, ".wav"):
        relative = path.relative_to(source.root).as_posix()
        if relative.split("/")[0] in SKIPPED_PROMPT_FOLDERS:
            continue
        part = "test" if is_test_prompt(relative) else "train"
        target = out / part / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        counts[part] += 1
        seconds[part] += sf.info(str(target)).duration
    return {"files": counts, "seconds": {k: round(v, 1) for k, v in seconds.items()}}


def test_tracks(tracks: list[Path]) -> list[Path]:
    """The 4 tracks of a minute or more whose names have the lowest SHA-256."""
    long_enough = [t for t in tracks if sf.info(str(t)).duration >= MIN_TEST_TRACK_SECONDS]
    return sorted(long_enough, key=lambda t: _digest(t.name))[:TEST_TRACKS]


def write_tracks(source: Source, out: Path) -> dict[str, Any]:
    """Decode each track to 16 kHz mono and write its 10 s pieces to out/train or, for the
    test tracks, out/test."""
    tracks = audio_under(source.root, ".ogg")
    tests = set(test_tracks(tracks))
    piece = int(PIECE_SECONDS * TRACK_RATE)
    counts = {"train": 0, "test": 0}
    seconds = {"train": 0.0, "test": 0.0}
    for track in tracks:
        part = "test" if track in tests else "train"
        audio = decode_audio(track, TRACK_RATE)
        (out / part).mkdir(parents=True, exist_ok=True)
        starts = range(0, len(audio), piece)
        every = max(1, len(starts) // TEST_PIECES_PER_TRACK) if part == "test" else 1
        for i, start in enumerate(starts):
            chunk = audio[start : start + piece]
            if len(chunk) < MIN_PIECE_SECONDS * TRACK_RATE:
                continue
            if i % every or i // every >= TEST_PIECES_PER_TRACK:
                continue
            sf.write(out / part / f"{track.stem}-{i:03d}.wav", chunk, TRACK_RATE, subtype="PCM_16")
            counts[part] += 1
            seconds[part] += len(chunk) / TRACK_RATE
    return {
        "files": counts,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "test_tracks": sorted(t.name for t in tests),
        "tracks": len(tracks),
    }


def write_set(name: str, out: Path) -> dict[str, Any]:
    """Build the named set in out (train/, test/) -> what it holds and where it came from."""
    source = SOURCES[name]
    version = require_source(source)
    contents = write_prompts(source, out) if source.kind == "prompts" else write_tracks(source, out)
    return {
        "package": source.package,
        "version": version,
        "licence": source.licence,
        "credit": source.credit,
        "source": str(source.root),
        **contents,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(SOURCES))
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    print(write_set(args.name, args.out))


if __name__ == "__main__":
    main()

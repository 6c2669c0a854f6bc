"""Write a piano set: random pieces as standard MIDI files, rendered by fluidsynth.

    python benchmarks/piano_data.py OUT          # OUT/train (16 pieces), OUT/test (3 pieces)

Each piece is drawn from its own seed: a key (C, G, F, D, B-flat major; A, E, D minor), a
tempo (84-132 beats/min) and 4/4 bars of a chord progression, the left hand playing the
chord as a block, a broken chord or an Alberti bass, the right hand a random walk over
the scale that lands on a chord tone at each bar. About 20 s a piece, program 0 (acoustic
grand) of FluidR3_GM, rendered at 16 kHz (fluidsynth's default reverb and chorus), then
mixed to mono and normalized to a -3 dBFS peak by sox. Test pieces use seeds no training
piece uses, so the test melodies are new to the model. Needs fluidsynth, the
fluid-soundfont-gm package and sox; the package itself needs none of them.
"""

from __future__ import annotations

import argparse
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from speech_data import require

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SAMPLE_RATE = 16000
TICKS_PER_BEAT = 480
TRAIN_PIECES, TEST_PIECES, PIECE_SECONDS = 16, 3, 20.0
TEST_SEED_OFFSET = 1000  # test piece i uses seed 1000 + i; training pieces use 0 ... 999

# Key name -> (tonic MIDI note near middle C, scale steps in semitones).
MAJOR, MINOR = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10)
KEYS = {
    "C": (60, MAJOR),
    "G": (55, MAJOR),
    "F": (53, MAJOR),
    "D": (62, MAJOR),
    "Bb": (58, MAJOR),
    "Am": (57, MINOR),
    "Em": (52, MINOR),
    "Dm": (50, MINOR),
}
# Progressions as scale degrees (0 = tonic), one chord a bar.
PROGRESSIONS = ([0, 3, 4, 0], [0, 5, 3, 4], [0, 4, 5, 3], [5, 3, 0, 4], [0, 1, 4, 0])


@dataclass(frozen=True)
class Note:
    start: float  # beats
    length: float  # beats
    pitch: int  # MIDI note number
    velocity: int  # 1 ... 127


# ------------------------------------------------------------------ MIDI file writer


def variable_length(value: int) -> bytes:
    """A MIDI variable-length quantity: 7 bits a byte, most significant first, the high
    bit set on every byte but the last (0 -> 00, 128 -> 81 00)."""
    if not 0 <= value < 1 << 28:
        raise ValueError(f"a MIDI variable-length value must be in [0, 2**28), got {value}")
    groups = [value & 0x7F]
    while value := value >> 7:
        groups.append(0x80 | (value & 0x7F))
    return bytes(reversed(groups))


def midi_file(
    notes: list[Note], tempo_bpm: float, program: int = 0, channel: int = 0, tail_beats: float = 2.0
) -> bytes:
    """A format-0 standard MIDI file: header chunk, then one track with the tempo, a
    program change, the notes (on/off pairs, delta times in ticks) and end of track
    `tail_beats` after the last note ends (room for the release and the reverb)."""
    events: list[tuple[int, int, bytes]] = []  # (tick, order, event): offs before ons
    for note in notes:
        on = round(note.start * TICKS_PER_BEAT)
        off = max(on + 1, round((note.start + note.length) * TICKS_PER_BEAT))
        events.append((on, 1, bytes([0x90 | channel, note.pitch, note.velocity])))
        events.append((off, 0, bytes([0x80 | channel, note.pitch, 0])))
    events.sort(key=lambda e: (e[0], e[1]))
    end = (events[-1][0] if events else 0) + round(tail_beats * TICKS_PER_BEAT)
    micros_per_beat = round(60_000_000 / tempo_bpm)
    track = bytearray()
    track += variable_length(0) + b"\xff\x51\x03" + micros_per_beat.to_bytes(3, "big")
    track += variable_length(0) + bytes([0xC0 | channel, program])
    now = 0
    for tick, _, event in events:
        track += variable_length(tick - now) + event
        now = tick
    track += variable_length(end - now) + b"\xff\x2f\x00"
    header = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
    header += TICKS_PER_BEAT.to_bytes(2, "big")
    return header + b"MTrk" + len(track).to_bytes(4, "big") + bytes(track)


# ------------------------------------------------------------------ random pieces


def scale_note(tonic: int, scale: tuple[int, ...], degree: int) -> int:
    """MIDI note of a scale degree (any integer; 7 is the tonic an octave up)."""
    octave, step = divmod(degree, len(scale))
    return tonic + 12 * octave + scale[step]


def random_piece(seed: int, seconds: float = PIECE_SECONDS) -> tuple[list[Note], float, str]:
    """-> (notes, tempo in beats/min, key name) of a piece about `seconds` long."""
    rng = np.random.default_rng(seed)
    key = list(KEYS)[rng.integers(len(KEYS))]
    tonic, scale = KEYS[key]
    tempo = float(rng.integers(84, 133))
    bars = max(2, round(seconds * tempo / 60 / 4))
    progression = PROGRESSIONS[rng.integers(len(PROGRESSIONS))]
    bass_style = rng.integers(3)
    notes: list[Note] = []
    melody_degree = 7 + int(rng.integers(0, 5))  # start in the octave above the tonic
    for bar in range(bars):
        root = progression[bar % len(progression)] if bar < bars - 1 else 0
        chord = [scale_note(tonic - 12, scale, root + k) for k in (0, 2, 4)]
        t0 = 4.0 * bar
        loud = int(rng.integers(55, 80))
        if bass_style == 0:  # block chord, twice a bar
            for half in (0.0, 2.0):
                notes += [Note(t0 + half, 1.9, p, loud) for p in chord]
        elif bass_style == 1:  # broken chord in eighths
            for k, p in enumerate(chord + [chord[0] + 12] + chord[::-1][:3] + [chord[0]]):
                notes.append(Note(t0 + 0.5 * k, 0.5, p, loud - 5))
        else:  # Alberti bass: low, high, middle, high
            for k in range(8):
                notes.append(Note(t0 + 0.5 * k, 0.5, chord[(0, 2, 1, 2)[k % 4]], loud - 8))
        t = 0.0
        while t < 4.0:
            length = float(rng.choice([0.5, 0.5, 1.0, 1.0, 1.5, 2.0]))
            length = min(length, 4.0 - t)
            if t == 0.0:  # land on a chord tone
                melody_degree = min(
                    (root + 7 + k for k in (0, 2, 4, 7)), key=lambda d: abs(d - melody_degree)
                )
            else:
                melody_degree = int(
                    np.clip(melody_degree + rng.choice([-2, -1, -1, 1, 1, 2, 3]), 4, 14)
                )
            velocity = int(rng.integers(70, 105)) if t == 0.0 else int(rng.integers(55, 95))
            notes.append(
                Note(t0 + t, length * 0.95, scale_note(tonic, scale, melody_degree), velocity)
            )
            t += length
    return notes, tempo, key


# ------------------------------------------------------------------ rendering


def render(
    midi: Path, wav: Path, soundfont: Path = SOUNDFONT, sample_rate: int = SAMPLE_RATE
) -> None:
    """fluidsynth (no shell, no MIDI input, fast render to a file), then sox: mono, 16 bit,
    peak at -3 dBFS."""
    stereo = wav.with_name(wav.stem + ".stereo.wav")
    try:
        subprocess.run(
            [
                "fluidsynth",
                "-ni",
                "-q",
                "-F",
                str(stereo),
                "-r",
                str(sample_rate),
                str(soundfont),
                str(midi),
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["sox", str(stereo), "-b", "16", str(wav), "remix", "-", "gain", "-n", "-3"],
            check=True,
            capture_output=True,
        )
    finally:
        stereo.unlink(missing_ok=True)


def write_pieces(
    folder: Path, seeds: range, seconds: float = PIECE_SECONDS, soundfont: Path = SOUNDFONT
) -> list[dict[str, object]]:
    """One .mid (kept beside the audio, under midi/) and one .wav per seed -> what each is."""
    (folder / "midi").mkdir(parents=True, exist_ok=True)
    pieces: list[dict[str, object]] = []
    for seed in seeds:
        notes, tempo, key = random_piece(seed, seconds)
        name = f"piece{seed:04d}_{key}"
        midi = folder / "midi" / f"{name}.mid"
        midi.write_bytes(midi_file(notes, tempo))
        render(midi, folder / f"{name}.wav", soundfont)
        pieces.append({"name": name, "seed": seed, "key": key, "tempo": tempo, "notes": len(notes)})
    return pieces


def write_piano_set(out: Path, soundfont: Path = SOUNDFONT) -> dict[str, list[dict[str, object]]]:
    """OUT/train and OUT/test -> the pieces of each."""
    return {
        "train": write_pieces(out / "train", range(TRAIN_PIECES), soundfont=soundfont),
        "test": write_pieces(
            out / "test",
            range(TEST_SEED_OFFSET, TEST_SEED_OFFSET + TEST_PIECES),
            soundfont=soundfont,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--soundfont", type=Path, default=SOUNDFONT)
    args = parser.parse_args()
    require("fluidsynth", "sox")
    written = write_piano_set(args.out, args.soundfont)
    print(
        f"wrote {len(written['train'])} training and {len(written['test'])} test pieces "
        f"under {args.out}"
    )


if __name__ == "__main__":
    main()

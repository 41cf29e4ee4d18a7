"""Key names shared by the sample generator, MIDI key signatures and later taggers."""

from __future__ import annotations

from typing import Literal

Scale = Literal["major", "minor"]

# Canonical spelling (matches essentia's KeyExtractor labels).
NOTE_NAMES: tuple[str, ...] = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

# mido key_signature names, by tonic pitch class.
_MIDO_MAJOR = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MIDO_MINOR = ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm")

_ALIASES = {"Db": 1, "D#": 3, "Gb": 6, "G#": 8, "A#": 10, "Cb": 11, "B#": 0, "E#": 5, "Fb": 4}


def tonic_pc(name: str) -> int:
    if name in NOTE_NAMES:
        return NOTE_NAMES.index(name)
    if name in _ALIASES:
        return _ALIASES[name]
    raise ValueError(f"unknown tonic {name!r}")


def key_label(pc: int, scale: Scale) -> str:
    return f"{NOTE_NAMES[pc % 12]} {scale}"


def mido_key(pc: int, scale: Scale) -> str:
    return (_MIDO_MAJOR if scale == "major" else _MIDO_MINOR)[pc % 12]


def from_key_number(key_number: int) -> tuple[int, Scale]:
    """pretty_midi's KeySignature.key_number: 0-11 major, 12-23 minor."""
    return key_number % 12, ("major" if key_number < 12 else "minor")

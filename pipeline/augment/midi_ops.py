"""Note-level transforms of a clip's MIDI span: transposition within instrument ranges, tempo scaling.

Both work on a parsed `pretty_midi.PrettyMIDI` in place (callers parse a fresh copy
per variant). Drum tracks are never transposed: their pitches name drums, not notes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import pretty_midi

from pipeline.errors import ItemError

OutOfRange = Literal["fold", "drop", "skip"]


class OutOfRangeSkip(ItemError):
    """A transposition would push notes out of their instrument's range and the policy is `skip`."""


@dataclass(frozen=True)
class TransposeReport:
    folded: int  # notes moved by octaves back into range
    dropped: int  # notes removed (policy drop)


def transpose_key_number(key_number: int, semitones: int) -> int:
    """pretty_midi key numbers: 0-11 major, 12-23 minor (tonic pitch class + 12 for minor)."""
    base = 12 if key_number >= 12 else 0
    return base + (key_number - base + semitones) % 12


def _fold(pitch: int, low: int, high: int) -> int:
    while pitch < low:
        pitch += 12
    while pitch > high:
        pitch -= 12
    return pitch


def transpose(
    pm: pretty_midi.PrettyMIDI,
    semitones: int,
    families: Mapping[int, str],
    ranges: Mapping[str, tuple[int, int]],
    policy: OutOfRange,
) -> TransposeReport:
    """Move every pitched note (and the key signatures) by `semitones`.

    `families` maps an instrument index to its GM family, which picks its range in
    `ranges` (families without one are not limited). Notes leaving the range are
    folded by octaves, dropped, or make the whole transposition fail (skip).
    Pitch bends stay as they are: they are relative to the note.
    """
    folded = dropped = 0
    for index, inst in enumerate(pm.instruments):
        if inst.is_drum:
            continue
        low, high = ranges.get(families.get(index, ""), (0, 127))
        kept = []
        for note in inst.notes:
            pitch = note.pitch + semitones
            if not low <= pitch <= high:
                if policy == "skip":
                    raise OutOfRangeSkip(
                        f"transposing by {semitones:+d} puts {inst.name or f'track {index}'} note {note.pitch} "
                        f"outside {families.get(index, '?')} range {low}-{high}"
                    )
                if policy == "drop":
                    dropped += 1
                    continue
                pitch = _fold(pitch, low, high)
                folded += 1
            note.pitch = pitch
            kept.append(note)
        inst.notes = kept
    for ks in pm.key_signature_changes:
        ks.key_number = transpose_key_number(ks.key_number, semitones)
    return TransposeReport(folded, dropped)


def scale_tempo(pm: pretty_midi.PrettyMIDI, ratio: float) -> None:
    """Play the whole file `ratio` times as fast: every time divides by `ratio`, every tempo multiplies.

    pretty_midi's adjust_times moves notes, controllers, bends, meters, keys and the
    tempo map together, so bars stay bars and the beat grid follows.
    """
    if ratio <= 0:
        raise ValueError(f"tempo ratio must be > 0, got {ratio}")
    end = max(pm.get_end_time(), 1.0) + 1.0
    pm.adjust_times([0.0, end], [0.0, end / ratio])

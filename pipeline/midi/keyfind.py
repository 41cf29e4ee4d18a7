"""Key from notes: duration-weighted pitch-class profile vs Krumhansl-Kessler profiles.

Used where a MIDI file has no key-signature event, and to check the sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pretty_midi

from pipeline.midi.keys import Scale, key_label

_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True)
class KeyEstimate:
    tonic_pc: int
    scale: Scale
    correlation: float

    @property
    def label(self) -> str:
        return key_label(self.tonic_pc, self.scale)


def pitch_class_profile(pm: pretty_midi.PrettyMIDI) -> np.ndarray:
    """Seconds sounded per pitch class over the non-drum notes."""
    profile = np.zeros(12)
    for inst in pm.instruments:
        if inst.is_drum:
            continue
        for n in inst.notes:
            profile[n.pitch % 12] += max(0.0, n.end - n.start)
    return profile


def estimate_key(pm: pretty_midi.PrettyMIDI) -> KeyEstimate | None:
    """Best-correlated of the 24 keys; None when there are no pitched notes."""
    profile = pitch_class_profile(pm)
    if profile.sum() <= 0:
        return None
    best: KeyEstimate | None = None
    for scale, ref in (("major", _KK_MAJOR), ("minor", _KK_MINOR)):
        for tonic in range(12):
            r = float(np.corrcoef(profile, np.roll(ref, tonic))[0, 1])
            if best is None or r > best.correlation:
                best = KeyEstimate(tonic, scale, round(r, 4))  # type: ignore[arg-type]
    return best

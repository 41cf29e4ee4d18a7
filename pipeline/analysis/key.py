"""Key from audio (essentia's KeyExtractor) and from MIDI, and how two keys relate."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pretty_midi

from pipeline.midi.keyfind import KeyProfile, estimate_key
from pipeline.midi.keys import NOTE_NAMES, Scale, from_key_number, tonic_pc

Relation = Literal["exact", "relative", "fifth", "parallel", "other"]


@dataclass(frozen=True)
class KeyLabel:
    tonic: str
    scale: Scale
    strength: float | None = None
    source: str = ""

    @classmethod
    def parse(cls, label: str) -> KeyLabel:
        """'<tonic> <scale>' (a record's key) as a KeyLabel."""
        tonic, scale = label.split(" ")
        return cls(tonic, scale)  # type: ignore[arg-type]

    @property
    def label(self) -> str:
        return f"{self.tonic} {self.scale}"

    @property
    def pc(self) -> int:
        return tonic_pc(self.tonic)


@functools.cache
def _extractor(profile: str):
    import essentia.standard as es

    return es.KeyExtractor(profileType=profile)


def audio_key(mono: np.ndarray, sample_rate: int, profile: str) -> KeyLabel:
    if sample_rate != 44100:
        raise ValueError("essentia's KeyExtractor expects 44.1 kHz here")
    key, scale, strength = _extractor(profile)(mono.astype(np.float32))
    return KeyLabel(NOTE_NAMES[tonic_pc(key)], scale, round(float(strength), 4), f"essentia:{profile}")


def signature_key(pm: pretty_midi.PrettyMIDI) -> KeyLabel | None:
    """The key-signature event that holds longest (evidence only: real files carry default or wrong ones)."""
    if not pm.key_signature_changes:
        return None
    end = pm.get_end_time()
    spans: dict[int, float] = {}
    changes = pm.key_signature_changes
    for i, ks in enumerate(changes):
        stop = changes[i + 1].time if i + 1 < len(changes) else end
        spans[ks.key_number] = spans.get(ks.key_number, 0.0) + max(0.0, stop - ks.time)
    pc, scale = from_key_number(max(spans, key=lambda k: (spans[k], -k)))
    return KeyLabel(NOTE_NAMES[pc], scale, None, "midi:key_signature")


def midi_key(pm: pretty_midi.PrettyMIDI, profile: KeyProfile = "albrecht", bass_weight: float = 0.0) -> KeyLabel | None:
    """The key of the notes (a duration-weighted profile; the first and last bass decide between
    relative keys); None when nothing pitched plays."""
    est = estimate_key(pm, profile, bass_weight, tonic_votes=True)
    if est is None:
        return None
    return KeyLabel(NOTE_NAMES[est.tonic_pc], est.scale, est.margin, "midi:notes")


def relation(a: KeyLabel, b: KeyLabel) -> Relation:
    """How key `a` relates to key `b` (MIREX's categories)."""
    if a.pc == b.pc and a.scale == b.scale:
        return "exact"
    # relative: same key signature (C major <-> A minor)
    if a.scale != b.scale:
        major, minor = (a, b) if a.scale == "major" else (b, a)
        if (major.pc - minor.pc) % 12 == 3:
            return "relative"
        if a.pc == b.pc:
            return "parallel"
        return "other"
    if (a.pc - b.pc) % 12 in (5, 7):
        return "fifth"
    return "other"

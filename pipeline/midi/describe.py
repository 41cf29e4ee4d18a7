"""What a track and a song are, measured from the notes: the facts prompts will state."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pretty_midi

from pipeline.midi.keys import NOTE_NAMES, from_key_number
from pipeline.records import KeySignature, TempoChange, TimeSignature

# A track is polyphonic when 2+ notes sound together for more than this share of
# its sounding time; a few stray double stops do not make a bassline "chords".
POLYPHONIC_FRACTION = 0.05


@dataclass(frozen=True)
class Polyphony:
    max_notes: int
    polyphonic_fraction: float

    @property
    def label(self) -> str:
        return "polyphonic" if self.polyphonic_fraction > POLYPHONIC_FRACTION else "monophonic"


def polyphony(notes: list[pretty_midi.Note], legato_overlap_s: float) -> Polyphony:
    """Sweep over note starts/ends; each note's end is pulled in by the legato allowance."""
    if not notes:
        return Polyphony(0, 0.0)
    starts = np.array([n.start for n in notes])
    ends = np.array([max(n.start + 1e-6, n.end - legato_overlap_s) for n in notes])
    times = np.concatenate([starts, ends])
    deltas = np.concatenate([np.ones(len(notes)), -np.ones(len(notes))])
    order = np.lexsort((deltas, times))  # at equal times, ends (-1) before starts (+1)
    times, counts = times[order], np.cumsum(deltas[order])
    spans = np.diff(times)
    active = counts[:-1]
    sounding = float(spans[active >= 1].sum())
    poly = float(spans[active >= 2].sum())
    return Polyphony(int(counts.max()), round(poly / sounding, 4) if sounding > 0 else 0.0)


def tempo_map(pm: pretty_midi.PrettyMIDI) -> list[TempoChange]:
    times, bpms = pm.get_tempo_changes()
    return [
        TempoChange(time_s=round(float(t), 6), tempo_bpm=round(float(b), 6)) for t, b in zip(times, bpms, strict=True)
    ]


def time_signatures(pm: pretty_midi.PrettyMIDI) -> list[TimeSignature]:
    return [
        TimeSignature(time_s=round(float(ts.time), 6), numerator=ts.numerator, denominator=ts.denominator)
        for ts in pm.time_signature_changes
    ]


def key_signatures(pm: pretty_midi.PrettyMIDI) -> list[KeySignature]:
    out = []
    for ks in pm.key_signature_changes:
        pc, scale = from_key_number(ks.key_number)
        out.append(KeySignature(time_s=round(float(ks.time), 6), tonic=NOTE_NAMES[pc], scale=scale))
    return out


PAN_CC = 10


def first_pan(inst: pretty_midi.Instrument) -> int | None:
    """The pan controller (CC10) value in effect when the track's first note starts (or its first pan,
    if every one comes later); None when the track sets no pan."""
    pans = sorted((cc.time, i, cc.value) for i, cc in enumerate(inst.control_changes) if cc.number == PAN_CC)
    if not pans:
        return None
    start = min((n.start for n in inst.notes), default=0.0)
    before = [v for t, _, v in pans if t <= start]
    return int(before[-1] if before else pans[0][2])

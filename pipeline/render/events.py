"""The synth-level events of one track, in time order, shared by every backend.

Times are absolute seconds taken from pretty_midi, which applies the file's tempo
map, so a backend never sees ticks or a fixed tempo.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import pretty_midi

EventKind = Literal["program", "control", "pitch_bend", "note_off", "note_on"]
# At one instant: setup first, then note-offs before note-ons (a repeated pitch restarts).
_ORDER: dict[str, int] = {"program": 0, "control": 1, "pitch_bend": 2, "note_off": 3, "note_on": 4}

# Controllers forwarded to synths: modulation, volume, pan, expression, sustain,
# plus sostenuto and soft pedal. Others (bank select, RPN/NRPN, effects sends) are
# dropped: bank and program come from the patch, not from the file.
FORWARDED_CCS: frozenset[int] = frozenset({1, 7, 10, 11, 64, 66, 67})


@dataclass(frozen=True, order=True)
class SynthEvent:
    time_s: float
    order: int
    kind: EventKind
    channel: int
    a: int  # pitch | controller number | bend (-8192..8191) | program
    b: int = 0  # velocity | controller value


def instrument_events(inst: pretty_midi.Instrument, channel: int, program: int | None = None) -> list[SynthEvent]:
    """Note, controller and pitch-bend events of one instrument, sorted by time.

    `program` (default: the instrument's) is sent first; drums use channel 9.
    """
    prog = int(inst.program if program is None else program)
    ev = [SynthEvent(0.0, _ORDER["program"], "program", channel, prog)]
    for cc in inst.control_changes:
        if cc.number in FORWARDED_CCS:
            ev.append(SynthEvent(float(cc.time), _ORDER["control"], "control", channel, int(cc.number), int(cc.value)))
    for pb in inst.pitch_bends:
        ev.append(SynthEvent(float(pb.time), _ORDER["pitch_bend"], "pitch_bend", channel, int(pb.pitch)))
    for n in inst.notes:
        if n.end <= n.start:
            continue
        ev.append(SynthEvent(float(n.start), _ORDER["note_on"], "note_on", channel, int(n.pitch), int(n.velocity)))
        ev.append(SynthEvent(float(n.end), _ORDER["note_off"], "note_off", channel, int(n.pitch), 0))
    ev.sort()
    return ev


class Backend(Protocol):
    """A synth that turns events into audio.

    `render` yields float32 arrays of shape (frames, 2), consecutive and covering
    exactly round(end_s * sample_rate) frames, at most chunk_frames each. An event
    at time t takes effect at frame round(t * sample_rate). The synth starts from a
    clean state on every call: nothing leaks from one track to the next.
    """

    name: str

    def render(
        self, events: Sequence[SynthEvent], end_s: float, sample_rate: int, chunk_frames: int
    ) -> Iterator[np.ndarray]: ...

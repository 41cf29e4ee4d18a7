"""Write pretty_midi instruments to a type-1 MIDI file with the source's exact timing.

pretty_midi's own writer truncates each tempo to whole microseconds with int(),
which can shift a tempo map by 1 us per quarter; this writer rounds, so the
written tempo map equals the source's. Ticks come from the source's tick grid.

A `span` (start and end tick) writes only that stretch, starting at tick 0: the
tempo, meter, key and controller state in effect at its start are restated at 0,
notes starting inside it are kept and cut at its end (clips re-render from these).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import mido
import numpy as np
import pretty_midi

from pipeline.midi.keys import from_key_number, mido_key

# Order of events that share a tick: setup first, note-offs before note-ons so a
# repeated pitch is not cut by its own previous note-off.
_ORDER = {"program_change": 0, "control_change": 1, "pitchwheel": 2, "note_off": 3, "note_on": 4}


def tempo_us(pm: pretty_midi.PrettyMIDI) -> list[tuple[int, int]]:
    """(tick, microseconds per quarter) of each tempo change, as the source stated them."""
    return [(int(tick), round(scale * pm.resolution * 1e6)) for tick, scale in pm._tick_scales]


Span = tuple[int, int]  # [start, end) in the source's ticks


def times_to_ticks(pm: pretty_midi.PrettyMIDI, times: Sequence[float]) -> list[int]:
    """pm.time_to_tick of each time, in one search: the nearest tick of the source's grid (the earlier
    one on a tie), past the grid's end extrapolated by pretty_midi itself. A clip's MIDI converts every
    note of its song, so one search instead of one call per note is most of the writer's time."""
    table = pm._PrettyMIDI__tick_to_time  # pretty_midi's own grid, as time_to_tick reads it
    t = np.asarray(times, dtype=np.float64)
    tick = np.searchsorted(table, t, side="left")
    inside = np.minimum(tick, len(table) - 1)
    before = np.maximum(tick - 1, 0)
    earlier = (tick > 0) & (np.abs(t - table[before]) < np.abs(t - table[inside]))
    out = (tick - earlier).tolist()
    for i in np.flatnonzero(tick == len(table)).tolist():
        out[i] = int(pm.time_to_tick(float(t[i])))
    return out


Event = tuple[int, int, mido.Message | mido.MetaMessage]  # (tick, order at that tick, message)


def _latest(events: list[Event], key: Callable[[mido.Message], object]) -> list[Event]:
    """Of events before the span that collapse to tick 0, keep the last per key (a state, not a history)."""
    kept: dict[object, Event] = {}
    for event in sorted(events, key=lambda e: (e[0], e[1])):
        kept[key(event[2])] = event
    return list(kept.values())


def _place(raw: list[Event], span: Span | None, key: Callable[[mido.Message], object]) -> list[Event]:
    """Shift state events into the span: those before it become its opening state."""
    if span is None:
        return raw
    before = [(0, o, m) for t, o, m in raw if t <= span[0]]
    inside = [(t - span[0], o, m) for t, o, m in raw if span[0] < t < span[1]]
    return _latest(before, key) + inside


def _conductor(pm: pretty_midi.PrettyMIDI, span: Span | None = None) -> mido.MidiTrack:
    events: list[Event] = []
    tempo = [(tick, 0, mido.MetaMessage("set_tempo", tempo=us)) for tick, us in tempo_us(pm)]
    events += _place(tempo, span, lambda m: "tempo")
    meter = [
        (
            pm.time_to_tick(ts.time),
            1,
            mido.MetaMessage("time_signature", numerator=ts.numerator, denominator=ts.denominator),
        )
        for ts in pm.time_signature_changes
    ]
    events += _place(meter, span, lambda m: "meter")
    keys = []
    for ks in pm.key_signature_changes:
        pc, scale = from_key_number(ks.key_number)
        keys.append((pm.time_to_tick(ks.time), 2, mido.MetaMessage("key_signature", key=mido_key(pc, scale))))
    events += _place(keys, span, lambda m: "key")
    return events_to_track(events)


def events_to_track(events: list[tuple[int, int, mido.Message | mido.MetaMessage]]) -> mido.MidiTrack:
    """(absolute tick, order at that tick, message) -> a track of delta times."""
    track = mido.MidiTrack()
    last = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - last))
        last = tick
    return track


def _instrument_track(
    pm: pretty_midi.PrettyMIDI, inst: pretty_midi.Instrument, channel: int, span: Span | None = None
) -> mido.MidiTrack:
    events: list[tuple[int, int, mido.Message | mido.MetaMessage]] = [
        (0, -1, mido.MetaMessage("track_name", name=inst.name or "")),
        (0, _ORDER["program_change"], mido.Message("program_change", channel=channel, program=int(inst.program))),
    ]
    controls: list[Event] = []
    for cc, tick in zip(inst.control_changes, times_to_ticks(pm, [c.time for c in inst.control_changes]), strict=True):
        msg = mido.Message("control_change", channel=channel, control=int(cc.number), value=int(cc.value))
        controls.append((tick, _ORDER["control_change"], msg))
    events += _place(controls, span, lambda m: m.control)
    bends: list[Event] = [
        (tick, _ORDER["pitchwheel"], mido.Message("pitchwheel", channel=channel, pitch=int(pb.pitch)))
        for pb, tick in zip(inst.pitch_bends, times_to_ticks(pm, [b.time for b in inst.pitch_bends]), strict=True)
    ]
    events += _place(bends, span, lambda m: "bend")
    notes = inst.notes
    ticks = times_to_ticks(pm, [x for note in notes for x in (note.start, note.end)])
    for i, note in enumerate(notes):
        on, off = ticks[2 * i], ticks[2 * i + 1]
        if span is not None:
            if not span[0] <= on < span[1]:
                continue
            on, off = on - span[0], min(off, span[1]) - span[0]
        off = max(off, on + 1)
        events.append(
            (
                on,
                _ORDER["note_on"],
                mido.Message("note_on", channel=channel, note=int(note.pitch), velocity=int(note.velocity)),
            )
        )
        events.append(
            (off, _ORDER["note_off"], mido.Message("note_off", channel=channel, note=int(note.pitch), velocity=0))
        )
    return events_to_track(events)


def instruments_to_midi(
    pm: pretty_midi.PrettyMIDI, instruments: Sequence[pretty_midi.Instrument], span: Span | None = None
) -> bytes:
    """A type-1 file: conductor track (tempo, meter, key) plus one track per instrument, all of it or a span."""
    mf = mido.MidiFile(type=1, ticks_per_beat=pm.resolution)
    mf.tracks.append(_conductor(pm, span))
    melodic = [c for c in range(16) if c != 9]
    n_melodic = 0
    for inst in instruments:
        if inst.is_drum:
            channel = 9
        else:
            channel = melodic[n_melodic % len(melodic)]
            n_melodic += 1
        mf.tracks.append(_instrument_track(pm, inst, channel, span))
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()

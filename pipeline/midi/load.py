"""Parse MIDI bytes defensively: every way a file can be broken becomes a clear reason.

mido reads the raw events first (so tempo 0, no tracks or truncation give a
message instead of a ZeroDivisionError deep in pretty_midi), then pretty_midi
builds the note-level view the rest of the pipeline uses.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import mido
import pretty_midi

from pipeline.errors import ItemError


class MidiError(ItemError):
    """The file cannot be used; the message says why."""


@dataclass(frozen=True)
class MidiLimits:
    min_tempo_bpm: float = 10.0
    max_tempo_bpm: float = 1000.0
    max_duration_s: float = 3600.0


@dataclass
class ParsedMidi:
    pm: pretty_midi.PrettyMIDI
    zero_length_notes: int

    @property
    def n_notes(self) -> int:
        return sum(len(i.notes) for i in self.pm.instruments)

    @property
    def n_instruments(self) -> int:
        return sum(1 for i in self.pm.instruments if i.notes)


def _read_mido(data: bytes) -> mido.MidiFile:
    if not data.startswith(b"MThd"):
        raise MidiError("not a MIDI file (no MThd header)")
    try:
        return mido.MidiFile(file=io.BytesIO(data))
    except EOFError:
        raise MidiError("truncated MIDI file (data ends inside a chunk)") from None
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise MidiError(f"unreadable MIDI ({type(exc).__name__}: {exc})") from None


def _check_tempos(mf: mido.MidiFile, limits: MidiLimits | None) -> None:
    for track in mf.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type != "set_tempo":
                continue
            if msg.tempo <= 0:
                raise MidiError(f"tempo event at tick {tick} has 0 microseconds per quarter (infinite BPM)")
            bpm = 6e7 / msg.tempo
            if limits and not limits.min_tempo_bpm <= bpm <= limits.max_tempo_bpm:
                raise MidiError(
                    f"absurd tempo {bpm:.2f} BPM at tick {tick} (allowed {limits.min_tempo_bpm:g}-"
                    f"{limits.max_tempo_bpm:g}; params split.min_tempo_bpm/max_tempo_bpm)"
                )


def _count_zero_length(mf: mido.MidiFile) -> int:
    """Notes whose note-off falls on their note-on's tick (pretty_midi drops them silently)."""
    count = 0
    for track in mf.tracks:
        tick = 0
        open_at: dict[tuple[int, int], list[int]] = {}
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                open_at.setdefault((msg.channel, msg.note), []).append(tick)
            elif msg.type in ("note_off", "note_on"):
                starts = open_at.get((msg.channel, msg.note))
                if starts and starts.pop(0) == tick:
                    count += 1
    return count


def parse_midi(data: bytes, limits: MidiLimits | None = None) -> ParsedMidi:
    """Parse and validate; `limits=None` checks only that the file is readable."""
    mf = _read_mido(data)
    if not mf.tracks:
        raise MidiError("MIDI file has no tracks")
    if mf.type == 2:
        raise MidiError("type 2 MIDI (independent sequences) is not supported")
    if not any(len(t) for t in mf.tracks):
        raise MidiError("MIDI file has only empty tracks")
    _check_tempos(mf, limits)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pretty_midi warns on odd-but-readable files
            pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    except Exception as exc:
        raise MidiError(f"pretty_midi cannot read it ({type(exc).__name__}: {exc})") from None
    if limits:
        end = pm.get_end_time()
        if end > limits.max_duration_s:
            raise MidiError(f"too long: {end:.0f} s (limit {limits.max_duration_s:g} s; param split.max_duration_s)")
    return ParsedMidi(pm=pm, zero_length_notes=_count_zero_length(mf))

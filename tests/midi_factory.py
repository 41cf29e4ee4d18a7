"""Build small, real MIDI files with mido for tests (including broken ones)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import mido

from pipeline.midi.write import events_to_track


@dataclass
class TrackSpec:
    name: str
    program: int = 0
    channel: int = 0
    notes: list[tuple[int, int, int, int]] = field(default_factory=list)  # (pitch, on_tick, off_tick, velocity)
    controls: list[tuple[int, int, int]] = field(default_factory=list)  # (tick, cc, value)
    bends: list[tuple[int, int]] = field(default_factory=list)  # (tick, value)


def midi_bytes(
    tracks: list[TrackSpec],
    tempos: list[tuple[int, int]] | None = None,
    ppq: int = 480,
    time_signature: tuple[int, int] | None = (4, 4),
    key: str | None = None,
) -> bytes:
    """Type-1 file: a conductor track (tempo map as (tick, us/quarter)) plus one track per spec."""
    mf = mido.MidiFile(type=1, ticks_per_beat=ppq)
    conductor: list[tuple[int, int, mido.MetaMessage]] = []
    if time_signature:
        conductor.append(
            (0, 0, mido.MetaMessage("time_signature", numerator=time_signature[0], denominator=time_signature[1]))
        )
    if key:
        conductor.append((0, 1, mido.MetaMessage("key_signature", key=key)))
    for tick, us in tempos or [(0, 500_000)]:
        conductor.append((tick, 2, mido.MetaMessage("set_tempo", tempo=us)))
    mf.tracks.append(events_to_track(conductor))
    for spec in tracks:
        ev: list[tuple[int, int, object]] = [
            (0, 0, mido.MetaMessage("track_name", name=spec.name)),
            (0, 1, mido.Message("program_change", channel=spec.channel, program=spec.program)),
        ]
        ev += [
            (t, 2, mido.Message("control_change", channel=spec.channel, control=c, value=v))
            for t, c, v in spec.controls
        ]
        ev += [(t, 3, mido.Message("pitchwheel", channel=spec.channel, pitch=v)) for t, v in spec.bends]
        for pitch, on, off, vel in spec.notes:
            ev.append((on, 5, mido.Message("note_on", channel=spec.channel, note=pitch, velocity=vel)))
            # A zero-length note keeps its note-off after its note-on.
            ev.append(
                (off, 6 if off == on else 4, mido.Message("note_off", channel=spec.channel, note=pitch, velocity=0))
            )
        mf.tracks.append(events_to_track(ev))
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def band(ppq: int = 480, bars: int = 4, tempos: list[tuple[int, int]] | None = None, key: str | None = "G") -> bytes:
    """A small song: piano chords, a bassline and drums on channel 10."""
    bar = 4 * ppq
    piano = TrackSpec("Piano", program=0, channel=0, controls=[(0, 64, 127), (bars * bar - 10, 64, 0)])
    bass = TrackSpec("Bass", program=33, channel=1, bends=[(ppq, 1000), (2 * ppq, 0)])
    drums = TrackSpec("Drums", program=0, channel=9)
    chords = [(55, 59, 62), (60, 64, 67), (62, 66, 69), (55, 59, 62)]
    for b in range(bars):
        for p in chords[b % 4]:
            piano.notes.append((p, b * bar, b * bar + bar - 20, 80))
        root = chords[b % 4][0] - 24
        for q in range(4):
            bass.notes.append((root + (7 if q % 2 else 0), b * bar + q * ppq, b * bar + q * ppq + ppq - 30, 90))
            drums.notes.append((36 if q % 2 == 0 else 38, b * bar + q * ppq, b * bar + q * ppq + ppq // 4, 100))
            drums.notes.append((42, b * bar + q * ppq + ppq // 2, b * bar + q * ppq + ppq // 2 + 60, 70))
    return midi_bytes([piano, bass, drums], tempos=tempos, ppq=ppq, key=key)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path

"""Turn a composed song into MIDI bytes and its ground truth.

The truth (bar and section times, tempo map, key, instruments) is computed here
from the plan with its own tick-to-seconds arithmetic, not read back through
pretty_midi, so tests can check the MIDI reader against it.
"""

from __future__ import annotations

import io
from bisect import bisect_right
from collections.abc import Iterator
from typing import Any

import mido

from pipeline.midi import gm
from pipeline.midi.keys import NOTE_NAMES, key_label, mido_key
from pipeline.midi.write import events_to_track
from pipeline.sample.compose import SongPlan, compose, sample_assignments

PPQ = 480
TRUTH_VERSION = 1


def _tick(beat: float) -> int:
    return round(beat * PPQ)


class TempoGrid:
    """Tick <-> seconds under a piecewise-constant tempo map of whole microseconds."""

    def __init__(self, events: list[tuple[int, int]]):
        self.ticks = [t for t, _ in events]
        self.us = [u for _, u in events]
        self.starts_s = [0.0]
        for i in range(1, len(events)):
            span = self.ticks[i] - self.ticks[i - 1]
            self.starts_s.append(self.starts_s[-1] + span * self.us[i - 1] / 1e6 / PPQ)

    def seconds(self, tick: int) -> float:
        i = bisect_right(self.ticks, tick) - 1
        return self.starts_s[i] + (tick - self.ticks[i]) * self.us[i] / 1e6 / PPQ


def _tempo_us(plan: SongPlan) -> list[tuple[int, int]]:
    merged: dict[int, int] = {}
    for beat, bpm in plan.tempo_events:
        merged[_tick(beat)] = round(6e7 / bpm)
    return sorted(merged.items())


def to_midi(plan: SongPlan) -> bytes:
    mf = mido.MidiFile(type=1, ticks_per_beat=PPQ)
    num, den = plan.meter
    conductor: list[tuple[int, int, Any]] = [
        (0, 0, mido.MetaMessage("track_name", name=plan.title)),
        (
            0,
            1,
            mido.MetaMessage("time_signature", numerator=num, denominator=den, clocks_per_click=36 if den == 8 else 24),
        ),
    ]
    if plan.has_key_signature:
        conductor.append((0, 2, mido.MetaMessage("key_signature", key=mido_key(plan.tonic, plan.scale))))
    conductor += [(tick, 3, mido.MetaMessage("set_tempo", tempo=us)) for tick, us in _tempo_us(plan)]
    mf.tracks.append(events_to_track(conductor))
    channels = iter(c for c in range(16) if c != 9)
    for part in plan.parts:
        ch = 9 if part.is_drum else next(channels)
        ev: list[tuple[int, int, Any]] = [
            (0, 0, mido.MetaMessage("track_name", name=part.track_name)),
            (0, 1, mido.Message("program_change", channel=ch, program=part.program)),
            (0, 2, mido.Message("control_change", channel=ch, control=7, value=100)),
            (0, 2, mido.Message("control_change", channel=ch, control=10, value=part.pan)),
            (0, 2, mido.Message("control_change", channel=ch, control=11, value=127)),
        ]
        ev += [
            (_tick(b), 2, mido.Message("control_change", channel=ch, control=cc, value=v)) for b, cc, v in part.controls
        ]
        ev += [(_tick(b), 3, mido.Message("pitchwheel", channel=ch, pitch=v)) for b, v in part.bends]
        for n in part.notes:
            on, off = _tick(n.start), _tick(n.start + n.duration)
            ev.append((on, 5, mido.Message("note_on", channel=ch, note=n.pitch, velocity=n.velocity)))
            ev.append((off, 4, mido.Message("note_off", channel=ch, note=n.pitch, velocity=0)))
        mf.tracks.append(events_to_track(ev))
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def truth(plan: SongPlan) -> dict[str, Any]:
    tempo = _tempo_us(plan)
    grid = TempoGrid(tempo)
    bar_ticks = _tick(plan.bar_beats)
    end_tick = plan.n_bars * bar_ticks  # the song ends with its last bar
    total_s = grid.seconds(end_tick)
    weighted = (
        sum(
            (grid.seconds(tempo[i + 1][0] if i + 1 < len(tempo) else end_tick) - grid.seconds(t)) * 6e7 / us
            for i, (t, us) in enumerate(tempo)
        )
        / total_s
    )
    return {
        "truth_version": TRUTH_VERSION,
        "title": plan.title,
        "artist": plan.artist,
        "key": {
            "tonic": NOTE_NAMES[plan.tonic],
            "tonic_pc": plan.tonic,
            "scale": plan.scale,
            "label": key_label(plan.tonic, plan.scale),
        },
        "key_signature_in_midi": plan.has_key_signature,
        "time_signature": {"numerator": plan.meter[0], "denominator": plan.meter[1]},
        "tempo_bpm": round(6e7 / tempo[0][1], 6),
        "tempo_bpm_nominal": plan.base_tempo,
        "tempo_bpm_weighted": round(weighted, 6),
        "tempo_change": plan.tempo_change,
        "tempo_map": [
            {"tick": t, "time_s": round(grid.seconds(t), 6), "tempo_bpm": round(6e7 / us, 6)} for t, us in tempo
        ],
        "resolution": PPQ,
        "duration_s": round(total_s, 6),
        "bars": [round(grid.seconds(b * bar_ticks), 6) for b in range(plan.n_bars)],
        "sections": [
            {
                "name": s.name,
                "start_bar": s.start_bar,
                "n_bars": s.n_bars,
                "start_s": round(grid.seconds(s.start_bar * bar_ticks), 6),
                "end_s": round(grid.seconds((s.start_bar + s.n_bars) * bar_ticks), 6),
                "chords": list(s.progression),
            }
            for s in plan.sections
        ],
        "instruments": [
            {
                "track_name": p.track_name,
                "role": p.role,
                "program": p.program,
                "is_drum": p.is_drum,
                "name": gm.instrument_name(p.program, p.is_drum),
                "family": gm.family(p.program, p.is_drum),
                "n_notes": len(p.notes),
            }
            for p in plan.parts
        ],
    }


def generate(seed: int, n_songs: int) -> Iterator[tuple[SongPlan, bytes, dict[str, Any]]]:
    """The sample's songs in order: (plan, MIDI bytes, ground truth)."""
    keys, tempos, titles = sample_assignments(seed, n_songs)
    for i in range(n_songs):
        plan = compose(seed, i, keys, tempos, titles)
        yield plan, to_midi(plan), truth(plan)

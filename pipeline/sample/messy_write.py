"""The messy sample's MIDI bytes and ground truth.

The truth keeps every field of the clean sample's truth (version 1) with the
same meaning, taking the home key, the main meter and the first tempo where
that truth has one value, and adds what the flaws need, in seconds and ticks:
key segments (the keys the notes are in), the key signatures as written and
whether each is right, every time signature, the tempo map's ramps and steps,
the meter of every bar, drum-only spans, near-silent and doubled tracks, the
drum kit and whether the SoundFont has it, and the felt tempo. It is computed
from the plan (bars, notes, tempo events), not read back from the MIDI.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from typing import Any

import mido

from pipeline.midi import gm
from pipeline.midi.keys import NOTE_NAMES, Scale, key_label, mido_key
from pipeline.midi.write import events_to_track
from pipeline.sample.messy import TIMGM6MB_KITS, MessyPlan, compose_messy, messy_titles
from pipeline.sample.write import PPQ, TempoGrid

MESSY_TRUTH_VERSION = 2  # version 1's fields, plus the messy set's


def _tick(beat: float) -> int:
    return round(beat * PPQ)


def tempo_us(plan: MessyPlan) -> list[tuple[int, int]]:
    merged: dict[int, int] = {}
    for beat, bpm in plan.tempo_events:
        merged[_tick(beat)] = round(6e7 / bpm)
    return sorted(merged.items())


def _meter_changes(plan: MessyPlan) -> list[tuple[int, tuple[int, int]]]:
    out: list[tuple[int, tuple[int, int]]] = []
    for bar in plan.bars:
        if not out or out[-1][1] != bar.meter:
            out.append((_tick(bar.start), bar.meter))
    return out


def to_midi(plan: MessyPlan) -> bytes:
    mf = mido.MidiFile(type=1, ticks_per_beat=PPQ)
    conductor: list[tuple[int, int, Any]] = [(0, 0, mido.MetaMessage("track_name", name=plan.title))]
    for tick, (num, den) in _meter_changes(plan):
        msg = mido.MetaMessage(
            "time_signature", numerator=num, denominator=den, clocks_per_click=36 if den == 8 else 24
        )
        conductor.append((tick, 1, msg))
    for beat, pc, scale in plan.key_signatures:
        conductor.append((_tick(beat), 2, mido.MetaMessage("key_signature", key=mido_key(pc, scale))))
    conductor += [(tick, 3, mido.MetaMessage("set_tempo", tempo=us)) for tick, us in tempo_us(plan)]
    mf.tracks.append(events_to_track(conductor))
    end = _tick(plan.end_beat)
    channels = iter(c for c in range(16) if c != 9)
    for i, part in enumerate(plan.parts):
        ch = 9 if part.is_drum else next(channels)
        ev: list[tuple[int, int, Any]] = [
            (0, 0, mido.MetaMessage("track_name", name=part.track_name)),
            (0, 1, mido.Message("program_change", channel=ch, program=part.program)),
            (0, 2, mido.Message("control_change", channel=ch, control=7, value=plan.volumes.get(part.track_name, 100))),
            (0, 2, mido.Message("control_change", channel=ch, control=10, value=part.pan)),
            (0, 2, mido.Message("control_change", channel=ch, control=11, value=127)),
        ]
        if i == 0:  # the file lasts to the end of its last bar, like the clean sample's
            ev.append((end, 2, mido.Message("control_change", channel=ch, control=64, value=0)))
        for n in part.notes:
            on, off = _tick(n.start), _tick(n.start + n.duration)
            ev.append((on, 5, mido.Message("note_on", channel=ch, note=n.pitch, velocity=n.velocity)))
            ev.append((off, 4, mido.Message("note_off", channel=ch, note=n.pitch, velocity=0)))
        mf.tracks.append(events_to_track(ev))
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def _key_dict(pc: int, scale: Scale) -> dict[str, Any]:
    return {"tonic": NOTE_NAMES[pc], "tonic_pc": pc, "scale": scale, "label": key_label(pc, scale)}


def _meter(m: tuple[int, int]) -> str:
    return f"{m[0]}/{m[1]}"


def _runs(flags: list[bool]) -> list[tuple[int, int]]:
    """[first, last] bar index of each run of True."""
    runs: list[tuple[int, int]] = []
    for i, f in enumerate(flags):
        if f and runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        elif f:
            runs.append((i, i))
    return runs


def truth(plan: MessyPlan) -> dict[str, Any]:
    tempo = tempo_us(plan)
    grid = TempoGrid(tempo)
    end_tick = _tick(plan.end_beat)
    total_s = grid.seconds(end_tick)

    def s(tick: int) -> float:
        return round(grid.seconds(tick), 6)

    def span(t0: int, t1: int) -> dict[str, Any]:
        return {"start_tick": t0, "end_tick": t1, "start_s": s(t0), "end_s": s(t1)}

    bar_ticks = [(_tick(b.start), _tick(b.start + b.beats)) for b in plan.bars]
    # Which bars sound pitched notes, and which have drum onsets (from the notes themselves).
    pitched = [False] * len(plan.bars)
    drummed = [False] * len(plan.bars)
    for part in plan.parts:
        for n in part.notes:
            on, off = _tick(n.start), _tick(n.start + n.duration)
            for i, (b0, b1) in enumerate(bar_ticks):
                if part.is_drum and b0 <= on < b1:
                    drummed[i] = True
                elif not part.is_drum and on < b1 and off > b0:
                    pitched[i] = True

    key_segments: list[dict[str, Any]] = []
    for first, last in _runs(pitched):
        for i in range(first, last + 1):
            bar = plan.bars[i]
            seg = key_segments[-1] if key_segments else None
            if (
                seg
                and seg["end_tick"] == bar_ticks[i][0]
                and seg["tonic_pc"] == bar.tonic
                and seg["scale"] == bar.scale
            ):
                seg.update(end_tick=bar_ticks[i][1], end_s=s(bar_ticks[i][1]))
            else:
                key_segments.append({**span(*bar_ticks[i]), **_key_dict(bar.tonic, bar.scale)})

    signatures = []
    for k, (beat, pc, scale) in enumerate(plan.key_signatures):
        t0 = _tick(beat)
        t1 = _tick(plan.key_signatures[k + 1][0]) if k + 1 < len(plan.key_signatures) else end_tick
        in_force = []
        for seg in key_segments:
            if seg["start_tick"] < t1 and seg["end_tick"] > t0 and seg["label"] not in in_force:
                in_force.append(seg["label"])
        label = key_label(pc, scale)
        signatures.append(
            {
                "tick": t0,
                "time_s": s(t0),
                **_key_dict(pc, scale),
                "keys_in_force": in_force,
                "signature_correct": in_force == [label],
            }
        )

    weighted = (
        sum(
            (grid.seconds(tempo[i + 1][0] if i + 1 < len(tempo) else end_tick) - grid.seconds(t)) * 6e7 / us
            for i, (t, us) in enumerate(tempo)
        )
        / total_s
    )
    bpm_at = {t: round(6e7 / us, 6) for t, us in tempo}

    def bpm_before(tick: int) -> float:
        return next(round(6e7 / us, 6) for t, us in reversed(tempo) if t <= tick)

    ramp_ticks = [(_tick(a), _tick(b), f, t) for a, b, f, t in plan.ramps]
    bounds = sorted(
        {
            0,
            end_tick,
            *(_tick(t) for t, *_ in plan.steps),
            *(a for a, *_ in ramp_ticks),
            *(b for _, b, *_ in ramp_ticks),
        }
    )
    tempo_segments = []
    for t0, t1 in itertools.pairwise(bounds):
        ramp = next((r for r in ramp_ticks if r[0] <= t0 and t1 <= r[1]), None)
        if ramp:
            n_events = sum(1 for t in bpm_at if t0 <= t < t1)
            seg = {
                "kind": "ramp",
                **span(t0, t1),
                "start_bpm": round(6e7 / round(6e7 / ramp[2]), 6),
                "end_bpm": bpm_before(t1 - 1),
                "n_events": n_events,
            }
        else:
            seg = {"kind": "constant", **span(t0, t1), "start_bpm": bpm_before(t0), "end_bpm": bpm_before(t0)}
        tempo_segments.append(seg)

    bars = [
        {"index": i, **span(*bar_ticks[i]), "meter": _meter(b.meter), "section": plan.sections[b.section].name}
        for i, b in enumerate(plan.bars)
    ]
    main = _meter(plan.meter)
    pickup = bars[0] if plan.sections[0].name == "pickup" else None
    drum_only = []
    for first, last in _runs([d and not p for d, p in zip(drummed, pitched, strict=True)]):
        where = "intro" if first == 0 or (pickup and first == 1) else ("outro" if last == len(bars) - 1 else "middle")
        drum_only.append({**span(bar_ticks[first][0], bar_ticks[last][1]), "bars": [first, last], "where": where})

    kit = plan.kit_program
    has_drums = any(p.is_drum for p in plan.parts)
    changes = tempo[1:]
    return {
        "truth_version": MESSY_TRUTH_VERSION,
        "set": "messy",
        "title": plan.title,
        "artist": plan.artist,
        # Version 1 fields: the home key, the main meter, the first tempo.
        "key": _key_dict(plan.tonic, plan.scale),
        "key_signature_in_midi": bool(plan.key_signatures),
        "time_signature": {"numerator": plan.meter[0], "denominator": plan.meter[1]},
        "tempo_bpm": round(6e7 / tempo[0][1], 6),
        "tempo_bpm_nominal": plan.base_tempo,
        "tempo_bpm_weighted": round(weighted, 6),
        "tempo_change": "ramp" if plan.ramps else ("step" if plan.steps else None),
        "tempo_map": [{"tick": t, "time_s": s(t), "tempo_bpm": round(6e7 / us, 6)} for t, us in tempo],
        "resolution": PPQ,
        "duration_s": round(total_s, 6),
        "bars": [b["start_s"] for b in bars],
        "sections": [
            {
                "name": sec.name,
                "start_bar": sec.start_bar,
                "n_bars": sec.n_bars,
                **span(bar_ticks[sec.start_bar][0], bar_ticks[sec.start_bar + sec.n_bars - 1][1]),
                "chords": [b.degree for b in plan.bars[sec.start_bar : sec.start_bar + sec.n_bars]],
                "key": key_label(sec.tonic, sec.scale),
                "drums_only": sec.drums_only,
            }
            for sec in plan.sections
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
                "volume_cc7": plan.volumes.get(p.track_name, 100),
                "max_velocity": max((n.velocity for n in p.notes), default=0),
            }
            for p in plan.parts
        ],
        # The messy set's fields.
        "flaws": plan.flaws,
        "key_segments": key_segments,
        "key_signatures": signatures,
        "modulations": [
            {
                "tick": _tick(m.beat),
                "time_s": s(_tick(m.beat)),
                "from": key_label(*m.from_key),
                "to": key_label(*m.to_key),
                "kind": m.kind,
                "signature_event": m.signature_event,
            }
            for m in plan.modulations
        ],
        "time_signatures": [
            {"tick": t, "time_s": s(t), "numerator": m[0], "denominator": m[1], "meter": _meter(m)}
            for t, m in _meter_changes(plan)
        ],
        "meter": main,
        "bar_spans": bars,
        "pickup": None if pickup is None else {**pickup, "beats": plan.bars[0].beats},
        "meter_changes": [b for b in bars if b["meter"] != main and b["section"] != "pickup"],
        "tempo_segments": tempo_segments,
        "tempo_ramps": [seg for seg in tempo_segments if seg["kind"] == "ramp"],
        "tempo_steps": [
            {
                "tick": _tick(t),
                "time_s": s(_tick(t)),
                "from_bpm": bpm_before(_tick(t) - 1),
                "to_bpm": bpm_at[_tick(t)],
                "section": name,
            }
            for t, _, _, name in plan.steps
        ],
        "n_tempo_changes": len(changes),
        "drum_only_spans": drum_only,
        "near_silent_tracks": [
            {
                "track_name": name,
                "how": how,
                "volume_cc7": plan.volumes.get(name, 100),
                "max_velocity": max(n.velocity for p in plan.parts if p.track_name == name for n in p.notes),
            }
            for name, how in plan.near_silent
        ],
        "doubled_tracks": [{"tracks": [a, b], "interval_semitones": k} for a, b, k in plan.doubled],
        "n_instruments": len(plan.parts),
        "drum_kit": None
        if not has_drums
        else {"program": kit, "bank": 128, "soundfont": "TimGM6mb.sf2", "in_soundfont": kit in TIMGM6MB_KITS},
        "felt_tempo": {
            "factor": round(plan.feel, 6),
            "bpm": round(weighted * plan.feel, 6),
            "bpm_start": round(6e7 / tempo[0][1] * plan.feel, 6),
            "reason": "half-time feel"
            if plan.recipe.fast
            else ("dotted-quarter pulse" if plan.meter == (6, 8) else None),
        },
    }


def generate_messy(seed: int, n_songs: int) -> Iterator[tuple[MessyPlan, bytes, dict[str, Any]]]:
    """The messy sample's songs in order: (plan, MIDI bytes, ground truth)."""
    titles = messy_titles(seed, n_songs)
    for i in range(n_songs):
        plan = compose_messy(seed, i, titles)
        yield plan, to_midi(plan), truth(plan)

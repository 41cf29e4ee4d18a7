"""What the notes do: roles, speed, density, contour and register must be true of the MIDI."""

from __future__ import annotations

import dataclasses
import io
import itertools
from collections import Counter

import pretty_midi
import pytest

from pipeline.analysis.notation import (
    CONTOURS,
    DENSITIES,
    EMPTY,
    REGISTERS,
    ROLES,
    SPEEDS,
    Notation,
    describe_notation,
)
from pipeline.sample.write import generate
from tests.midi_factory import TrackSpec, midi_bytes

PPQ = 480
TEMPO_CHANGES = [(0, 500_000), (4 * PPQ, 400_000), (8 * PPQ, 666_667)]  # 120, 150, 90 BPM
MAJOR = (0, 2, 4, 5, 7, 9, 11)


def _pm(tracks: list[TrackSpec], tempos=None, time_signature=(4, 4)) -> pretty_midi.PrettyMIDI:
    data = midi_bytes(tracks, tempos=tempos, ppq=PPQ, time_signature=time_signature)
    return pretty_midi.PrettyMIDI(io.BytesIO(data))


def _line(pitches, beats: float = 0.5, program: int = 0, gate: float = 0.9, drum: bool = False) -> TrackSpec:
    """One note per pitch, each `beats` long (quarter-note beats), held for `gate` of it."""
    step = round(beats * PPQ)
    notes = [(p, i * step, i * step + round(step * gate), 90) for i, p in enumerate(pitches)]
    return TrackSpec("Line", program, 9 if drum else 0, notes=notes)


def _chords(voicings, beats: float, gate: float = 0.95) -> TrackSpec:
    step = round(beats * PPQ)
    notes = [(p, i * step, i * step + round(step * gate), 80) for i, chord in enumerate(voicings) for p in chord]
    return TrackSpec("Keys", 0, 0, notes=notes)


def _describe(track: TrackSpec, tempos=None, start_s=None, end_s=None, time_signature=(4, 4)) -> Notation:
    pm = _pm([track], tempos=tempos, time_signature=time_signature)
    return describe_notation(pm.instruments[0], pm, start_s, end_s)


def _scale(start: int, n: int, direction: int = 1) -> list[int]:
    """n notes of C major from `start` (a C), stepping up (1) or down (-1)."""
    out, degree = [], 0
    for _ in range(n):
        out.append(start + 12 * (degree // 7) + MAJOR[degree % 7])
        degree += direction
    return out


# --- roles on the embedded sample ------------------------------------------------------------------

EXPECTED_ROLES = {
    "chords": {"chord progression", "sustained chords"},
    "bass": {"bassline"},
    "melody": {"melody"},
    "arpeggio": {"arpeggio"},
    "pad": {"sustained chords"},
    "drums": {"drums"},
}


def test_every_part_of_the_sample_gets_its_role():
    results: Counter = Counter()
    wrong = []
    for plan, data, _ in generate(1234, 24):
        pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
        assert len(pm.instruments) == len(plan.parts)
        for part, inst in zip(plan.parts, pm.instruments, strict=True):
            got = describe_notation(inst, pm).role
            results[got in EXPECTED_ROLES[part.role]] += 1
            if got not in EXPECTED_ROLES[part.role]:
                wrong.append((plan.index, plan.meter, part.role, got))
    assert results[True] >= 120  # all six roles across 4/4, 3/4, 6/8 and tempo changes
    assert wrong == [], f"{results[True]}/{sum(results.values())} right; wrong: {wrong}"


def test_every_section_of_the_sample_keeps_its_roles():
    right = total = 0
    for plan, data, truth in generate(1234, 24):
        pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
        for part, inst in zip(plan.parts, pm.instruments, strict=True):
            for section in truth["sections"]:
                n = describe_notation(inst, pm, section["start_s"], section["end_s"])
                if n.role is None:  # the part rests in this section
                    continue
                total += 1
                right += n.role in EXPECTED_ROLES[part.role]
    assert total > 400 and right == total


def test_the_sample_chords_are_a_progression_and_the_pad_is_sustained():
    for plan, data, _ in generate(1234, 6):
        pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
        for part, inst in zip(plan.parts, pm.instruments, strict=True):
            n = describe_notation(inst, pm)
            if part.role == "chords":
                assert n.role == "chord progression" and n.polyphony == 3
            if part.role == "pad":
                assert n.role == "sustained chords" and n.speed == "slow"
            if part.role == "drums":
                assert n.register is None and n.contour is None


# --- crafted parts ---------------------------------------------------------------------------------


def test_block_chords_are_a_progression_and_long_chords_are_sustained():
    triads = [(60, 64, 67), (57, 60, 64), (53, 57, 60), (55, 59, 62)] * 2
    stabs = _describe(_chords(triads, beats=1.0))
    held = _describe(_chords(triads, beats=4.0, gate=0.98))
    assert stabs.role == "chord progression" and stabs.polyphony == 3
    assert held.role == "sustained chords" and held.speed == "slow"
    assert stabs.contour is None and held.contour is None


def test_a_low_line_on_the_downbeats_is_a_bassline():
    roots = [36, 36, 43, 41, 33, 33, 40, 43] * 2  # half notes, every bar's downbeat played
    n = _describe(_line(roots, beats=2.0, program=33))
    assert n.role == "bassline" and n.register == "low" and n.polyphony == 1


def test_a_steady_cycle_of_chord_tones_is_an_arpeggio_and_a_scale_run_is_a_melody():
    chords = [(48, 52, 55), (45, 48, 52), (41, 45, 48), (43, 47, 50)]
    arp = [p + 12 for c in chords for _ in range(2) for p in (c[0], c[1], c[2], c[0] + 12)]
    n = _describe(_line(arp, beats=0.25))
    assert n.role == "arpeggio" and n.speed == "fast"
    run = _scale(60, 32)[:16] + _scale(72, 16, -1)
    assert _describe(_line(run, beats=0.25)).role == "melody"


def test_drums_are_drums_without_register_or_contour():
    hits = [36, 42, 38, 42] * 8
    n = _describe(_line(hits, beats=0.5, drum=True))
    assert n.role == "drums" and n.register is None and n.contour is None and n.speed == "moderate"


@pytest.mark.parametrize(
    "pitches, contour",
    [
        (_scale(60, 15), "rising"),
        (_scale(84, 15, -1), "falling"),
        (_scale(60, 8) + _scale(72, 8, -1)[1:], "arch"),
        (_scale(72, 8, -1) + _scale(60, 8)[1:], "valley"),
        ([67, 67, 66, 67, 67, 68, 67, 67] * 2, "static"),
        ([60, 67, 72, 64, 60, 69, 74, 62, 60, 71, 76, 64, 60, 67, 72, 62], "wavy"),
    ],
)
def test_contour_of_a_melody(pitches, contour):
    rhythm = [1.0, 0.5, 0.5, 1.0, 1.0, 1.5, 0.5]  # uneven, so these lines stay melodies
    step, notes, t = PPQ, [], 0
    for i, p in enumerate(pitches):
        length = round(rhythm[i % len(rhythm)] * step)
        notes.append((p, t, t + length - 20, 90))
        t += length
    n = _describe(TrackSpec("Lead", 73, 0, notes=notes))
    assert n.role == "melody"
    assert n.contour == contour


def test_sixteenths_are_fast_and_whole_notes_slow():
    fast = _describe(_line(_scale(60, 8) * 4, beats=0.25))
    slow = _describe(_line(_scale(60, 8), beats=4.0, gate=0.98))
    eighths = _describe(_line(_scale(60, 8) * 2, beats=0.5))
    assert (fast.speed, slow.speed, eighths.speed) == ("fast", "slow", "moderate")
    assert fast.notes_per_beat == pytest.approx(4.0) and fast.density == "dense"
    assert slow.notes_per_beat == pytest.approx(0.25) and slow.density == "sparse"
    assert eighths.notes_per_beat == pytest.approx(2.0) and eighths.density == "moderate"
    assert fast.notes_per_second == pytest.approx(8.0)  # 120 BPM


def test_tempo_changes_do_not_change_notes_per_beat():
    rhythm = _line(_scale(60, 8) * 3, beats=0.5)  # 12 beats of eighths across 120, 150 and 90 BPM
    steady = _describe(rhythm)
    changing = _describe(rhythm, tempos=TEMPO_CHANGES)
    assert steady.notes_per_beat == changing.notes_per_beat == pytest.approx(2.0)
    assert steady.speed == changing.speed == "moderate"
    assert steady.notes_per_second == pytest.approx(4.0)
    # 24 notes over 4 beats at 120, 4 at 150 and 4 at 90 BPM: 2 + 1.6 + 2.667 s
    assert changing.notes_per_second == pytest.approx(24 / (2 + 1.6 + 4 * 60 / 90), rel=1e-3)
    # the beat is the felt beat: eighths in 6/8 are three to a (dotted-quarter) beat
    compound = _describe(rhythm, time_signature=(6, 8))
    assert compound.notes_per_beat == pytest.approx(3.0) and compound.speed == "fast"


def test_a_span_counts_only_the_notes_that_start_inside_it():
    # quarters at 120 BPM: note i starts at i * 0.5 s; a long low note from 0.5 s rings over the span
    notes = [(60 + i, i * PPQ, i * PPQ + PPQ - 20, 90) for i in range(16)] + [(40, PPQ, 8 * PPQ, 90)]
    track = TrackSpec("Lead", 0, 0, notes=notes)
    whole = _describe(track)
    span = _describe(track, start_s=1.0, end_s=3.0)  # starts 1.0, 1.5, 2.0, 2.5 (3.0 is outside)
    assert whole.pitch_range_semitones == 75 - 40
    assert span.pitch_range_semitones == 3 and span.polyphony == 1
    assert span.role == "melody" and span.contour == "rising"
    assert span.notes_per_beat == pytest.approx(1.0)
    assert _describe(track, start_s=7.5).pitch_range_semitones == 0  # one note, at 7.5 s
    assert _describe(track, end_s=0.5).notes_per_beat > 0  # only the first note


def test_span_bounds_tolerate_rounded_times():
    # a note stored a hair before a boundary (float rounding) belongs to the span that starts there
    pm = _pm([_line(_scale(60, 8), beats=1.0)])
    inst = pm.instruments[0]
    boundary = inst.notes[4].start + 1e-8
    before = describe_notation(inst, pm, 0.0, boundary)
    after = describe_notation(inst, pm, boundary, None)
    assert before.pitch_range_semitones == 5 and after.pitch_range_semitones == 5  # C-D-E-F | G-A-B-C


def test_an_empty_span_has_no_role():
    track = _line(_scale(60, 8), beats=1.0)
    empty = _describe(track, start_s=100.0, end_s=110.0)
    assert empty == EMPTY and empty.role is None and empty.notes_per_beat == 0 and empty.polyphony == 0
    assert _describe(track, start_s=2.0, end_s=2.0) == EMPTY


@pytest.mark.parametrize("median, register", [(47, "low"), (48, "mid"), (60, "mid"), (72, "mid"), (73, "high")])
def test_register_cut_offs(median, register):
    n = _describe(_line([median - 2, median, median + 2, median, median], beats=1.0))
    assert n.register == register


def test_labels_come_from_the_vocabularies_and_values_are_plain():
    for _plan, data, _ in generate(1234, 3):
        pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
        for inst in pm.instruments:
            n = describe_notation(inst, pm)
            assert n.role in ROLES and n.speed in SPEEDS and n.density in DENSITIES
            assert n.contour in (*CONTOURS, None) and n.register in (*REGISTERS, None)
            values = dataclasses.asdict(n)
            assert all(type(values[k]) is float for k in ("notes_per_second", "notes_per_beat"))
            assert all(type(values[k]) is int for k in ("pitch_range_semitones", "polyphony"))
            # describing every bar of a song one span at a time never fails
            times = [*pm.get_downbeats(), pm.get_end_time()]
            for a, b in itertools.pairwise(times):
                part = describe_notation(inst, pm, a, b)
                assert part.role in (*ROLES, None)

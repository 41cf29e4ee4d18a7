"""The embedded sample: its ground truth agrees with its MIDI as pretty_midi reads it."""

from __future__ import annotations

import io
import itertools
from collections import Counter

import mido
import numpy as np
import pretty_midi
import pytest

from pipeline.midi import gm
from pipeline.midi.keyfind import estimate_key
from pipeline.midi.keys import from_key_number
from pipeline.sample.theory import SCALE_STEPS, degree_pc
from pipeline.sample.write import generate


@pytest.fixture(scope="module")
def sample():
    return [(plan, data, truth, pretty_midi.PrettyMIDI(io.BytesIO(data))) for plan, data, truth in generate(1234, 24)]


def test_covers_keys_tempos_meters_and_lengths(sample):
    truths = [t for _, _, t, _ in sample]
    assert {t["key"]["label"] for t in truths} == {
        f"{n} {s}"
        for n in ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
        for s in ("major", "minor")
    }
    tempos = [tm["tempo_bpm"] for t in truths for tm in t["tempo_map"]]
    # MIDI stores whole microseconds per quarter: 70 BPM is 857143 us = 69.99999 BPM.
    assert min(tempos) == pytest.approx(70, abs=0.01)
    assert max(tempos) == pytest.approx(170, abs=0.01)
    assert all(70 <= t["tempo_bpm_nominal"] <= 170 for t in truths)
    assert max(tempos) - min(tempos) > 80
    assert sum(len(t["tempo_map"]) > 1 for t in truths) >= 4
    meters = Counter((t["time_signature"]["numerator"], t["time_signature"]["denominator"]) for t in truths)
    assert set(meters) == {(4, 4), (3, 4), (6, 8)}
    assert all(30 <= t["duration_s"] <= 120 for t in truths)


def test_families_include_every_role_and_drums_on_channel_10(sample):
    families = {i["family"] for _, _, t, _ in sample for i in t["instruments"]}
    assert {"Piano", "Bass", "Guitar", "Ensemble", "Synth Pad", "Synth Lead", "Brass", "Drums"} <= families
    for _, data, truth, pm in sample:
        mf = mido.MidiFile(file=io.BytesIO(data))
        drum_tracks = [t for t in mf.tracks if any(m.type == "track_name" and m.name == "Drums" for m in t)]
        has_drums = any(i["is_drum"] for i in truth["instruments"])
        assert len(drum_tracks) == int(has_drums)
        for track in drum_tracks:
            assert {m.channel for m in track if m.type == "note_on"} == {9}
        got = [(int(i.program), i.is_drum, gm.instrument_name(i.program, i.is_drum)) for i in pm.instruments]
        assert got == [(i["program"], i["is_drum"], i["name"]) for i in truth["instruments"]]


def test_tempo_map_bars_and_duration_match_pretty_midi(sample):
    for _, _, truth, pm in sample:
        times, bpms = pm.get_tempo_changes()
        assert np.allclose(times, [t["time_s"] for t in truth["tempo_map"]], atol=1e-6)
        assert np.allclose(bpms, [t["tempo_bpm"] for t in truth["tempo_map"]], atol=1e-4)
        downbeats = pm.get_downbeats()  # pretty_midi adds one at the very end
        assert np.allclose(downbeats[: len(truth["bars"])], truth["bars"], atol=1e-3)
        assert all(d >= truth["duration_s"] - 1e-3 for d in downbeats[len(truth["bars"]) :])
        assert pm.get_end_time() == pytest.approx(truth["duration_s"], abs=1e-3)
        ts = pm.time_signature_changes
        assert [(t.numerator, t.denominator) for t in ts] == [tuple(truth["time_signature"].values())]


def test_key_signature_and_notes_agree_with_the_key(sample):
    estimated = 0
    for _, _, truth, pm in sample:
        key = truth["key"]
        if truth["key_signature_in_midi"]:
            assert [from_key_number(k.key_number) for k in pm.key_signature_changes] == [
                (key["tonic_pc"], key["scale"])
            ]
        else:
            assert pm.key_signature_changes == []
        scale = {(key["tonic_pc"] + s) % 12 for s in SCALE_STEPS[key["scale"]]}
        pitched = [n.pitch % 12 for i in pm.instruments if not i.is_drum for n in i.notes]
        assert set(pitched) <= scale, truth["title"]
        estimated += estimate_key(pm).label == key["label"]
    assert estimated == len(sample)


def test_sections_tile_the_song_and_repeat(sample):
    repeats_checked = 0
    for _, _, truth, pm in sample:
        sections = truth["sections"]
        assert sections[0]["start_bar"] == 0
        for a, b in itertools.pairwise(sections):
            assert a["start_bar"] + a["n_bars"] == b["start_bar"]
        assert sections[-1]["end_s"] == pytest.approx(truth["duration_s"], abs=1e-6)
        # The bass plays each bar's chord root on the downbeat.
        bass = next(i for i in pm.instruments if i.name == "Bass")
        for s in sections[1:]:
            for k, degree in enumerate(s["chords"]):
                t0 = truth["bars"][s["start_bar"] + k]
                first = [n for n in bass.notes if abs(n.start - t0) < 1e-3]
                assert first and first[0].pitch % 12 == degree_pc(
                    truth["key"]["tonic_pc"], truth["key"]["scale"], degree
                )
        # A repeated section replays its melody.
        lead = next(i for i in pm.instruments if i.name == "Lead")
        by_name: dict[str, list[list[int]]] = {}
        for s in sections:
            notes = [n.pitch for n in lead.notes if s["start_s"] - 1e-6 <= n.start < s["end_s"] - 1e-6]
            by_name.setdefault(s["name"], []).append(notes)
        for name, occurrences in by_name.items():
            if len(occurrences) > 1 and name in ("verse", "chorus"):
                assert all(o == occurrences[0] for o in occurrences), (truth["title"], name)
                repeats_checked += 1
    assert repeats_checked >= 4


def test_deterministic_from_the_seed():
    a = [data for _, data, _ in generate(7, 3)]
    b = [data for _, data, _ in generate(7, 3)]
    c = [data for _, data, _ in generate(8, 3)]
    assert a == b
    assert a != c

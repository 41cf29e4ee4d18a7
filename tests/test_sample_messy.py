"""The messy sample: every flaw it promises is in its MIDI, where its ground truth says."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from collections import Counter

import mido
import numpy as np
import pretty_midi
import pytest

from pipeline.ingest.sources import sample_candidates
from pipeline.io.manifest import read_manifest
from pipeline.midi.keys import from_key_number, key_label
from pipeline.records import Failure, RenderSong, Song, SplitSong
from pipeline.sample.messy import FLAWS, TIMGM6MB_KITS
from pipeline.sample.messy_write import generate_messy
from pipeline.sample.theory import SCALE_STEPS
from pipeline.sample.truth import truth_drums_only, truth_key, truth_meters, truth_silent_tracks, truth_tempo
from pipeline.sample.write import generate

SEED = 1234


@pytest.fixture(scope="module")
def messy():
    return [
        (plan, data, truth, pretty_midi.PrettyMIDI(io.BytesIO(data))) for plan, data, truth in generate_messy(SEED, 24)
    ]


def _song(messy, index):
    return messy[index][2], messy[index][3]


def _section(truth, name, nth=0):
    return [s for s in truth["sections"] if s["name"] == name][nth]


# ---- the set itself -------------------------------------------------------------------------------


def test_deterministic_from_the_seed():
    a = [data for _, data, _ in generate_messy(7, 4)]
    b = [data for _, data, _ in generate_messy(7, 4)]
    c = [data for _, data, _ in generate_messy(8, 4)]
    assert a == b
    assert a != c
    ta = [json.dumps(t, sort_keys=True) for _, _, t in generate_messy(7, 4)]
    tb = [json.dumps(t, sort_keys=True) for _, _, t in generate_messy(7, 4)]
    assert ta == tb


def test_the_clean_sample_is_unchanged():
    # Hashes of the clean set's first songs, computed from the code before the messy set existed.
    data, truths = hashlib.sha256(), hashlib.sha256()
    for _, midi, truth in generate(SEED, 4):
        data.update(midi)
        truths.update(json.dumps(truth, sort_keys=True).encode())
    assert data.hexdigest() == "f5d78dab6948a31370a579abf86a5f45645a6a74426b50aa1d57f73fb68237b8"
    assert truths.hexdigest() == "7ff01e1b64bcb5f51137f436df30a048a790719b23e360fbb8757926fcb28313"
    candidates = hashlib.sha256()
    for c in sample_candidates(SEED, 4):  # the default set is the clean one
        candidates.update(c.origin.encode())
        candidates.update(c.data or b"")
        candidates.update(json.dumps(c.truth, sort_keys=True).encode())
    assert candidates.hexdigest() == "c53ce4f6235a70c27a20106d919e91df24fffd278a4ccc018324227bf5522a19"
    assert [c.origin for c in sample_candidates(SEED, 2, "messy")] == ["sample-messy/000", "sample-messy/001"]


def test_every_flaw_is_in_at_least_two_songs(messy):
    counts = Counter(f for _, _, t, _ in messy for f in t["flaws"])
    assert {f: counts[f] for f in FLAWS if counts[f] < 2} == {}
    assert all(len(t["flaws"]) >= 3 for _, _, t, _ in messy)
    assert len({t["title"] for _, _, t, _ in messy}) == 24


def test_valid_general_midi_of_30_to_90_seconds(messy):
    for _, data, truth, pm in messy:
        assert 30 <= truth["duration_s"] <= 90, truth["title"]
        assert pm.get_end_time() == pytest.approx(truth["duration_s"], abs=1e-3)
        mf = mido.MidiFile(file=io.BytesIO(data))
        assert mf.type == 1 and len(mf.tracks) == len(truth["instruments"]) + 1
        channels = []
        for track in mf.tracks[1:]:
            (ch,) = {m.channel for m in track if m.type in ("note_on", "program_change")}
            channels.append(ch)
        assert len(set(channels)) == len(channels) <= 16
        got = [(i.name, int(i.program), i.is_drum) for i in pm.instruments]
        assert got == [(i["track_name"], i["program"], i["is_drum"]) for i in truth["instruments"]]
        assert [i.is_drum for i in pm.instruments].count(True) == 1
        assert all(0 <= n.pitch <= 127 for i in pm.instruments for n in i.notes)


# ---- tempo ---------------------------------------------------------------------------------------


def test_tempo_map_ramps_and_steps_are_where_the_truth_says(messy):
    for _, _, truth, pm in messy:
        times, bpms = pm.get_tempo_changes()
        assert np.allclose(times, [t["time_s"] for t in truth["tempo_map"]], atol=1e-6)
        assert np.allclose(bpms, [t["tempo_bpm"] for t in truth["tempo_map"]], atol=1e-4)
        segs = truth["tempo_segments"]
        assert segs[0]["start_tick"] == 0 and segs[-1]["end_s"] == pytest.approx(truth["duration_s"])
        assert all(a["end_tick"] == b["start_tick"] for a, b in itertools.pairwise(segs))
        for ramp in truth["tempo_ramps"]:
            inside = [t["tempo_bpm"] for t in truth["tempo_map"] if ramp["start_tick"] <= t["tick"] < ramp["end_tick"]]
            assert len(inside) == ramp["n_events"] >= 12
            steps = np.abs(np.diff([ramp["start_bpm"], *inside]))
            assert steps.max() < 3.0  # many small changes ...
            assert abs(inside[-1] / ramp["start_bpm"] - 1) > 0.15  # ... that add up
            assert inside[-1] == pytest.approx(ramp["end_bpm"], abs=1e-4)
        for seg in segs:
            if seg["kind"] == "constant":
                tmap = truth["tempo_map"]
                inside = [t["tempo_bpm"] for t in tmap if seg["start_tick"] <= t["tick"] < seg["end_tick"]]
                assert all(b == seg["start_bpm"] for b in inside)
        for step in truth["tempo_steps"]:
            i = int(np.argmin(np.abs(times - step["time_s"])))
            assert times[i] == pytest.approx(step["time_s"], abs=1e-6)
            assert bpms[i] == pytest.approx(step["to_bpm"], abs=1e-4)
            assert bpms[i - 1] == pytest.approx(step["from_bpm"], abs=1e-4)
            assert abs(step["to_bpm"] / step["from_bpm"] - 1) > 0.08
            # Inside a section, not at its start.
            sec = next(s for s in truth["sections"] if s["start_s"] <= step["time_s"] < s["end_s"])
            assert sec["name"] == step["section"] and sec["start_s"] < step["time_s"] - 1
        if "tempo_ramp" in truth["flaws"]:
            assert truth["tempo_ramps"] and truth["tempo_change"] == "ramp"
        if "tempo_step" in truth["flaws"]:
            assert len(truth["tempo_steps"]) == 2


def test_felt_tempo_of_fast_and_six_eight_songs(messy):
    fast = [t for _, _, t, _ in messy if "fast_notated" in t["flaws"]]
    assert any(t["tempo_bpm"] == pytest.approx(200, abs=0.01) for t in fast)
    for t in fast:
        assert t["felt_tempo"]["factor"] == 0.5 and 160 <= t["tempo_bpm"] <= 220
        assert t["felt_tempo"]["bpm_start"] == pytest.approx(t["tempo_bpm"] / 2)
    for _, _, t, pm in messy:
        if "six_eight" in t["flaws"]:
            assert t["felt_tempo"]["factor"] == pytest.approx(2 / 3, abs=1e-6)
            assert [(s.numerator, s.denominator) for s in pm.time_signature_changes] == [(6, 8)]
        elif "fast_notated" not in t["flaws"]:
            assert t["felt_tempo"]["factor"] == 1.0
        assert t["felt_tempo"]["bpm"] == pytest.approx(t["tempo_bpm_weighted"] * t["felt_tempo"]["factor"], abs=1e-4)


def test_fast_songs_play_half_time(messy):
    for _, _, truth, pm in messy:
        if "fast_notated" not in truth["flaws"]:
            continue
        drums = next(i for i in pm.instruments if i.is_drum)
        beat = 60 / truth["tempo_bpm"]
        until = truth["tempo_steps"][0]["time_s"] if truth["tempo_steps"] else truth["duration_s"]
        snares = [n.start for n in drums.notes if n.pitch == 38 and n.start < until]
        hats = [n.start for n in drums.notes if n.pitch == 42 and n.start < until]
        # Half time: the backbeat lands on every notated beat 3 (felt 2 and 4 at half the tempo),
        # the hats count the notated quarters (felt eighths).
        assert np.median(np.diff(sorted(snares))) == pytest.approx(4 * beat, rel=0.02)
        assert np.median(np.diff(sorted(hats))) == pytest.approx(beat, rel=0.02)


# ---- meter ---------------------------------------------------------------------------------------


def test_time_signatures_pickups_and_odd_bars(messy):
    for _, _, truth, pm in messy:
        got = [(round(ts.time, 6), ts.numerator, ts.denominator) for ts in pm.time_signature_changes]
        assert got == [(t["time_s"], t["numerator"], t["denominator"]) for t in truth["time_signatures"]]
        downbeats = pm.get_downbeats()
        assert np.allclose(downbeats[: len(truth["bars"])], truth["bars"], atol=1e-3)
        bars = truth["bar_spans"]
        assert bars[0]["start_s"] == 0 and bars[-1]["end_s"] == pytest.approx(truth["duration_s"])
        assert all(a["end_tick"] == b["start_tick"] for a, b in itertools.pairwise(bars))
        for b in bars:  # each bar is as long as its meter says
            num, den = map(int, b["meter"].split("/"))
            assert b["end_tick"] - b["start_tick"] == num * 4 * truth["resolution"] // den
        if "pickup_bar" in truth["flaws"]:
            p = truth["pickup"]
            assert p["index"] == 0 and p["meter"] in ("1/4", "2/4") and p["beats"] < 3
            assert truth["time_signatures"][0]["meter"] == p["meter"]
            assert truth["time_signatures"][1]["tick"] == p["end_tick"]
            assert truth["time_signatures"][1]["meter"] == truth["meter"]
            lead = next(i for i in pm.instruments if i.name == "Lead")
            assert any(n.start < p["end_s"] for n in lead.notes)  # an anacrusis
        else:
            assert truth["pickup"] is None
        if "meter_change" in truth["flaws"]:
            (odd,) = truth["meter_changes"]
            assert odd["section"] == "verse" and odd["meter"] != truth["meter"]
            before, after = bars[odd["index"] - 1], bars[odd["index"] + 1]
            assert before["section"] == after["section"] == "verse"  # inside a phrase
            assert before["meter"] == after["meter"] == truth["meter"]
        else:
            assert truth["meter_changes"] == []


# ---- keys ----------------------------------------------------------------------------------------


def _pcs(tonic_pc: int, scale: str) -> set[int]:
    return {(tonic_pc + s) % 12 for s in SCALE_STEPS[scale]}


def test_notes_follow_the_key_segments(messy):
    for _, _, truth, pm in messy:
        segs = truth["key_segments"]
        assert all(a["end_s"] <= b["start_s"] for a, b in itertools.pairwise(segs))
        for inst in pm.instruments:
            if inst.is_drum:
                continue
            for n in inst.notes:
                seg = next(s for s in segs if s["start_s"] - 1e-6 <= n.start < s["end_s"] - 1e-6)
                assert n.pitch % 12 in _pcs(seg["tonic_pc"], seg["scale"]), (truth["title"], inst.name, n)
                assert n.end <= seg["end_s"] + 1e-6
        for m in truth["modulations"]:
            seg = next(s for s in segs if s["start_s"] == pytest.approx(m["time_s"]))
            assert seg["label"] == m["to"]
            # A modulation changes the notes' pitch set (no relative-key moves, which keep it).
            a, b = (k.split() for k in (m["from"], m["to"]))
            assert a[1] == b[1] and a[0] != b[0]


def test_key_signatures_are_where_the_truth_says_and_flagged(messy):
    for _, _, truth, pm in messy:
        got = [(round(k.time, 6), key_label(*from_key_number(k.key_number))) for k in pm.key_signature_changes]
        assert got == [(k["time_s"], k["label"]) for k in truth["key_signatures"]]
        flaws = set(truth["flaws"])
        sigs = truth["key_signatures"]
        if "no_key_signature" in flaws:
            assert sigs == [] and not truth["key_signature_in_midi"]
        if "wrong_key_signature" in flaws:
            assert not sigs[0]["signature_correct"] and truth["key"]["label"] not in sigs[0]["label"]
            if sigs[0]["label"] == "C major":
                assert truth["key"]["scale"] == "minor"
        mods = truth["modulations"]
        if "modulation_with_signature" in flaws:
            for m in mods:
                assert any(s["tick"] == m["tick"] and s["label"] == m["to"] for s in sigs)
                assert next(s for s in sigs if s["tick"] == m["tick"])["signature_correct"]
        if "modulation_without_signature" in flaws:
            assert sigs and mods and all(not m["signature_event"] for m in mods)
            assert all(s["tick"] != m["tick"] for s in sigs for m in mods)
            assert not sigs[-1]["signature_correct"] and len(sigs[-1]["keys_in_force"]) >= 2
        if not flaws & {"no_key_signature", "wrong_key_signature", "modulation_without_signature"}:
            assert sigs and all(s["signature_correct"] for s in sigs)
        for s in sigs:  # signature_correct means the notes under it are in its key, throughout
            assert s["signature_correct"] == (s["keys_in_force"] == [s["label"]])


# ---- tracks --------------------------------------------------------------------------------------


def test_drum_only_spans_have_only_drums(messy):
    for _, _, truth, pm in messy:
        spans = truth["drum_only_spans"]
        flaws = set(truth["flaws"])
        assert ("drum_only_intro" in flaws) == any(s["where"] == "intro" for s in spans)
        assert ("drum_only_outro" in flaws) == any(s["where"] == "outro" for s in spans)
        drums = next(i for i in pm.instruments if i.is_drum)
        for s in spans:
            assert s["end_s"] - s["start_s"] > 3
            assert not [n for i in pm.instruments if not i.is_drum for n in i.notes
                        if n.start < s["end_s"] - 1e-6 and n.end > s["start_s"] + 1e-6]  # fmt: skip
            hits = [n for n in drums.notes if s["start_s"] <= n.start < s["end_s"]]
            assert len(hits) >= 6 * (s["bars"][1] - s["bars"][0] + 1)  # a groove, not a lone crash


def test_near_silent_doubled_and_many_instruments(messy):
    for _, data, truth, pm in messy:
        by_name = {i.name: i for i in pm.instruments}
        mf = mido.MidiFile(file=io.BytesIO(data))
        cc7 = {}
        for track in mf.tracks[1:]:
            name = next(m.name for m in track if m.type == "track_name")
            cc7[name] = [m.value for m in track if m.type == "control_change" and m.control == 7]
        silent = truth_silent_tracks(truth)
        assert ("near_silent_track" in truth["flaws"]) == bool(silent)
        for s in truth["near_silent_tracks"]:
            notes = by_name[s["track_name"]].notes
            assert len(notes) > 20
            if s["how"] == "velocity":
                assert max(n.velocity for n in notes) <= 8 and cc7[s["track_name"]] == [100]
            else:
                assert cc7[s["track_name"]] == [5] and min(n.velocity for n in notes) > 20
        for name, inst in by_name.items():
            if name not in silent:
                assert cc7[name] == [100] and min(n.velocity for n in inst.notes) > 20
        for d in truth["doubled_tracks"]:
            a, b = (by_name[n] for n in d["tracks"])
            k = d["interval_semitones"]
            assert [(n.pitch + k, n.start, n.end) for n in a.notes] == [(n.pitch, n.start, n.end) for n in b.notes]
            assert a.program != b.program and len(a.notes) > 20
        assert ("doubled_parts" in truth["flaws"]) == bool(truth["doubled_tracks"])
        assert ("many_instruments" in truth["flaws"]) == (len(pm.instruments) >= 12)
    assert max(len(pm.instruments) for *_, pm in messy) >= 15


def test_drum_kits_and_what_the_soundfont_has(messy):
    fluid = pytest.importorskip("pipeline.render.fluid")
    kits = {preset for bank, preset in fluid.preset_names(str(fluid.DEFAULT_SF2)) if bank == 128}
    assert kits == TIMGM6MB_KITS
    for _, _, truth, pm in messy:
        drums = next(i for i in pm.instruments if i.is_drum)
        kit = truth["drum_kit"]
        assert kit["program"] == drums.program and kit["bank"] == 128
        assert kit["in_soundfont"] == (drums.program in kits)
        assert ("missing_drum_kit" in truth["flaws"]) == (not kit["in_soundfont"])


# ---- span queries --------------------------------------------------------------------------------


def test_span_queries_on_hand_picked_spans(messy):
    # Song 0: Bb major, a drum-only intro, a ramp over the last chorus, which is in C major
    # (up a whole step, no key-signature event).
    t, _ = _song(messy, 0)
    assert t["flaws"] == ["modulation_without_signature", "tempo_ramp", "drum_only_intro", "doubled_parts"]
    intro, verse, last = _section(t, "intro"), _section(t, "verse"), _section(t, "chorus", 1)
    assert truth_drums_only(t, intro["start_s"], intro["end_s"])
    assert truth_key(t, intro["start_s"] + 0.5, intro["end_s"] - 0.5) is None  # drums only
    assert not truth_drums_only(t, intro["start_s"], intro["end_s"] + 0.5)
    assert truth_key(t, intro["start_s"], verse["end_s"]) == "Bb major"  # the drum bars do not count
    assert truth_key(t, verse["start_s"], verse["end_s"]) == "Bb major"
    assert truth_key(t, last["start_s"], last["end_s"]) == "C major"
    m = last["start_s"]
    assert truth_key(t, m - 4, m + 4) is None  # mixed
    assert truth_key(t, m - 0.2, m + 6) == "C major"  # over 90% in C major
    lo, hi, mean = truth_tempo(t, last["start_s"], last["end_s"])
    assert lo < mean < hi and abs(lo / hi - 1) > 0.15
    assert truth_tempo(t, verse["start_s"], verse["end_s"]) == (t["tempo_bpm"],) * 3
    assert truth_meters(t, 0, t["duration_s"]) == ["4/4"]
    assert truth_silent_tracks(t) == []

    # Song 1: a 1/4 pickup, a 2/4 bar inside the first verse, an inaudible "Pad 2", a drum-only outro.
    t, _ = _song(messy, 1)
    pickup, odd = t["pickup"], t["meter_changes"][0]
    assert truth_meters(t, pickup["start_s"], pickup["end_s"]) == ["1/4"]
    assert truth_meters(t, 0, t["bar_spans"][2]["end_s"]) == ["1/4", "4/4"]
    verse = _section(t, "verse")
    assert truth_meters(t, verse["start_s"], verse["end_s"]) == ["4/4", "2/4"]
    assert truth_meters(t, odd["start_s"], odd["end_s"]) == ["2/4"]
    assert truth_meters(t, odd["start_s"] + 0.01, odd["end_s"] + 0.01) == ["2/4", "4/4"]
    assert truth_silent_tracks(t) == ["Pad 2"]
    outro = _section(t, "outro")
    assert truth_drums_only(t, outro["start_s"] + 1, outro["end_s"])
    assert truth_key(t, 0, outro["start_s"]) == "F minor"  # under a C major key signature
    assert t["key_signatures"][0]["label"] == "C major" and not t["key_signatures"][0]["signature_correct"]
    assert truth_tempo(t, 0, t["duration_s"]) == (t["tempo_bpm"],) * 3

    # Song 3: notated 200 BPM, felt 100; a bridge in the dominant (E minor) with signature events.
    t, _ = _song(messy, 3)
    bridge = _section(t, "bridge")
    assert truth_key(t, bridge["start_s"], bridge["end_s"]) == "E minor"
    assert [s["label"] for s in t["key_signatures"]] == ["A minor", "E minor", "A minor"]
    assert truth_tempo(t, 0, 10)[2] * t["felt_tempo"]["factor"] == pytest.approx(100, abs=0.01)

    # Song 2: 6/8 with a tempo step halfway through the verse.
    t, _ = _song(messy, 2)
    step = t["tempo_steps"][0]
    lo, hi, mean = truth_tempo(t, step["time_s"] - 2, step["time_s"] + 2)
    assert (lo, hi) == tuple(sorted((step["from_bpm"], step["to_bpm"])))
    assert mean == pytest.approx((step["from_bpm"] + step["to_bpm"]) / 2, rel=1e-6)
    assert truth_meters(t, 0, t["duration_s"]) == ["6/8"]
    assert truth_drums_only(t, 0, 1) is False

    with pytest.raises(ValueError, match="empty span"):
        truth_key(t, 5, 5)


def test_span_queries_read_the_clean_truth_too():
    _, _, t = next(generate(SEED, 1))
    end = t["duration_s"]
    assert truth_key(t, 0, end) == t["key"]["label"]
    ts = t["time_signature"]
    assert truth_meters(t, 0, end) == [f"{ts['numerator']}/{ts['denominator']}"]
    assert truth_drums_only(t, 0, end) is False
    assert truth_silent_tracks(t) == []
    lo, hi, mean = truth_tempo(t, 0, end)
    assert lo == min(m["tempo_bpm"] for m in t["tempo_map"]) and hi == max(m["tempo_bpm"] for m in t["tempo_map"])
    assert mean == pytest.approx(t["tempo_bpm_weighted"], abs=1e-4)


# ---- through the pipeline ------------------------------------------------------------------------


def test_messy_songs_ingest_split_and_render(project):
    project.params(ingest={"sample": {"songs": 3, "set": "messy"}})
    for stage in ("ingest", "split", "render"):
        assert project.run(stage) == 0
    songs = list(read_manifest(project.out("ingest").manifest, Song))
    assert len(songs) == 3
    for s in songs:
        truth = json.loads((project.root / s.truth).read_text())
        assert truth["set"] == "messy" and truth["song_id"] == s.id and s.origin.startswith("sample-messy/")
    split = {t.id: t for s in read_manifest(project.out("split").manifest, SplitSong) for t in s.tracks}
    assert len(split) == sum(len(json.loads((project.root / s.truth).read_text())["instruments"]) for s in songs)
    rendered = {t.id: t for s in read_manifest(project.out("render").manifest, RenderSong) for t in s.tracks}
    assert not list(read_manifest(project.out("render").failures, Failure))
    # Song 2's drum track asks for kit 56, which TimGM6mb lacks: it plays the Standard kit, and says so.
    assert set(split) == set(rendered)
    fell_back = {i: t.fallback for i, t in rendered.items() if t.fallback}
    assert [split[i].track_name for i in fell_back] == ["Drums"]
    assert all("has no preset 56 in bank 128: the Standard kit" in r for r in fell_back.values())


def test_span_queries_on_a_hand_written_truth():
    t = {
        "duration_s": 24.0,
        "key_segments": [
            {"start_s": 0.0, "end_s": 10.0, "label": "C major"},
            {"start_s": 10.0, "end_s": 20.0, "label": "G major"},
        ],
        "drum_only_spans": [{"start_s": 20.0, "end_s": 24.0}],
        "tempo_map": [{"time_s": 0.0, "tempo_bpm": 120.0}, {"time_s": 10.0, "tempo_bpm": 90.0}],
        "bar_spans": [
            {"start_s": 0.0, "end_s": 0.5, "meter": "1/4"},
            {"start_s": 0.5, "end_s": 10.0, "meter": "4/4"},
            {"start_s": 10.0, "end_s": 11.0, "meter": "2/4"},
            {"start_s": 11.0, "end_s": 24.0, "meter": "4/4"},
        ],
        "near_silent_tracks": [{"track_name": "Pad 2"}],
    }
    assert truth_key(t, 0, 10) == "C major"
    assert truth_key(t, 0.5, 10.5) == "C major"  # 95% C major
    assert truth_key(t, 8, 12) is None  # half and half
    assert truth_key(t, 12, 24) == "G major"  # the drum-only bars hold no key
    assert truth_key(t, 20.5, 23) is None
    assert truth_tempo(t, 0, 10) == (120.0, 120.0, 120.0)
    assert truth_tempo(t, 5, 15) == (90.0, 120.0, 105.0)
    assert truth_tempo(t, 8, 18) == (90.0, 120.0, 96.0)
    assert truth_meters(t, 0, 2) == ["1/4", "4/4"]
    assert truth_meters(t, 9, 12) == ["4/4", "2/4"]
    assert truth_meters(t, 10, 11) == ["2/4"]
    assert truth_drums_only(t, 20, 24) and truth_drums_only(t, 21, 22)
    assert not truth_drums_only(t, 19, 24)
    assert truth_silent_tracks(t) == ["Pad 2"]

"""Clip planning pieces: the bar grid, MIDI sections, the cutting plan, splits and MIDI spans."""

from __future__ import annotations

import io
from itertools import islice, pairwise

import numpy as np
import pretty_midi
import pytest

from pipeline.clips.grid import bar_grid
from pipeline.clips.plan import plan_clips
from pipeline.clips.sections import bar_features, midi_sections, spotify_sections
from pipeline.clips.splits import assign_splits
from pipeline.midi.write import instruments_to_midi
from pipeline.sample.write import generate
from tests.midi_factory import TrackSpec, midi_bytes


def _pm(data: bytes) -> pretty_midi.PrettyMIDI:
    return pretty_midi.PrettyMIDI(io.BytesIO(data))


@pytest.fixture(scope="module")
def sample_songs():
    return [(_pm(data), truth) for _, data, truth in islice(generate(1234, 24), 24)]


def test_bar_grid_matches_the_sample_truth_across_meters_and_tempo_changes(sample_songs):
    meters, changes = set(), 0
    for pm, truth in sample_songs:
        grid = bar_grid(pm, pm.get_end_time())
        assert grid.n_bars == len(truth["bars"])
        np.testing.assert_allclose(grid.times[:-1], truth["bars"], atol=1e-6)
        meters.add(grid.meters[0])
        changes += truth["tempo_change"] != "none"
    assert meters == {"4/4", "3/4", "6/8"} and changes > 0


def test_a_meter_change_starts_a_new_bar():
    # 2 bars of 4/4, then 3/4 from tick 3840: bar lines every 1920 ticks, then every 1440.
    import mido

    data = midi_bytes([TrackSpec("Piano", notes=[(60, 0, 7000, 90)])])
    mf = mido.MidiFile(file=io.BytesIO(data))
    mf.tracks[0].insert(-1, mido.MetaMessage("time_signature", numerator=3, denominator=4, time=3840))
    buf = io.BytesIO()
    mf.save(file=buf)
    grid = bar_grid(_pm(buf.getvalue()), 7000 / 960)
    assert list(grid.ticks[:5]) == [0, 1920, 3840, 5280, 6720]
    assert grid.meters[:3] == ("4/4", "4/4", "3/4")


def test_midi_sections_find_the_sample_section_starts(sample_songs):
    tp = fp = fn = 0
    for pm, truth in sample_songs:
        grid = bar_grid(pm, pm.get_end_time())
        found = set(midi_sections(bar_features(pm.instruments, grid), 0.35, 4, 1)) - {0}
        expected = {s["start_bar"] for s in truth["sections"]} - {0}
        tp, fp, fn = tp + len(found & expected), fp + len(found - expected), fn + len(expected - found)
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    # Measured on the 24-song sample: precision 1.0, recall 0.906 (sections that keep the instrumentation).
    assert precision >= 0.95 and recall >= 0.85, (precision, recall)


def test_sections_keep_min_bars_apart_and_break_at_rests():
    bar = 1920
    notes = [(60, b * bar, b * bar + bar - 10, 90) for b in range(16) if b not in (8, 9)]
    pm = _pm(midi_bytes([TrackSpec("Piano", notes=notes)]))
    grid = bar_grid(pm, pm.get_end_time())
    assert midi_sections(bar_features(pm.instruments, grid), 0.35, 2, 2) == [0, 8, 10]
    assert midi_sections(bar_features(pm.instruments, grid), 0.35, 4, 2) == [0, 8]  # 10 is 6 from the end, 8 wins
    # A 2-bar rest is no break by itself when 3 are needed; the entry after it still starts a section.
    assert midi_sections(bar_features(pm.instruments, grid), 0.35, 2, 3) == [0, 10]


def test_spotify_sections_snap_to_bars():
    pm = _pm(midi_bytes([TrackSpec("Piano", notes=[(60, 0, 1920 * 16, 90)])]))  # 16 bars of 2 s
    grid = bar_grid(pm, pm.get_end_time())
    starts = [0.0, 8.3, 18.9, 20.5, 29.0]  # -> bars 0, 4, 9, 10 (too close to 9), 14 (too close to the end)
    sections = [{"start": t, "duration": 1.0} for t in starts]
    assert spotify_sections(sections, grid, 4) == [0, 4, 9]


def test_plan_fits_the_window_and_phrases_from_section_starts():
    pm = _pm(midi_bytes([TrackSpec("Piano", notes=[(60, 0, 1920 * 30, 90)])]))  # 30 bars of 2 s at 120 BPM
    grid = bar_grid(pm, pm.get_end_time())
    plans, skipped = plan_clips(grid, [0, 12], [16, 8, 4, 2], 20.0, "pad")
    assert [(p.section, p.bar_start, p.bars, p.pad_bars) for p in plans] == [
        (0, 0, 8, 0), (0, 8, 4, 0), (1, 12, 8, 0), (1, 20, 8, 0), (1, 28, 2, 0),
    ]  # fmt: skip
    assert not skipped
    assert all(grid.duration_s(p.bar_start, p.bars) <= 20.0 for p in plans)


def test_plan_tails_pad_or_drop_and_short_remainders_join_the_next_section():
    pm = _pm(midi_bytes([TrackSpec("Piano", notes=[(60, 0, 1920 * 11, 90)])]))  # 11 bars
    grid = bar_grid(pm, pm.get_end_time())
    plans, _ = plan_clips(grid, [0, 5], [4], 20.0, "pad")
    # Section 0 holds 5 bars: one 4-bar clip, and its last bar joins section 1 (bars 4..10).
    assert [(p.bar_start, p.bars, p.pad_bars) for p in plans] == [(0, 4, 0), (4, 4, 0), (8, 3, 1)]
    plans, skipped = plan_clips(grid, [0, 5], [4], 20.0, "drop")
    assert [(p.bar_start, p.bars) for p in plans] == [(0, 4), (4, 4)]
    assert skipped[0].bar_start == 8 and "tail of 3 bar(s)" in skipped[0].reason


def test_plan_skips_bars_longer_than_the_window():
    pm = _pm(midi_bytes([TrackSpec("Piano", notes=[(60, 0, 1920 * 4, 90)])], tempos=[(0, 6_000_000)]))  # 10 BPM
    grid = bar_grid(pm, pm.get_end_time())
    plans, skipped = plan_clips(grid, [0], [2], 20.0, "pad")
    assert not plans and "longer than the 20 s window" in skipped[0].reason


def test_splits_are_by_song_deterministic_and_follow_the_ratios():
    songs = [f"artist__song-{i}__{i:06x}" for i in range(40)]
    ratios = {"train": 0.8, "validation": 0.1, "test": 0.1}
    a = assign_splits(songs, ratios, 7)
    assert a == assign_splits(list(reversed(songs)), ratios, 7)
    assert sorted(a) == sorted(songs)
    assert [sum(v == s for v in a.values()) for s in ("train", "validation", "test")] == [32, 4, 4]
    assert a != assign_splits(songs, ratios, 8)
    few = assign_splits(songs[:3], ratios, 7)
    assert sorted(few.values()) == ["test", "train", "validation"]  # every split with a ratio gets a song


def test_midi_span_restates_the_state_and_keeps_notes_inside():
    bar = 1920
    piano = TrackSpec(
        "Piano", program=4, notes=[(60, 0, bar, 80), (62, bar - 100, bar + 200, 80), (64, 2 * bar, 3 * bar + 500, 80)],
        controls=[(0, 7, 100), (10, 7, 90), (bar + 5, 64, 127)],
    )  # fmt: skip
    data = midi_bytes([piano], tempos=[(0, 500_000), (bar + bar // 2, 400_000)], key="D")
    pm = _pm(data)
    span = _pm(instruments_to_midi(pm, pm.instruments, (2 * bar, 3 * bar)))
    (inst,) = span.instruments
    assert inst.program == 4
    assert [(n.pitch, round(n.start, 4), round(n.end, 4)) for n in inst.notes] == [(64, 0.0, 1.6)]  # cut at the end
    assert {(c.number, c.value) for c in inst.control_changes} == {(7, 90), (64, 127)}  # state at the span's start
    times, bpms = span.get_tempo_changes()
    assert list(times) == [0.0] and bpms[0] == pytest.approx(150.0)
    assert [k.key_number for k in span.key_signature_changes] == [2]


def test_times_to_ticks_is_pretty_midis_time_to_tick_on_real_midi():
    """The clip writer converts a song's notes in one search: every tick must be pretty_midi's own,
    on MIDI files music21 ships (tempo changes, odd resolutions), for note times, grid ties and
    times past the grid's end."""
    from pathlib import Path

    import music21

    from pipeline.midi.write import times_to_ticks

    files = sorted(Path(music21.__file__).parent.rglob("*.mid"))
    assert len(files) >= 10
    checked = 0
    for path in files:
        try:
            pm = pretty_midi.PrettyMIDI(str(path))
        except Exception:  # noqa: BLE001 (a test file music21 ships broken on purpose)
            continue
        times = [t for inst in pm.instruments for n in inst.notes for t in (n.start, n.end)]
        grid = pm._PrettyMIDI__tick_to_time
        times += [float(v) for v in grid[:: max(1, len(grid) // 50)]]  # exactly on ticks
        times += [float(a + b) / 2 for a, b in pairwise(grid[:41])]  # midway: ties go to the earlier tick
        times += [float(grid[-1]) + d for d in (0.0, 1e-4, 0.37, 3.0)]  # past the grid's end
        assert times_to_ticks(pm, times) == [pm.time_to_tick(t) for t in times], path.name
        checked += len(times)
    assert checked > 1000

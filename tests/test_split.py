"""Stage `split`: one file per instrument, timing kept, every corrupt input explained."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest

from pipeline.io.manifest import read_manifest
from pipeline.midi.load import MidiError, MidiLimits, parse_midi
from pipeline.records import Failure, SplitSong
from tests.midi_factory import TrackSpec, band, midi_bytes, write

TEMPO_CHANGES = [(0, 500_000), (4 * 480 * 2, 400_000), (4 * 480 * 3, 652_174)]  # 120, 150, 92 BPM


def _notes(pm: pretty_midi.PrettyMIDI) -> list[tuple]:
    return sorted(
        (i.is_drum, int(i.program), n.pitch, round(n.start, 9), round(n.end, 9), n.velocity)
        for i in pm.instruments
        for n in i.notes
    )


def _run_dir(project, folder: Path, **split) -> tuple[list[SplitSong], list[Failure], list[Failure]]:
    project.params(ingest={"source": "dir", "path": str(folder)}, split=split)
    project.run("ingest")
    project.run("split")
    songs = list(read_manifest(project.out("split").manifest, SplitSong))
    ingest_fail = list(read_manifest(project.out("ingest").failures, Failure))
    split_fail = list(read_manifest(project.out("split").failures, Failure))
    return songs, ingest_fail, split_fail


def test_round_trip_tempo_map_and_drums(project, tmp_path):
    src = write(tmp_path / "in" / "Band" / "Song.mid", band(bars=4, tempos=TEMPO_CHANGES, key="G"))
    songs, ingest_fail, split_fail = _run_dir(project, tmp_path / "in")
    assert not ingest_fail and not split_fail
    (song,) = songs
    source = pretty_midi.PrettyMIDI(str(src))
    parts = [pretty_midi.PrettyMIDI(str(project.root / t.midi)) for t in song.tracks]

    # The tracks' notes together are exactly the source's notes.
    assert sorted(n for pm in parts for n in _notes(pm)) == _notes(source)
    # Every track keeps the tempo map, meter and key.
    for pm in parts:
        for got, want in zip(pm.get_tempo_changes(), source.get_tempo_changes(), strict=True):
            assert np.array_equal(got, want)
        assert [(t.numerator, t.denominator, t.time) for t in pm.time_signature_changes] == [(4, 4, 0.0)]
        assert [k.key_number for k in pm.key_signature_changes] == [7]  # G major
    assert [round(t.tempo_bpm, 3) for t in song.tempo_map] == [120.0, 150.0, 92.0]
    assert song.key_signatures[0].tonic == "G" and song.key_signatures[0].scale == "major"

    by_name = {t.track_name: t for t in song.tracks}
    drums = by_name["Drums"]
    assert drums.is_drum and drums.family == "Drums" and drums.name == "Standard Drum Kit"
    drum_file = mido.MidiFile(project.root / drums.midi)
    assert {m.channel for t in drum_file.tracks for m in t if m.type == "note_on"} == {9}
    assert by_name["Piano"].polyphony == "polyphonic" and by_name["Piano"].max_polyphony == 3
    assert by_name["Bass"].polyphony == "monophonic" and by_name["Bass"].subfamily == "electric bass"
    assert by_name["Bass"].n_pitch_bends == 2 and by_name["Piano"].n_control_changes == 2
    assert (by_name["Bass"].pitch_min, by_name["Bass"].pitch_max) == (31, 45)


def test_empty_and_sparse_tracks_are_dropped(project, tmp_path):
    tracks = [
        TrackSpec("Lead", 80, 0, notes=[(60, 0, 480, 90), (62, 480, 960, 90)]),
        TrackSpec("One note", 0, 1, notes=[(48, 0, 480, 90)]),
        TrackSpec("Controls only", 48, 2, controls=[(0, 7, 100), (480, 7, 90)]),
    ]
    write(tmp_path / "in" / "x.mid", midi_bytes(tracks))
    songs, _, _ = _run_dir(project, tmp_path / "in", min_notes_per_track=2)
    (song,) = songs
    assert [t.track_name for t in song.tracks] == ["Lead"]
    # pretty_midi makes no instrument of a notes-free track; the one-note track is ours to drop.
    assert song.dropped_empty_tracks == 1


def _corrupt_inputs(folder: Path) -> None:
    good = band(bars=2)
    write(folder / "good.mid", good)
    write(folder / "truncated.mid", good[: len(good) // 2])
    write(folder / "random.mid", np.random.default_rng(0).bytes(2000))
    write(folder / "header_then_noise.mid", b"MThd" + np.random.default_rng(1).bytes(500))
    write(folder / "zero_tracks.mid", b"MThd" + struct.pack(">IHHH", 6, 1, 0, 480))
    write(folder / "no_notes.mid", midi_bytes([TrackSpec("Silent", 0, 0)]))
    write(folder / "tempo_zero.mid", midi_bytes([TrackSpec("P", 0, 0, notes=[(60, 0, 480, 90)])], tempos=[(0, 0)]))
    write(folder / "tempo_10000.mid", midi_bytes([TrackSpec("P", 0, 0, notes=[(60, 0, 480, 90)])], tempos=[(0, 6000)]))
    write(folder / "tempo_4.mid", midi_bytes([TrackSpec("P", 0, 0, notes=[(60, 0, 480, 90)])], tempos=[(0, 0xFFFFFF)]))
    zero_len = TrackSpec("P", 0, 0, notes=[(60, 0, 0, 90), (62, 0, 480, 90), (64, 480, 960, 90)])
    write(folder / "zero_length_note.mid", midi_bytes([zero_len]))
    long_notes = [(48 + (q % 24), q * 480, q * 480 + 400, 80) for q in range(3600)]  # 3600 beats at 120 BPM
    write(folder / "thirty_minutes.mid", midi_bytes([TrackSpec("Organ", 19, 0, notes=long_notes)]))
    write(folder / "not_midi.txt", b"ignored: not a .mid file")


EXPECTED_FAILURES = {
    "truncated.mid": "truncated MIDI file",
    "random.mid": "not a MIDI file (no MThd header)",
    "header_then_noise.mid": "truncated MIDI file",  # the noise claims a huge header chunk
    "zero_tracks.mid": "MIDI file has no tracks",
    "no_notes.mid": "no instrument tracks",
    "tempo_zero.mid": "0 microseconds per quarter",
    "tempo_10000.mid": "absurd tempo 10000.00 BPM",
    "tempo_4.mid": "absurd tempo 3.58 BPM",
}


def test_every_corrupt_input_works_or_is_explained(project, tmp_path):
    _corrupt_inputs(tmp_path / "in")
    songs, ingest_fail, split_fail = _run_dir(project, tmp_path / "in")
    failed = {f.origin: f.reason for f in ingest_fail + split_fail}
    assert set(failed) == set(EXPECTED_FAILURES)
    for name, reason in EXPECTED_FAILURES.items():
        assert reason in failed[name], (name, failed[name])
    ok = {s.title: s for s in songs}
    assert set(ok) == {"good", "zero length note", "thirty minutes"}
    assert ok["zero length note"].dropped_zero_length_notes == 1
    assert ok["zero length note"].tracks[0].n_notes == 2
    assert ok["thirty minutes"].duration_s == pytest.approx((3599 * 480 + 400) / 960, abs=1e-6)
    summary = json.loads(project.out("split").summary.read_text())
    assert summary["songs"] == 3 and summary["failures"] == len([f for f in split_fail])


def test_duration_limit_is_a_param(project, tmp_path):
    _corrupt_inputs(tmp_path / "in")
    _, _, split_fail = _run_dir(project, tmp_path / "in", max_duration_s=600)
    reasons = {f.origin: f.reason for f in split_fail}
    assert "too long: 1800 s (limit 600 s; param split.max_duration_s)" in reasons["thirty_minutes.mid"]


def test_parse_midi_reasons_directly():
    with pytest.raises(MidiError, match="no MThd"):
        parse_midi(b"RIFF....WAVE")
    ok = parse_midi(band(bars=1), MidiLimits())
    assert ok.n_instruments == 3 and ok.zero_length_notes == 0


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_rerun_and_worker_count_give_identical_bytes(project, tmp_path):
    from tests.conftest import Project

    project.params(ingest={"sample": {"songs": 4}})
    assert project.run("ingest") == 0 and project.run("split") == 0
    first = _tree(project.root / "data")
    assert project.run("ingest") == 0 and project.run("split") == 0
    assert _tree(project.root / "data") == first

    other = Project(tmp_path / "two_workers")
    other.root.mkdir()
    other.params(run={"workers": 2}, ingest={"sample": {"songs": 4}})
    assert other.run("ingest") == 0 and other.run("split") == 0
    assert _tree(other.root / "data") == first
    assert any(k.startswith("split/midi/") for k in first)


def test_nothing_succeeding_fails_the_stage(project, tmp_path):
    write(tmp_path / "in" / "random.mid", b"garbage")
    project.params(ingest={"source": "dir", "path": str(tmp_path / "in")})
    assert project.run("ingest") == 1
    assert "no MThd" in project.out("ingest").failures.read_text()

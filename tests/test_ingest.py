"""Stage `ingest`: sources, readable ids and deduplication."""

from __future__ import annotations

import json

from pipeline.io.manifest import read_manifest
from pipeline.records import Duplicate, Failure, Song
from tests.midi_factory import TrackSpec, band, midi_bytes, write


def _lakh(root):
    full = band(bars=2)  # piano, bass, drums
    two = midi_bytes(
        [TrackSpec("Piano", 0, 0, notes=[(60, 0, 480, 90)]), TrackSpec("Bass", 33, 1, notes=[(36, 0, 480, 90)])]
    )
    write(root / "Artist A" / "Song One.mid", full)
    write(root / "Artist A" / "Song One.1.mid", two)
    write(root / "Artist A" / "Song One.2.mid", b"MThd\x00\x00\x00\x06broken")
    # Here the numbered version has more instruments than the base file: it wins.
    write(root / "Artist A" / "Song Two.mid", midi_bytes([TrackSpec("Piano", 0, 0, notes=[(62, 0, 480, 90)])]))
    write(root / "Artist A" / "Song Two.1.mid", band(bars=3))
    # The same notes at another resolution, with other track names: a content duplicate.
    lead = [(60 + i, i * 480, i * 480 + 400, 90) for i in range(8)]
    lead960 = [(p, on * 2, off * 2, v - 10) for p, on, off, v in lead]
    write(root / "Artist B" / "Other.mid", midi_bytes([TrackSpec("Lead", 80, 0, notes=lead)]))
    write(root / "Artist C" / "Other Copy.mid", midi_bytes([TrackSpec("Synth", 81, 3, notes=lead960)], ppq=960))
    write(root / "Artist D" / "Unique.midi", midi_bytes([TrackSpec("Lead", 80, 0, notes=lead[:4])]))


def test_lakh_layout_dedupes_versions_and_same_notes(project, tmp_path):
    _lakh(tmp_path / "clean_midi")
    project.params(ingest={"source": "lakh", "path": str(tmp_path / "clean_midi")})
    assert project.run("ingest") == 0
    out = project.out("ingest")
    songs = {s.origin: s for s in read_manifest(out.manifest, Song)}
    assert set(songs) == {
        "Artist A/Song One.mid",
        "Artist A/Song Two.1.mid",
        "Artist B/Other.mid",
        "Artist D/Unique.midi",
    }
    one = songs["Artist A/Song One.mid"]
    assert (one.artist, one.title, one.n_instruments) == ("Artist A", "Song One", 3)
    assert one.id.startswith("artist-a__song-one__") and len(one.id.rsplit("__", 1)[1]) == 6
    assert songs["Artist A/Song Two.1.mid"].title == "Song Two"
    assert (project.root / one.midi).read_bytes() == (
        tmp_path / "clean_midi" / "Artist A" / "Song One.mid"
    ).read_bytes()

    dups = {d.id: d for d in read_manifest(out.out("duplicates.jsonl"), Duplicate)}
    assert set(dups) == {"Artist A/Song One.1.mid", "Artist A/Song Two.mid", "Artist C/Other Copy.mid"}
    assert dups["Artist A/Song One.1.mid"].reason == "lakh-version"
    assert dups["Artist A/Song One.1.mid"].kept == one.id
    assert "kept version 0 (3 instruments vs 2)" in dups["Artist A/Song One.1.mid"].detail
    assert "kept version 1 (3 instruments vs 1)" in dups["Artist A/Song Two.mid"].detail
    assert dups["Artist C/Other Copy.mid"].reason == "same-notes"
    assert dups["Artist C/Other Copy.mid"].kept_origin == "Artist B/Other.mid"

    failures = list(read_manifest(out.failures, Failure))
    assert [(f.id, f.stage) for f in failures] == [("Artist A/Song One.2.mid", "ingest")]
    summary = json.loads(out.summary.read_text())
    assert (summary["songs"], summary["duplicates_dropped"], summary["failures"]) == (4, 3, 1)


def test_dedupe_can_be_switched_off(project, tmp_path):
    _lakh(tmp_path / "clean_midi")
    project.params(
        ingest={
            "source": "lakh",
            "path": str(tmp_path / "clean_midi"),
            "dedupe": {"lakh_versions": False, "same_notes": False},
        }
    )
    assert project.run("ingest") == 0
    assert len(list(read_manifest(project.out("ingest").manifest, Song))) == 7


def test_limit_and_missing_folder(project, tmp_path, caplog):
    _lakh(tmp_path / "clean_midi")
    project.params(ingest={"source": "dir", "path": str(tmp_path / "clean_midi"), "limit": 2})
    assert project.run("ingest") == 0
    songs = list(read_manifest(project.out("ingest").manifest, Song))
    # The first two paths in order: Song One.1.mid and the broken Song One.2.mid.
    assert [(s.origin, s.source, s.artist) for s in songs] == [("Artist A/Song One.1.mid", "dir", "Artist A")]
    assert json.loads(project.out("ingest").summary.read_text())["failures"] == 1
    project.params(ingest={"source": "dir", "path": str(tmp_path / "nowhere")})
    assert project.run("ingest") == 2
    assert "input folder" in caplog.text and "does not exist (param ingest.path)" in caplog.text


def test_music21_corpus_with_instrument_assignment(project):
    import pretty_midi

    project.params(
        ingest={"source": "music21", "music21": {"works": ["bach/bwv66.6", "bach/bwv1.6"], "programs": [73, 71, 70]}}
    )
    assert project.run("ingest") == 0
    songs = sorted(read_manifest(project.out("ingest").manifest, Song), key=lambda s: s.origin)
    assert [(s.artist, s.title, s.origin) for s in songs] == [
        ("J.S. Bach", "BWV 1.6", "bach/bwv1.6"),
        ("J.S. Bach", "BWV 66.6", "bach/bwv66.6"),
    ]
    pm = pretty_midi.PrettyMIDI(str(project.root / songs[1].midi))
    assert [(i.name, int(i.program)) for i in pm.instruments] == [
        ("Soprano", 73),
        ("Alto", 71),
        ("Tenor", 70),
        ("Bass", 73),
    ]
    assert all(len(i.notes) > 20 for i in pm.instruments)


def test_sample_source_writes_ground_truth_beside_the_midi(project):
    project.params(ingest={"sample": {"songs": 3}})
    assert project.run("ingest") == 0
    songs = list(read_manifest(project.out("ingest").manifest, Song))
    assert len(songs) == 3
    for s in songs:
        truth = json.loads((project.root / s.truth).read_text())
        assert truth["song_id"] == s.id and truth["title"] == s.title and truth["artist"] == s.artist
        assert s.n_instruments == len(truth["instruments"])

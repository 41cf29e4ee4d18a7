"""Manifests: typed, sorted, atomic, and strict about unknown keys."""

from __future__ import annotations

import json

import pytest

from pipeline.io.atomic import atomic_open
from pipeline.io.manifest import ManifestError, read_manifest, write_manifest
from pipeline.records import Duplicate, Failure, Song

SHA = "ab" * 32


def _song(artist: str, title: str) -> Song:
    from pipeline.ids import song_id

    return Song(
        id=song_id(artist, title, SHA),
        artist=artist,
        title=title,
        source="dir",
        origin=f"{artist}/{title}.mid",
        midi=f"data/ingest/midi/{title}.mid",
        sha256=SHA,
        n_instruments=2,
        n_notes=10,
        duration_s=3.0,
    )


def test_round_trip_sorted_by_id(tmp_path):
    songs = [_song("Zed", "B"), _song("Abba", "Waterloo")]
    path = tmp_path / "m.jsonl"
    assert write_manifest(path, songs) == 2
    back = list(read_manifest(path, Song))
    assert [s.id for s in back] == ["abba__waterloo__ababab", "zed__b__ababab"]
    assert back[0] == songs[1]


def test_unknown_key_is_rejected_not_dropped(tmp_path):
    path = tmp_path / "m.jsonl"
    record = json.loads(_song("A", "B").model_dump_json())
    record["tittle"] = "typo"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(ManifestError, match=r"(?s)m.jsonl:1: not a valid Song.*tittle"):
        list(read_manifest(path, Song))


def test_duplicate_ids_refused(tmp_path):
    with pytest.raises(ManifestError, match="duplicate ids"):
        write_manifest(tmp_path / "m.jsonl", [_song("A", "B"), _song("A", "B")])


def test_missing_manifest_says_run_upstream(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the upstream stage"):
        list(read_manifest(tmp_path / "nope.jsonl", Song))


def test_invariants_checked_when_built():
    with pytest.raises(ValueError, match="artist__title__hash6"):
        Song(
            id="Bad Id",
            artist="a",
            title="t",
            source="dir",
            origin="x",
            midi="m",
            sha256=SHA,
            n_instruments=1,
            n_notes=1,
            duration_s=1,
        )
    with pytest.raises(ValueError, match="reason"):
        Duplicate(id="x.mid", kept="k", kept_origin="y", reason="looks-similar", detail="")


def test_atomic_write_leaves_old_file_on_error(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_open(path) as fh:
        fh.write("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old\n"
    assert list(tmp_path.iterdir()) == [path]


def test_failures_are_records_with_stage_and_reason():
    f = Failure(id="Artist/Song.mid", stage="ingest", reason="not a MIDI file (no MThd header)")
    assert json.loads(f.model_dump_json())["stage"] == "ingest"

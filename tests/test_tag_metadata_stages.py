"""Stages `tag` and `metadata` end to end on a short rendered song, offline."""

from __future__ import annotations

import json

import pytest

from pipeline.io.manifest import read_manifest
from pipeline.records import Failure, MetadataSong, TagSong
from tests.midi_factory import band, write

CREDENTIALS = ("SPOTIPY_CLIENT_ID", "SPOTIPY_CLIENT_SECRET", "LASTFM_API_KEY")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    from tests.conftest import Project

    project = Project(tmp_path_factory.mktemp("tag"))
    write(project.root / "in" / "Band" / "Song.mid", band(bars=8, key="G"))
    project.params(run={"workers": 2}, ingest={"source": "dir", "path": "in"})
    for stage in ("ingest", "split", "render", "mix"):
        assert project.run(stage) == 0
    return project


def _tag(project, **tag) -> tuple[int, list[TagSong], dict]:
    project.params(run={"workers": 2}, ingest={"source": "dir", "path": "in"}, tag=tag)
    code = project.run("tag")
    out = project.out("tag")
    songs = list(read_manifest(out.manifest, TagSong)) if code == 0 else []
    return code, songs, json.loads(out.summary.read_text()) if out.summary.exists() else {}


def test_tag_labels_from_midi_and_measures_the_audio(mixed, tmp_path):
    code, (song,), summary = _tag(mixed, tempo={"deeprhythm_weights": str(tmp_path / "none.pth")})
    assert code == 0
    assert song.key.midi == "G major" and song.key.midi_source == "midi:notes"
    assert song.key.signature == "G major" and song.key.signature_relation == "exact"
    assert song.key.label == "G major" and song.key.label_source == "midi"
    assert song.tempo.midi_bpm == pytest.approx(120.0) and song.tempo.label_bpm == pytest.approx(120.0)
    assert set(song.tempo.audio_bpm) == {"essentia"}
    assert song.time_signature == "4/4"
    roles = {st.id.rsplit("/", 1)[1]: st.notation.role for st in song.stems}
    assert roles == {"t00": "sustained chords", "t01": "bassline", "t02": "drums"}  # whole-bar piano chords
    assert all(isinstance(t, str) for st in song.stems for t in st.timbre.tags)
    assert summary["label_policy"] == "midi" and summary["tempo_backend"] == "essentia"
    assert "fell back to essentia" in summary["tempo_fallback"]
    assert set(summary["tempo_acc1"]) == set(summary["tempo_acc2"]) == {"essentia"}
    assert set(summary["key_accuracy"]) == {"essentia:bgate"}
    assert summary["key_signatures"] == {"exact": 1}
    rows = (mixed.out("tag").out("audit") / "keys.csv").read_text().splitlines()
    assert rows[0] == "id,notes,audio,signature,stated" and rows[1].endswith(",G major,G major")


def test_tag_uses_deeprhythm_when_weights_are_given(mixed, tmp_path):
    import torch

    from pipeline.analysis.tempo import import_torchaudio

    import_torchaudio()
    from deeprhythm.model.frame_cnn import DeepRhythmModel

    weights = tmp_path / "deeprhythm-0.7.pth"
    torch.save(DeepRhythmModel().state_dict(), weights)
    code, (song,), summary = _tag(mixed, tempo={"backend": "deeprhythm", "deeprhythm_weights": str(weights)})
    assert code == 0
    assert summary["tempo_backend"] == "deeprhythm" and summary["tempo_fallback"] is None
    assert set(song.tempo.audio_bpm) == {"deeprhythm", "essentia"} == set(summary["tempo_acc1"])


def test_explicit_deeprhythm_without_weights_stops_the_stage(mixed, tmp_path, caplog):
    code, _, _ = _tag(mixed, tempo={"backend": "deeprhythm", "deeprhythm_weights": str(tmp_path / "missing.pth")})
    assert code == 2 and "deeprhythm weights not found" in caplog.text


def test_agree_policy_flags_or_drops_disagreeing_songs(mixed):
    strict = {"tempo": {"backend": "essentia", "tolerance": 1e-9}, "label_policy": "agree"}
    code, (song,), summary = _tag(mixed, **strict, disagreement="flag")
    assert code == 0 and song.flagged and not song.agrees and summary["flagged"] == 1
    code, songs, _ = _tag(mixed, **strict, disagreement="drop")
    assert code == 1 and songs == []
    (failure,) = read_manifest(mixed.out("tag").failures, Failure)
    assert "audio and MIDI disagree" in failure.reason


def test_metadata_without_credentials_runs_offline(mixed, monkeypatch):
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    _tag(mixed)
    mixed.params(run={"workers": 2}, ingest={"source": "dir", "path": "in"})
    assert mixed.run("metadata") == 0
    (song,) = read_manifest(mixed.out("metadata").manifest, MetadataSong)
    assert (song.Song, song.Artist, song.key, song.mode, song.tempo) == ("Song", "Band", "G", "major", 120.0)
    assert song.Instruments == ["Acoustic Grand Piano", "Electric Bass (finger)", "Standard Drum Kit"]
    assert song.energy is None and song.Tags == [] and song.spotify_track_id is None
    assert song.provenance["energy"] == "none" and song.provenance["key"] == "midi"
    assert song.provenance["Tags"] == "none" and song.provenance["duration_ms"] == "audio"
    summary = json.loads(mixed.out("metadata").summary.read_text())
    assert summary["network_calls"] == 0 and summary["spotify_matched"] == 0
    assert any("no credentials" in n.lower() for n in summary["notes"])


def test_known_distorted_presets_are_never_called_clean():
    import numpy as np

    from pipeline.analysis.tag import measure_timbre
    from pipeline.analysis.timbre import TimbreThresholds

    t = np.arange(44100 * 2) / 44100
    sine = np.stack([np.sin(2 * np.pi * 660 * t)] * 2, axis=1).astype(np.float32) * 0.3
    th = TimbreThresholds()
    assert "clean" in measure_timbre(sine, 44100, th, "soundfont TimGM6mb.sf2 bank 0 preset 24").tags
    assert "clean" not in measure_timbre(sine, 44100, th, "soundfont TimGM6mb.sf2 bank 0 preset 30").tags


def test_contradictory_timbre_thresholds_stop_the_stage(mixed, caplog):
    code, _, _ = _tag(mixed, timbre={"bright_centroid_hz": 500, "dark_centroid_hz": 900})
    assert code == 2 and "tag.timbre" in caplog.text

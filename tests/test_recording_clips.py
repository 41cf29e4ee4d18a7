"""Recordings as clips: cut on the beat and downbeat grid found in the audio (or by time where it is
unsure), labelled with what the person said and what the clip's own audio confirms, then prompted and
augmented by the audio methods like any clip. The recordings are bands rendered from MIDI with a known
tempo, key and bar grid, re-encoded to other formats, rates and channel counts."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
import soundfile as sf

from pipeline.io.manifest import read_manifest
from pipeline.records import Clip, Failure, Prompt, Variant
from tests.midi_factory import TrackSpec, midi_bytes, write
from tests.recording_factory import SR, band_audio, write_recording

BAND = (120.0, 9, True, 24)  # A minor, 4/4: bar lines every 2 s, the first at 0
HAND = (96.0, 2, False, 16)  # D major: a person labels key, BPM and meter
BAR_TOLERANCE_S = 0.020


def _drone() -> np.ndarray:
    """An A major chord swelling slowly: no beat to track (40 s)."""
    t = np.arange(int(40 * SR)) / SR
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * 0.05 * t)
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.18, 329.63)) * swell
    return (0.15 * np.stack([chord, np.roll(chord, 300)], axis=1)).astype(np.float32)


@pytest.fixture(scope="module")
def cut(tmp_path_factory):
    from tests.conftest import Project

    project = Project(tmp_path_factory.mktemp("recclips"))
    root = project.root
    piano = TrackSpec("Piano", program=0, channel=0)
    for b in range(8):
        piano.notes += [(p, b * 1920, b * 1920 + 1900, 80) for p in (55, 59, 62)]
    write(root / "in" / "Band" / "Song.mid", midi_bytes([piano], key="G"))
    rec = root / "rec"
    write_recording(rec / "band.flac", band_audio(*BAND), 48000, 1)  # 48 kHz mono FLAC
    write_recording(rec / "hand.wav", band_audio(*HAND), 32000, 2, "PCM_16")
    write_recording(rec / "drone.ogg", _drone())
    write_recording(rec / "nolabel.wav", band_audio(120.0, 9, True, 8))
    rows = [
        {"file": "band.flac", "instruments": "drums; bass guitar; piano", "genre": "funk", "mood": "bright"},
        {"file": "hand.wav", "instruments": "drums; upright bass; keys", "key": "D major", "bpm": "96",
         "meter": "4/4"},
        {"file": "drone.ogg", "instruments": "synth pad", "genre": "ambient"},
    ]  # fmt: skip
    with open(rec / "labels.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "instruments", "genre", "mood", "key", "bpm", "meter"])
        w.writeheader()
        w.writerows(rows)
    # the grid's own BPM and bars speak here (tested on their own); the default withholds them (test below)
    project.params(run={"workers": 2}, ingest={"source": "dir", "path": "in"},
                   recordings={"path": "rec", "clip_estimated_bpm": True},
                   augment={"key": {"variants_per_clip": 1}, "bpm": {"variants_per_clip": 1}})  # fmt: skip
    for stage in ("ingest", "split", "render", "mix", "tag", "metadata", "recordings", "clip", "prompts", "augment"):
        assert project.run(stage) == 0, stage
    clips = list(read_manifest(project.out("clip").manifest, Clip))
    by_title: dict[str, list[Clip]] = {}
    for c in clips:
        if c.source == "recording":
            by_title.setdefault(c.title, []).append(c)
    return project, by_title


def test_clips_are_whole_bars_starting_on_downbeats(cut):
    project, by_title = cut
    band = by_title["band"]
    assert len(band) == 2  # 24 bars: 8-bar clips (the most of clip.bar_counts in 20 s) after the first bar
    for c in band:
        assert c.midi is None and c.bars == 8 and c.time_signature == "4/4"
        assert abs(c.seconds_start - 2.0 * round(c.seconds_start / 2.0)) < BAR_TOLERANCE_S, c.seconds_start
        assert c.seconds_total == pytest.approx(16.0, abs=2 * BAR_TOLERANCE_S)
        assert c.bpm == pytest.approx(120.0, rel=0.01)
        assert c.label_sources["bars"] == "downbeats" and c.label_sources["meter"] == "audio"
        info = sf.info(str(project.root / c.audio))
        assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "PCM_16")
    assert [c.bar_start for c in band] == [0, 8]
    # the audio is the recording's own, at the mix stage's level (true peak under the ceiling)
    assert all(-16.5 < c.loudness_lufs <= -14.0 + 0.1 for c in band)
    # a key nobody confirmed is not stated (recordings.clip_estimated_keys: false); the estimate is kept
    assert all(c.key is None and "not confirmed by a person" in c.key_evidence.withheld for c in band)
    assert all(c.key_evidence.song_audio == "A minor" for c in band)
    assert [(i.name, i.family) for i in band[0].instruments] == [
        ("Drums", "Drums"), ("Electric Bass (finger)", "Bass"), ("Acoustic Grand Piano", "Piano")]  # fmt: skip
    assert band[0].genre_tags == ["funk", "bright"]


def test_hand_labels_win_and_an_unsure_downbeat_states_no_bars(cut):
    _, by_title = cut
    for c in by_title["hand"]:
        assert (c.key, c.bpm, c.time_signature) == ("D major", 96.0, "4/4")
        assert c.label_sources["key"] == c.label_sources["bpm"] == c.label_sources["meter"] == "hand"
        if c.bars is not None:  # bars only where the downbeats stood out; then on them
            bar = 4 * 60 / 96.0
            assert abs(c.seconds_start - bar * round(c.seconds_start / bar)) < BAR_TOLERANCE_S
        else:
            assert c.label_sources["bars"] == "none" and c.bar_start == 0


def test_by_default_an_unconfirmed_beat_grid_states_no_bpm_bars_or_meter(cut):
    """The band's grid is right (120 BPM, bars on its downbeats), but nobody confirmed its tempo: with the
    default params its clips are cut the same way and state none of what the grid alone says."""
    from pipeline.io.manifest import read_manifest as read
    from pipeline.params import load_params
    from pipeline.recordings.clips import RecordingClipJob, cut_recording
    from pipeline.records import RecordingSong

    project, by_title = cut
    params = load_params(project.root / "params.yaml")
    defaults = params.recordings.model_copy(update={"clip_estimated_bpm": False})
    song = next(s for s in read(project.out("recordings").manifest, RecordingSong) if s.title == "band")
    job = RecordingClipJob(song, by_title["band"][0].split, project.root, project.root / "alt", params.clip, defaults,
                           params.mix, params.tag.timbre)  # fmt: skip
    got = cut_recording(job).clips
    sure = by_title["band"]
    assert [c.seconds_start for c in got] == [c.seconds_start for c in sure]  # cut on the same downbeats
    for c in got:
        assert (c.bpm, c.bars, c.time_signature) == (None, None, None)
        assert "not confirmed by a person" in c.tempo_evidence.withheld
        assert c.tempo_evidence.notated_bpm == pytest.approx(120.0, rel=0.01)  # kept for audit
        assert c.label_sources["bars"] == "none" and "clip_estimated_bpm" in c.meter_evidence.withheld
    # a BPM a person gave is stated, and bars counted on it
    hand = song.model_copy(update={"bpm": 120.0, "hand": [*song.hand, "bpm"]})
    confirmed = cut_recording(RecordingClipJob(hand, *[getattr(job, f) for f in ("split", "root", "out_audio",
                              "clip", "recordings", "mix", "thresholds")])).clips  # fmt: skip
    assert [(c.bpm, c.bars) for c in confirmed] == [(120.0, 8), (120.0, 8)]


def test_a_recording_without_a_reliable_grid_is_cut_by_time_and_states_no_bpm_or_bars(cut):
    project, by_title = cut
    drone = by_title["drone"]
    assert [(c.seconds_start, c.seconds_total) for c in drone] == [(0.0, 20.0), (20.0, 20.0)]
    for c in drone:
        assert (c.bars, c.bpm, c.time_signature) == (None, None, None)
        assert c.tempo_evidence.withheld and "beat" in c.tempo_evidence.withheld
        assert c.key is None and c.key_evidence.audio and c.genre_tags == ["ambient"]
    summary = json.loads(project.out("clip").summary.read_text())
    cuts = summary["recordings"]["cut"]
    assert cuts["time"] == 1 and cuts["bars"] >= 1 and sum(cuts.values()) == 3
    assert summary["hours_by_source"]["recording"] > 0 and summary["hours_by_source"]["midi"] > 0


def test_a_recording_nobody_named_instruments_for_fails_alone(cut):
    project, by_title = cut
    fails = list(read_manifest(project.out("clip").failures, Failure))
    assert len(fails) == 1 and fails[0].id.startswith("unknown__nolabel__")
    assert "no instruments labelled" in fails[0].reason
    assert sorted(by_title) == ["band", "drone", "hand"]


def test_prompts_state_no_bars_or_bpm_a_clip_does_not_have(cut):
    project, by_title = cut
    prompts = {q.id: q.prompt for q in read_manifest(project.out("prompts").manifest, Prompt)}
    for clips in by_title.values():
        for c in clips:
            text = prompts[c.id].lower()
            if c.bars is None:
                assert not re.search(r"\d+[- ]bars?\b|bars?:", text), text
            if c.bpm is None:
                assert "bpm" not in text and "beats per minute" not in text, text
            if c.key is None:
                assert not re.search(r"\b(major|minor)\b", text), text
    hand = prompts[by_title["hand"][0].id].lower()
    assert "d major" in hand and ("96" in hand)


def test_recordings_augment_by_audio_methods_with_labels_recomputed(cut):
    project, by_title = cut
    ids = {c.id: c for clips in by_title.values() for c in clips}
    variants = [v for v in read_manifest(project.out("augment").manifest, Variant) if v.source_clip in ids]
    made = [v for v in variants if v.method != "identity"]
    assert made and all(v.method == "audio" and v.midi is None for v in made)
    assert not any(t.axis == "timbre" for v in made for t in v.transforms)  # no patch to change
    names = {t.name for v in made for t in v.transforms}
    assert names & {"pitch_shift_audio", "time_stretch_audio"}
    for v in made:
        src = ids[v.source_clip]
        for t in v.transforms:
            if t.name == "pitch_shift_audio":
                assert v.key is not None and v.key != src.key
            if t.name == "time_stretch_audio":
                assert v.bpm is not None and src.bpm is not None and v.bpm != src.bpm
                assert v.seconds_total == pytest.approx(src.seconds_total * src.bpm / v.bpm, abs=0.01)
        assert v.split == src.split
    summary = json.loads(project.out("augment").summary.read_text())
    assert summary["hours_by_source"]["recording"] > 0


def test_clip_stops_before_removing_anything_when_the_recordings_manifest_is_missing_or_corrupt(cut, caplog):
    project, _ = cut
    manifest = project.out("recordings").manifest
    clips = project.out("clip").manifest
    before = clips.read_bytes()
    saved = manifest.read_bytes()
    try:
        manifest.unlink()  # the folder still holds recordings
        assert project.run("clip") == 2
        assert "run the recordings stage first (dvc repro recordings)" in caplog.text
        manifest.write_text('{"id": "x"}\n')
        assert project.run("clip") == 2
        assert "re-run the recordings stage" in caplog.text
        assert clips.read_bytes() == before  # nothing produced was lost
    finally:
        manifest.write_bytes(saved)


def test_grid_rules():
    from pipeline.recordings.grid import beats_per_bar, conform

    assert [beats_per_bar(m) for m in ("4/4", "3/4", "2/2", "6/8", "12/8", "7/8", None)] == [4, 3, 2, 2, 4, None, None]
    beats = np.arange(0, 20, 0.25)  # a tracker tapping eighths at 120 BPM: 240 BPM
    assert np.allclose(conform(beats, 120.0, 0.04), beats[::2])
    assert np.allclose(conform(beats[::4], 120.0, 0.04), beats[::2][: len(beats[::4]) * 2 - 1])  # half time
    assert conform(beats, 160.0, 0.04) is None  # 240 is neither 160 nor its double or half

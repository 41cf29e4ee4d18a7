"""A recording with its parts (`<name>.stems/<instrument>.<ext>`): the stems name the instruments
nobody labelled, each mix clip names only the parts that play in it, and each part gets solo clips
cut on the same downbeats as the mix. The band is rendered from MIDI with a known grid; its keys
stop halfway, so the second clip must not name them."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from pipeline.io.manifest import read_manifest
from pipeline.params import load_params
from pipeline.recordings.clips import RecordingClipJob, cut_recording
from pipeline.records import RecordingSong
from tests.recording_factory import SR, band_stems, write_recording

BAND = (120.0, 9, True, 20)  # A minor, 4/4: bar lines every 2 s; 8-bar clips from the second bar line
KEYS_STOP_S = 18.0  # the keys play the first clip only


@pytest.fixture(scope="module")
def stems_project(tmp_path_factory):
    from tests.conftest import Project

    project = Project(tmp_path_factory.mktemp("recstems"))
    rec = project.root / "rec"
    parts = dict(band_stems(*BAND))
    parts["keys"] = parts["keys"].copy()
    parts["keys"][int(KEYS_STOP_S * SR) :] = 0.0
    mix = parts["drums"] + parts["bass"] + parts["keys"]
    write_recording(rec / "song.wav", mix)
    stems = rec / "song.stems"
    write_recording(stems / "01_drums.wav", parts["drums"])
    write_recording(stems / "bass guitar.flac", parts["bass"], 22050, 1)  # another rate, mono
    write_recording(stems / "piano.wav", parts["keys"])
    rng = np.random.default_rng(0)
    write_recording(stems / "vocals.wav", (0.01 * rng.standard_normal(mix.shape)).astype(np.float32))
    write_recording(stems / "drums_2.wav", parts["drums"][: -3 * SR])  # 3 s short
    write_recording(rec / "gone.stems" / "bass.wav", parts["bass"])  # no recording beside it
    with open(rec / "labels.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "key", "bpm", "meter"])
        w.writeheader()
        w.writerow({"file": "song.wav", "key": "A minor", "bpm": "120", "meter": "4/4"})
    project.params(recordings={"path": "rec"})
    assert project.run("recordings") == 0
    (song,) = read_manifest(project.out("recordings").manifest, RecordingSong)
    return project, song, parts


def _cut(project, song, **clip):
    params = load_params(project.root / "params.yaml")
    job = RecordingClipJob(song, "train", project.root, project.root / "clips", params.clip.model_copy(update=clip),
                           params.recordings, params.mix, params.tag.timbre)  # fmt: skip
    return cut_recording(job)


def test_stems_become_parts_and_name_the_instruments_nobody_labelled(stems_project):
    project, song, _ = stems_project
    assert [s.source for s in song.stems] == ["song.stems/01_drums.wav", "song.stems/bass guitar.flac",
                                              "song.stems/piano.wav"]  # fmt: skip
    assert [(i.name, i.family) for i in song.instruments] == [
        (None, "Drums"), ("Electric Bass (finger)", "Bass"), ("Acoustic Grand Piano", "Piano")]  # fmt: skip
    info = sf.info(str(project.root / song.stems[1].audio))  # 22.05 kHz mono in, 44.1 kHz stereo out
    assert (info.samplerate, info.channels) == (44100, 2)
    assert info.frames == pytest.approx(song.duration_s * SR, abs=SR * 0.01)
    summary = json.loads(project.out("recordings").summary.read_text())
    assert (summary["with_stems"], summary["stems"]) == (1, 3)
    reasons = {w["id"]: w["reason"] for w in summary["warnings"]}
    mine = [w["reason"] for w in summary["warnings"] if w["id"] == "song.wav"]
    assert "stem song.stems/vocals.wav: 'vocals' is not an instrument of the GM vocabulary" in " | ".join(mine)
    assert any(r.startswith("stem song.stems/drums_2.wav: ") and "recordings.stem_tolerance_s" in r for r in mine)
    assert reasons["gone.stems"] == "a stems folder with no recording beside it: left out"


def test_mix_clips_name_only_the_parts_that_play_and_each_part_gets_solo_clips(stems_project):
    project, song, parts = stems_project
    made = _cut(project, song).clips
    mixes = [c for c in made if c.kind == "mix"]
    assert [c.seconds_start for c in mixes] == pytest.approx([2.0, KEYS_STOP_S], abs=0.02)
    piano = next(i for i in mixes[0].instruments if i.family == "Piano")
    assert [i.family for i in mixes[0].instruments] == ["Drums", "Bass", "Piano"] and mixes[0].quiet_instruments == []
    assert [i.family for i in mixes[1].instruments] == ["Drums", "Bass"]  # the keys stopped
    assert mixes[1].quiet_instruments == [piano.track_id]
    solos = {c.id.rsplit("/", 1)[1]: c for c in made if c.kind == "stem"}
    assert sorted(solos) == ["c000-s00", "c000-s01", "c000-s02", "c001-s00", "c001-s01"]
    params = load_params(project.root / "params.yaml")
    for name, c in solos.items():
        mix_clip = mixes[int(name[1:4])]
        assert len(c.instruments) == 1 and c.seconds_start == mix_clip.seconds_start
        assert (c.bpm, c.bars, c.time_signature) == (120.0, mix_clip.bars, "4/4")
        assert c.loudness_lufs == pytest.approx(params.mix.stem_lufs, abs=2.0)  # one gain per stem file
        # a drum part states no key; the others state the person's key
        assert c.key == (None if c.instruments[0].is_drum else "A minor")
    # a solo clip is its part's own audio on the mix clip's samples (scaled, and 16-bit in the WAV)
    drums = solos["c001-s00"]
    x, _ = sf.read(str(project.root / drums.audio), dtype="float32", always_2d=True)
    start = round(drums.seconds_start * SR)
    src = parts["drums"][start : start + len(x)]
    assert np.corrcoef(x[:, 0], src[:, 0])[0, 1] > 0.999


def test_without_solo_stems_the_mix_clips_still_name_only_what_plays(stems_project):
    project, song, _ = stems_project
    made = _cut(project, song, stems="none").clips
    assert [c.kind for c in made] == ["mix", "mix"]
    assert [i.family for i in made[1].instruments] == ["Drums", "Bass"]


@pytest.mark.slow
def test_solo_clips_of_a_recording_are_prompted_and_augmented_like_any_clip(stems_project):
    """Through clip, prompts and augment as stages: the recording's solo clips get prompts that
    name their one part (no key for drums) and audio-method variants, in their recording's split."""
    from pipeline.records import Clip, Prompt, Variant
    from tests.midi_factory import TrackSpec, midi_bytes, write

    project, _, _ = stems_project
    piano = TrackSpec("Piano", program=0, channel=0)
    for b in range(8):
        piano.notes += [(p, b * 1920, b * 1920 + 1900, 80) for p in (55, 59, 62)]
    write(project.root / "in" / "Band" / "Song.mid", midi_bytes([piano], key="G"))
    project.params(ingest={"source": "dir", "path": "in"}, recordings={"path": "rec"},
                   augment={"key": {"variants_per_clip": 1}, "bpm": {"variants_per_clip": 1}})  # fmt: skip
    for stage in ("ingest", "split", "render", "mix", "tag", "metadata", "recordings", "clip", "prompts", "augment"):
        assert project.run(stage) == 0, stage
    solos = {c.id: c for c in read_manifest(project.out("clip").manifest, Clip)
             if c.source == "recording" and c.kind == "stem"}  # fmt: skip
    assert len(solos) == 5
    prompts = {q.id: q.prompt.lower() for q in read_manifest(project.out("prompts").manifest, Prompt)}
    for cid, c in solos.items():
        text = prompts[cid]
        if c.instruments[0].is_drum:
            assert "drum" in text and "minor" not in text and "major" not in text, text
        else:
            assert c.instruments[0].family.lower() in text or c.instruments[0].name.lower() in text, text
    variants = [v for v in read_manifest(project.out("augment").manifest, Variant) if v.source_clip in solos]
    made = [v for v in variants if v.method != "identity"]
    assert made and all(v.method == "audio" and v.split == solos[v.source_clip].split for v in made)

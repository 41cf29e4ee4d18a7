"""Stage `recordings`: audio in any format, rate and channel count becomes 44.1 kHz stereo songs whose
labels are the person's where given and confident estimates where not; drafts to edit; bad input."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import soundfile as sf

from pipeline.io.manifest import read_manifest
from pipeline.recordings.labels import normalise_key, read_labels
from pipeline.records import Failure, RecordingSong
from stages import recordings as stage
from tests.recording_factory import SR, band_audio, write_recording

A_MINOR_120 = (120.0, 9, True, 12)  # bpm, tonic pc, minor, bars: 24 s
D_MAJOR_96 = (96.0, 2, False, 10)  # 25 s


def _params(project, **over):
    project.params(recordings={"path": "rec", **over})


def _run(project):
    code = stage.main(root=project.root, argv=[])
    out = project.out("recordings")
    songs = {s.source: s for s in read_manifest(out.manifest, RecordingSong)} if out.manifest.exists() else {}
    fails = list(read_manifest(out.failures, Failure)) if out.failures.exists() else []
    return code, songs, fails, (json.loads(out.summary.read_text()) if out.summary.exists() else {})


def _labels(project, rows: list[dict], name: str = "labels.csv"):
    path = project.root / "rec" / name
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=sorted({k for r in rows for k in r}))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_every_format_rate_and_channel_count_becomes_44k_stereo_with_its_tempo_and_key(project):
    x = band_audio(*A_MINOR_120)
    rec = project.root / "rec"
    write_recording(rec / "Band" / "wav48.wav", x, 48000, 2, "PCM_16")
    write_recording(rec / "Band" / "mono22.flac", x, 22050, 1)
    write_recording(rec / "Band" / "six.wav", x, SR, 6, "FLOAT")
    write_recording(rec / "Band" / "vorbis.ogg", x, 32000, 2)
    write_recording(rec / "Band" / "layer3.mp3", x, 44100, 2)
    _params(project)
    code, songs, fails, summary = _run(project)
    assert code == 0 and not fails, fails
    assert sorted(songs) == ["Band/layer3.mp3", "Band/mono22.flac", "Band/six.wav", "Band/vorbis.ogg", "Band/wav48.wav"]
    for name, s in songs.items():
        y, sr = sf.read(str(project.root / s.audio), dtype="float32")
        info = sf.info(str(project.root / s.audio))
        assert (sr, y.shape[1], info.subtype) == (44100, 2, "PCM_24"), name
        assert abs(len(y) / sr - len(x) / SR) < 0.06, name  # MP3 adds its encoder delay and padding
        assert s.bpm == pytest.approx(120, rel=0.02) and s.key == "A minor", (name, s.bpm, s.key, s.estimates)
        assert s.estimated == ["bpm", "key"] and s.hand == [] and not s.withheld
        assert (s.artist, s.title) == ("Band", name.split("/")[1].split(".")[0])  # folder and file name
    assert songs["Band/mono22.flac"].source_channels == 1 and songs["Band/six.wav"].source_channels == 6
    mono, _ = sf.read(str(project.root / songs["Band/mono22.flac"].audio), dtype="float32")
    assert np.array_equal(mono[:, 0], mono[:, 1])  # mono: the same on both sides
    # the 22.05 kHz file holds nothing above 11 kHz, and its resampling adds nothing there
    spectrum = np.abs(np.fft.rfft(mono[: 1 << 18, 0]))
    freqs = np.fft.rfftfreq(1 << 18, 1 / 44100)
    assert spectrum[freqs > 11500].max() < 1e-3 * spectrum.max()
    assert summary["recordings"] == 5 and summary["estimated"] == {"key": 5, "bpm": 5, "genre": 0, "mood": 0}
    assert summary["unlabelled"] == 5 and len(summary["warnings"]) == 5


def test_hand_labels_win_and_the_record_says_which_fields_are_whose(project):
    rec = project.root / "rec"
    write_recording(rec / "a.wav", band_audio(*A_MINOR_120))
    write_recording(rec / "b.flac", band_audio(*D_MAJOR_96))
    _labels(project, [
        {"file": "a.wav", "artist": "Trio", "title": "Night", "key": "C major", "bpm": "60", "meter": "4/4",
         "instruments": "drums; Bass Guitar; piano", "genre": "jazz", "mood": "calm; dark", "licence": "CC-BY-4.0"},
        {"file": "b.flac", "key": "d", "estimated": "key"},
    ])  # fmt: skip
    _params(project)
    code, songs, fails, _ = _run(project)
    assert code == 0 and not fails
    a, b = songs["a.wav"], songs["b.flac"]
    # a person's labels beat the estimates, even where the estimator disagrees (it hears A minor, 120)
    assert (a.key, a.bpm, a.meter) == ("C major", 60.0, "4/4")
    assert a.estimates.key == "A minor" and a.estimates.bpm == pytest.approx(120, rel=0.02)  # kept for audit
    assert set(a.hand) == {"artist", "title", "instruments", "genre", "mood", "key", "bpm", "meter", "licence"}
    assert a.estimated == [] and a.licence == "CC-BY-4.0" and a.mood_tags == ["calm", "dark"]
    assert [(i.name, i.family) for i in a.instruments] == [(None, "Drums"), ("Electric Bass (finger)", "Bass"),
                                                           ("Acoustic Grand Piano", "Piano")]  # fmt: skip
    # a key still marked `estimated` is not a hand label: the estimate decides
    assert (b.key, b.bpm, b.estimated, b.hand) == ("D major", pytest.approx(96, rel=0.02), ["bpm", "key"], [])
    assert a.id.startswith("trio__night__") and b.id.startswith("unknown__b__")


def test_an_unsure_estimate_is_withheld_and_counted(project):
    write_recording(project.root / "rec" / "a.wav", band_audio(*A_MINOR_120))
    _params(project, min_key_strength=0.99, min_tempo_confidence=5.3)
    code, songs, _, summary = _run(project)
    s = songs["a.wav"]
    assert code == 0 and (s.key, s.bpm, s.estimated) == (None, None, [])
    assert "key strength" in s.withheld["key"] and "beat confidence" in s.withheld["bpm"]
    assert summary["withheld"] == {"key": 1, "bpm": 1, "genre": 0, "mood": 0}


def test_draft_edit_run(project):
    rec = project.root / "rec"
    write_recording(rec / "a.wav", band_audio(*A_MINOR_120))
    write_recording(rec / "sub" / "b.ogg", band_audio(*D_MAJOR_96), 48000)
    _labels(project, [{"file": "a.wav", "genre": "funk"}])
    _params(project)
    assert stage.main(root=project.root, argv=["--draft-labels"]) == 0
    assert (rec / "labels.csv.bak").exists()  # the person's file is kept
    draft = read_labels(rec / "labels.csv")
    assert not draft.errors and sorted(draft.rows) == ["a.wav", "sub/b.ogg"]
    a, b = draft.rows["a.wav"], draft.rows["sub/b.ogg"]
    assert a.genre == ["funk"] and a.key == "A minor" and a.bpm == pytest.approx(120, rel=0.02)
    assert a.estimated == ["bpm", "key"] and b.estimated == ["bpm", "key"] and b.key == "D major"
    assert (b.artist, b.title) == ("sub", "b")
    text = (rec / "labels.csv").read_text()
    assert "bpm_confidence" in text.splitlines()[0]  # the estimators' confidence beside, for the person
    # the person confirms a's BPM, corrects b's key, and runs the stage
    rows = list(csv.DictReader(io.StringIO((rec / "labels.csv").read_text())))
    rows[0]["estimated"] = "key"
    rows[1]["key"], rows[1]["estimated"] = "B minor", "bpm"
    _labels(project, rows)
    code, songs, fails, _ = _run(project)
    assert code == 0 and not fails
    assert "bpm" in songs["a.wav"].hand and songs["a.wav"].estimated == ["key"]
    assert songs["sub/b.ogg"].key == "B minor" and "key" in songs["sub/b.ogg"].hand
    # JSONL works the same way
    assert stage.main(root=project.root, argv=["--draft-labels", str(rec / "labels.jsonl")]) == 0
    assert sorted(read_labels(rec / "labels.jsonl").rows) == ["a.wav", "sub/b.ogg"]


def test_bad_input_fails_only_its_own_item_and_says_why(project):
    rec = project.root / "rec"
    write_recording(rec / "good.wav", band_audio(*A_MINOR_120))
    (rec / "garbage.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    write_recording(rec / "silent.flac", np.zeros((SR * 10, 2), dtype=np.float32))
    write_recording(rec / "short.wav", band_audio(*A_MINOR_120)[: SR * 2])
    _labels(project, [
        {"file": "good.wav", "instruments": "piano; theremin", "key": ""},
        {"file": "missing.wav", "key": "A minor"},
        {"file": "silent.flac", "key": "H major"},
        {"file": "short.wav", "meter": "4/5"},
    ])  # fmt: skip
    _params(project)
    code, songs, fails, summary = _run(project)
    assert code == 0 and list(songs) == ["good.wav"]
    reasons = {f.id: f.reason for f in fails}
    assert "cannot decode garbage.wav" in reasons["garbage.wav"]
    assert "labels a file the folder does not hold" in reasons["missing.wav"]
    assert "not a key: 'H major'" in next(r for k, r in reasons.items() if "silent.flac" in k)
    assert "not a meter: '4/5'" in next(r for k, r in reasons.items() if "short.wav" in k)
    assert "silent" in reasons["silent.flac"] and "shorter than recordings.min_duration_s" in reasons["short.wav"]
    assert [i.name for i in songs["good.wav"].instruments] == ["Acoustic Grand Piano"]
    assert any("'theremin' is not in the GM vocabulary" in w["reason"] for w in summary["warnings"])
    assert not list((project.out("recordings").dir / "audio").rglob("*.tmp"))


def test_no_audio_is_empty_outputs_and_a_missing_folder_stops_before_anything(project):
    (project.root / "rec").mkdir()
    _params(project)
    code, songs, fails, summary = _run(project)
    assert (code, songs, fails, summary["recordings"]) == (0, {}, [], 0)
    _params(project, path="nowhere")
    assert stage.main(root=project.root, argv=[]) == 2
    assert project.out("recordings").summary.exists()  # the previous outputs stay


def test_a_file_past_full_scale_is_brought_under_it_not_clipped(project):
    loud = band_audio(*A_MINOR_120) * 3.0  # peaks at +3.5 dBFS, as float WAVs can
    write_recording(project.root / "rec" / "hot.wav", loud, SR, 2, "FLOAT")
    _params(project)
    code, songs, _, _ = _run(project)
    s = songs["hot.wav"]
    y, _ = sf.read(str(project.root / s.audio), dtype="float32")
    assert code == 0 and s.gain_db < -3.5 and np.abs(y).max() <= 0.999
    np.testing.assert_allclose(y, loud * 10 ** (s.gain_db / 20), atol=2e-5)  # the same audio, lower


def test_the_same_inputs_give_the_same_bytes(project, tmp_path):
    write_recording(project.root / "rec" / "a.ogg", band_audio(*D_MAJOR_96), 48000)
    _params(project)
    _run(project)
    out = project.out("recordings")
    first = (out.manifest.read_bytes(), {p.name: p.read_bytes() for p in (out.dir / "audio").rglob("*.flac")})
    _run(project)
    assert (out.manifest.read_bytes(), {p.name: p.read_bytes() for p in (out.dir / "audio").rglob("*.flac")}) == first


@pytest.mark.parametrize(
    ("text", "key"),
    [("A minor", "A minor"), ("am", "A minor"), ("F# maj", "F# major"), ("Bb", "Bb major"), ("C#m", "C# minor"),
     ("db major", "C# major")],
)  # fmt: skip
def test_keys_are_read_in_the_spellings_people_write(text, key):
    assert normalise_key(text) == key


def test_label_studio_round_trip_keeps_every_field_and_a_labellers_answer_becomes_a_hand_label(project, tmp_path):
    from pipeline.recordings.labelstudio import export_tasks, import_tasks, label_config

    rows = [
        {"file": "a.wav", "artist": "Trio", "title": "Night", "instruments": "drums; upright bass", "genre": "jazz",
         "mood": "calm; dark", "key": "A minor", "bpm": "121.5", "meter": "4/4", "description": "brushes, walking bass",
         "licence": "CC-BY-4.0", "attribution": "The Trio", "estimated": "key"},
        {"file": "sub/b.ogg", "bpm": "96.05", "key": "D major", "genre": "electronic; ambient", "mood": "chill",
         "estimated": "bpm; genre; key; mood"},  # the tagger's drafts go as predictions too
    ]  # fmt: skip
    (project.root / "rec").mkdir()
    labels = read_labels(_labels(project, rows))
    assert not labels.errors
    tasks = export_tasks(list(labels.rows.values()), lambda f: f"/data/local-files/?d=rec/{f}")
    assert tasks[0]["data"] == {"audio": "/data/local-files/?d=rec/a.wav", "file": "a.wav"}
    assert {r["from_name"] for r in tasks[0]["predictions"][0]["result"]} == {"key"}  # estimates to confirm
    assert "annotations" not in tasks[1]
    config = label_config()
    for name in ("key", "bpm", "instruments", "attribution"):  # a control per column, named as it
        assert f'name="{name}"' in config
    # Label Studio's export: the same tasks with ids, timestamps and a cancelled attempt
    exported = json.loads(json.dumps(tasks))
    for i, t in enumerate(exported):
        t["id"] = i + 1
        t.setdefault("annotations", []).insert(0, {"was_cancelled": True, "result": []})
    back, errors = import_tasks(exported)
    assert not errors and {r.file: r for r in back} == labels.rows  # every field, hand or estimated, kept
    # a labeller confirms b's key (choices) and writes its instruments (a TextArea, one per line)
    exported[1]["annotations"].append({"result": [
        {"from_name": "key", "to_name": "audio", "type": "choices", "value": {"choices": ["D major"]}},
        {"from_name": "instruments", "to_name": "audio", "type": "textarea", "value": {"text": ["piano\nbass"]}},
    ]})  # fmt: skip
    (_, b), _ = import_tasks(exported)
    assert b.estimated == ["bpm", "genre", "mood"] and b.key == "D major" and b.instruments == ["piano", "bass"]
    assert b.genre == ["electronic", "ambient"] and b.mood == ["chill"]
    assert set(b.hand_fields()) == {"key", "instruments"}
    # the stage's commands write both files and read the export back into the labels file
    _params(project)
    out = tmp_path / "tasks.json"
    assert stage.main(root=project.root, argv=["--labelstudio-export", str(out)]) == 0
    assert json.loads(out.read_text()) == tasks and out.with_suffix(".xml").read_text() == config
    (tmp_path / "export.json").write_text(json.dumps(exported))
    assert stage.main(root=project.root, argv=["--labelstudio-import", str(tmp_path / "export.json")]) == 0
    again = read_labels(project.root / "rec" / "labels.csv")
    assert again.rows["sub/b.ogg"] == b and again.rows["a.wav"] == labels.rows["a.wav"]
    assert (project.root / "rec" / "labels.csv.bak").exists()

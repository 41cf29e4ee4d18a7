"""Genre and mood drafts from the audio tagger (musicnn in .venv-tagger): drafts fill only what a person
left empty, are marked `estimated`, and no run states them until a person confirms them."""

from __future__ import annotations

import csv
import io
import json
import os
import sys

import pytest

from pipeline.io.manifest import read_manifest
from pipeline.params import TaggerParams
from pipeline.recordings.labels import read_labels
from pipeline.recordings.tagger import GENRES, MOODS, TagDraft, draft_tags, run_tagger, with_tag_draft
from pipeline.records import RecordingSong
from stages import recordings as stage
from tests.conftest import REPO
from tests.recording_factory import band_audio, write_recording

TAGGER = REPO / ".venv-tagger" / "bin" / "python"
A_MINOR_120 = (120.0, 9, True, 12)


def _labels(path, rows):
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=sorted({k for r in rows for k in r}))
        writer.writeheader()
        writer.writerows(rows)


def test_drafted_words_are_the_likeliest_tags_above_the_threshold_in_the_labels_vocabulary():
    tags = ["rock", "jazz", "Hip-Hop", "80s", "female vocalists", "Mellow", "chillout", "chill", "sad"]
    probs = [0.10, 0.40, 0.30, 0.90, 0.95, 0.20, 0.35, 0.50, 0.26]
    p = TaggerParams(min_probability=0.25, max_genres=2, max_moods=2)
    d = draft_tags(probs, tags, p)
    # decades and vocalists say no genre or mood; two MSD tags for one word count once, at the higher
    assert d.genre == ["jazz", "hip hop"] and d.mood == ["chill", "sad"]
    assert d.scores["chill"] == 0.5 and "80s" not in d.scores
    assert draft_tags(probs, tags, TaggerParams(min_probability=0.45, max_genres=2, max_moods=2)).genre == []
    assert draft_tags(probs, tags, TaggerParams(max_genres=1, max_moods=0)).mood == []


def test_a_draft_fills_only_what_a_person_left_empty_and_marks_it_estimated():
    draft = TagDraft(["jazz"], ["chill"], {"jazz": 0.4, "chill": 0.5})
    empty = with_tag_draft({"file": "a.wav", "estimated": ["key"]}, draft)
    assert (empty["genre"], empty["mood"], empty["estimated"]) == (["jazz"], ["chill"], ["genre", "key", "mood"])
    assert empty["tag_scores"] == "jazz 0.40; chill 0.50"
    hand = with_tag_draft({"file": "a.wav", "genre": ["funk"], "estimated": []}, draft)
    assert hand["genre"] == ["funk"] and hand["estimated"] == ["mood"]  # the person's genre stays, unmarked
    # an earlier draft still marked estimated is replaced; a draft with no word leaves the field empty
    redo = with_tag_draft({"file": "a.wav", "genre": ["pop"], "estimated": ["genre"]}, TagDraft([], [], {}))
    assert redo["genre"] == [] and redo["estimated"] == []
    assert with_tag_draft({"file": "a.wav"}, None) == {"file": "a.wav"}


def test_no_run_states_a_genre_or_mood_nobody_confirmed(project):
    rec = project.root / "rec"
    write_recording(rec / "a.wav", band_audio(*A_MINOR_120))
    write_recording(rec / "b.wav", band_audio(*A_MINOR_120), 48000)
    _labels(rec / "labels.csv", [
        {"file": "a.wav", "instruments": "piano", "genre": "jazz", "mood": "chill", "estimated": "genre; mood"},
        {"file": "b.wav", "instruments": "piano", "genre": "jazz", "mood": "chill", "estimated": "mood"},
    ])  # fmt: skip
    project.params(recordings={"path": "rec"})
    assert stage.main(root=project.root, argv=[]) == 0
    out = project.out("recordings")
    songs = {s.source: s for s in read_manifest(out.manifest, RecordingSong)}
    a, b = songs["a.wav"], songs["b.wav"]
    assert (a.genre_tags, a.mood_tags) == ([], []) and set(a.withheld) >= {"genre", "mood"}
    assert "not confirmed" in a.withheld["genre"]
    assert (b.genre_tags, b.mood_tags) == (["jazz"], []) and "genre" in b.hand and "mood" in b.withheld
    summary = json.loads(out.summary.read_text())
    assert summary["withheld"]["genre"] == 1 and summary["withheld"]["mood"] == 2


def test_a_tagger_that_cannot_run_leaves_a_draft_of_the_other_estimates(project, caplog):
    rec = project.root / "rec"
    write_recording(rec / "a.wav", band_audio(*A_MINOR_120))
    # the data environment's Python has no tensorflow: the tagger process fails and says so
    project.params(recordings={"path": "rec", "tagger": {"python": sys.executable}})
    assert stage.main(root=project.root, argv=["--draft-labels"]) == 0
    a = read_labels(rec / "labels.csv").rows["a.wav"]
    assert a.key == "A minor" and a.genre == [] and a.estimated == ["bpm", "key"]
    assert "no genre or mood drafts: the tagger" in caplog.text and "tensorflow" in caplog.text
    project.params(recordings={"path": "rec", "tagger": {"python": "no/such/python"}})
    assert stage.main(root=project.root, argv=["--draft-labels"]) == 0
    assert "make tagger-env" in caplog.text


@pytest.mark.slow
@pytest.mark.skipif(not TAGGER.exists(), reason="no .venv-tagger (make tagger-env; make test builds it)")
def test_musicnn_drafts_genre_and_mood_a_person_confirms(project):
    rec = project.root / "rec"
    write_recording(rec / "a.wav", band_audio(*A_MINOR_120))
    write_recording(rec / "b.flac", band_audio(96.0, 2, False, 10), 22050, 1)
    (rec / "c.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)  # one unreadable file
    _labels(rec / "labels.csv", [{"file": "a.wav", "genre": "funk", "instruments": "piano"}])
    project.params(recordings={"path": "rec", "tagger": {"python": str(TAGGER), "min_probability": 0.05}})
    assert stage.main(root=project.root, argv=["--draft-labels"]) == 0
    draft = read_labels(rec / "labels.csv")
    a, b = draft.rows["a.wav"], draft.rows["b.flac"]
    assert a.genre == ["funk"] and "genre" not in a.estimated  # the person's genre is kept as written
    # at a low threshold the real model proposes words for every audible file, all from the vocabulary
    assert b.genre and set(b.genre) <= set(GENRES.values()) and set(b.mood) <= set(MOODS.values())
    assert "genre" in b.estimated and ("mood" in b.estimated) == bool(b.mood) and set(a.mood) <= set(MOODS.values())
    rows = list(csv.DictReader(io.StringIO((rec / "labels.csv").read_text())))
    scores = {r["file"]: r["tag_scores"] for r in rows}
    assert b.genre[0] in scores["b.flac"]  # the scores behind the draft, for the person
    # the run states none of b's drafted words until the person confirms the genre
    assert stage.main(root=project.root, argv=[]) == 0
    songs = {s.source: s for s in read_manifest(project.out("recordings").manifest, RecordingSong)}
    assert songs["b.flac"].genre_tags == [] and "genre" in songs["b.flac"].withheld
    assert songs["a.wav"].genre_tags == ["funk"]


FAKE_TAGGER = """
import json, os, sys, time
tags = json.loads(sys.argv[1])
job = json.load(sys.stdin)
print(json.dumps({"tags": tags}), flush=True)
for path in job["files"]:
    name = os.path.basename(path)
    if name.startswith("crash"):
        print("Fatal Python error: Segmentation fault", file=sys.stderr, flush=True)
        os._exit(139)
    if name.startswith("hang"):
        time.sleep(600)
    probs = [0.9 if t == "jazz" else 0.0 for t in tags]
    print(json.dumps({"file": path, "probabilities": probs, "error": None}), flush=True)
"""


def test_a_file_that_hangs_or_kills_the_tagger_loses_only_its_own_draft(tmp_path):
    """The tagger's time is bounded per file, not per folder: a file it hangs or dies on gets the
    reason, and a fresh tagger process goes on with the files after it."""
    (tmp_path / "fake_tagger.py").write_text(FAKE_TAGGER)
    python = tmp_path / "python"  # run as `python -m pipeline.analysis.musicnn`, like the real one
    tags = json.dumps([*GENRES, *MOODS])
    python.write_text(f"#!/bin/sh\nexec {sys.executable} {tmp_path / 'fake_tagger.py'} '{tags}'\n")
    python.chmod(0o755)
    files = [tmp_path / n for n in ("a.wav", "hang.wav", "b.wav", "crash.wav", "c.wav")]
    drafts = run_tagger(files, TaggerParams(python=str(python), timeout_s=5), tmp_path)
    genres = {f.name: d.genre if isinstance(d, TagDraft) else None for f, d in drafts.items()}
    assert genres == {"a.wav": ["jazz"], "hang.wav": None, "b.wav": ["jazz"], "crash.wav": None, "c.wav": ["jazz"]}
    assert drafts[files[1]] == "the tagger took longer than recordings.tagger.timeout_s (5 s)"
    assert drafts[files[3]] == "the tagger process died on this file: Fatal Python error: Segmentation fault"


@pytest.mark.slow
@pytest.mark.skipif(not TAGGER.exists(), reason="no .venv-tagger (make tagger-env; make test builds it)")
def test_the_real_tagger_stuck_on_a_file_that_never_opens_tags_the_rest(tmp_path):
    """A FIFO with no writer blocks the real tagger's open() the way a dead network share does."""
    write_recording(tmp_path / "a.wav", band_audio(*A_MINOR_120))
    os.mkfifo(tmp_path / "stuck.wav")
    write_recording(tmp_path / "b.flac", band_audio(96.0, 2, False, 10), 22050, 1)
    files = [tmp_path / "a.wav", tmp_path / "stuck.wav", tmp_path / "b.flac"]
    drafts = run_tagger(files, TaggerParams(python=str(TAGGER), timeout_s=60, min_probability=0.05), tmp_path)
    assert isinstance(drafts[files[0]], TagDraft) and isinstance(drafts[files[2]], TagDraft)
    assert drafts[files[1]] == "the tagger took longer than recordings.tagger.timeout_s (60 s)"
    assert drafts[files[2]].genre  # tagged by the restarted tagger

"""Labels on real MIDI's flaws: every stated key, BPM and meter is true of its clip, or not stated.

The first five songs of the messy set hold every flaw (pipeline/sample/messy.py):
a key signature contradicting the notes, none at all, modulations with and without
signature events, tempo ramps and steps, a pickup bar and meter changes inside
phrases, drum-only intros and outros, doubled parts, 14 instruments, a near-silent
track, a drum kit the SoundFont lacks, 6/8, and a notated 200 BPM felt at 100.
The fifth adds a modulation with a signature event and 16 tracks. They run through
ingest -> clip, and every clip is checked against the truth.
"""

from __future__ import annotations

import json

import pytest

from pipeline.clips.truth import truth_of_clips
from pipeline.io.manifest import read_manifest
from pipeline.records import Clip, Failure, RenderSong, Song, SplitSong
from pipeline.sample import truth as span

pytestmark = pytest.mark.slow
STAGES = ("ingest", "split", "render", "mix", "tag", "metadata", "clip")


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    from tests.conftest import Project

    project = Project(tmp_path_factory.mktemp("messy"))
    project.params(run={"workers": 2}, ingest={"source": "sample", "sample": {"songs": 5, "set": "messy"}},
                   metadata={"cache_dir": str(project.root / "cache")})  # fmt: skip
    for stage in STAGES:
        assert project.run(stage) == 0, stage
    songs = list(read_manifest(project.out("ingest").manifest, Song))
    truths = {s.id: json.loads((project.root / s.truth).read_text()) for s in songs}
    clips = list(read_manifest(project.out("clip").manifest, Clip))
    return project, truths, clips


def _span(c: Clip) -> tuple[float, float]:
    """The clip's bars, a millisecond inside its bar lines (both sides round times to the microsecond)."""
    return c.seconds_start + 1e-3, c.seconds_start + c.seconds_total - c.padded_s - 1e-3


def test_the_five_songs_hold_every_flaw(messy):
    _, truths, _ = messy
    flaws = {f for t in truths.values() for f in t["flaws"]}
    assert len(flaws) >= 12, flaws


def test_every_stated_key_is_the_truth_and_drum_only_clips_state_none(messy):
    project, _, clips = messy
    truth_of = truth_of_clips(read_manifest(project.out("ingest").manifest, Song), project.root)
    stated = wrong = tonal = tonal_stated = 0
    for c in clips:
        t = truth_of(c)
        if t.drums_only:
            assert c.key is None and not c.key_evidence.tonal, c.id
        if c.key is not None:
            stated += 1
            wrong += c.key != t.key
        if t.key is not None:
            tonal += 1
            tonal_stated += c.key is not None
    # These songs are among the hardest of the set (natural minor, whose notes are its relative major's,
    # and a song that opens on vi): 103 of 112 stated keys are right, 112 of 134 tonal clips state one.
    # The whole 24-song set reaches 0.97 and 0.89 (benchmarks/labels.py; README "Label policies").
    assert stated and wrong / stated <= 0.1, (wrong, stated)
    assert tonal_stated / tonal >= 0.8, (tonal_stated, tonal)


def test_a_wrong_key_signature_never_labels_a_clip(messy):
    """Songs whose signature contradicts their notes: no clip states the signature's key against the truth."""
    _, truths, clips = messy
    checked = 0
    for c in clips:
        truth = truths[c.song_id]
        sig = c.key_evidence.signature
        if sig is not None and c.key_evidence.tonal and sig != span.truth_key(truth, *_span(c)):
            checked += 1
            assert c.key != sig, c.id
    assert checked >= 2  # the C-major-on-a-minor-song and fifth-off signatures were seen


def test_modulations_give_clips_different_keys(messy):
    """A song that modulates states each section's own key on its clips (the whole-step move up)."""
    _, truths, clips = messy
    moved = [sid for sid, t in truths.items() if t.get("modulations")]
    assert moved
    right = {
        sid: {c.key for c in clips if c.song_id == sid and c.key and c.key == span.truth_key(truths[sid], *_span(c))}
        for sid in moved
    }
    assert any(len(keys) >= 2 for keys in right.values()), right


def test_clips_across_a_tempo_change_state_no_bpm_and_steady_clips_state_the_midi_tempo(messy):
    _, truths, clips = messy
    withheld = 0
    for c in clips:
        slowest, fastest, weighted = span.truth_tempo(truths[c.song_id], *_span(c))
        ev = c.tempo_evidence
        assert (ev.min_bpm, ev.max_bpm) == pytest.approx((slowest, fastest), rel=1e-4)
        if fastest > slowest * 1.02:
            assert c.bpm is None and not ev.steady and ev.withheld, c.id
            withheld += 1
        else:
            assert c.bpm == pytest.approx(weighted, rel=1e-3), c.id
    assert withheld >= 2


def test_the_felt_level_of_a_fast_song_is_half_its_notation(messy):
    _, truths, clips = messy
    fast = [sid for sid, t in truths.items() if t["felt_tempo"]["factor"] == 0.5]
    assert fast
    felt = [c.tempo_evidence for c in clips if c.song_id in fast and c.kind == "mix" and c.bpm is not None]
    assert felt
    agreeing = [ev for ev in felt if ev.felt_source == "audio"]
    assert agreeing and all(ev.felt_factor == 0.5 for ev in agreeing)


def test_meter_is_stated_only_where_every_bar_has_it(messy):
    _, truths, clips = messy
    withheld = 0
    for c in clips:
        meters = span.truth_meters(truths[c.song_id], *_span(c))
        if len(meters) == 1:
            assert c.time_signature == meters[0], c.id
        else:
            assert c.time_signature is None and c.meter_evidence.meters == meters, c.id
            withheld += 1
    assert withheld >= 1  # the pickup bar and the 2/4 bar inside a verse


def test_near_silent_tracks_are_never_named_and_a_missing_kit_plays_the_standard_kit(messy):
    project, truths, clips = messy
    names = {t.id: t.track_name for s in read_manifest(project.out("split").manifest, SplitSong) for t in s.tracks}
    silent = {(sid, n) for sid, t in truths.items() for n in span.truth_silent_tracks(t)}
    assert silent
    for c in clips:
        assert not {(c.song_id, names[i.track_id]) for i in c.instruments} & silent, c.id
    assert not list(read_manifest(project.out("render").failures, Failure))  # no track lost
    songs = read_manifest(project.out("render").manifest, RenderSong)
    drums = {s.id: [t for t in s.tracks if t.is_drum] for s in songs}
    missing_kit = [sid for sid, t in truths.items() if not t["drum_kit"]["in_soundfont"]]
    assert missing_kit
    for sid, tracks in drums.items():
        for t in tracks:
            assert (t.fallback is not None) == (sid in missing_kit), t.id
            assert t.patch_detail.endswith("bank 128 preset 0") or sid not in missing_kit, t.id


def test_the_summary_scores_the_labels_against_the_truth(messy):
    project, _, _ = messy
    summary = json.loads(project.out("clip").summary.read_text())
    scores, counts = summary["labels_vs_truth"], summary["labels"]
    assert scores["keys_on_drums_only"] == 0 and counts["keys_on_atonal_clips"] == 0
    assert scores["key_exact_of_stated"] >= 0.9 and scores["meter_right_of_stated"] == 1.0
    assert scores["bpm_within_1pct_of_stated"] == 1.0
    assert counts["bpm_withheld"] and counts["key_withheld"]
    keys = (project.out("clip").out("audit") / "keys.csv").read_text().splitlines()
    assert keys[0].startswith("id,notes,audio,signature,stated") and len(keys) > 1

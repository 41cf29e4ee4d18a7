"""Stage `clip` end to end on a rendered song with a section change, a rest and a short tail."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from pipeline.io.manifest import read_manifest
from pipeline.records import Clip, MixSong
from tests.midi_factory import TrackSpec, midi_bytes, write

BAR = 1920  # ticks per 4/4 bar at 480 ppq: 2 s at 120 BPM


def _song() -> bytes:
    """Piano chords in bars 0-7; bass in bars 0-15 and 18; drums in bars 8-15; silence in bars 16-17."""
    piano = TrackSpec("Piano", program=0, channel=0)
    bass = TrackSpec("Bass", program=33, channel=1)
    drums = TrackSpec("Drums", channel=9)
    for b in range(8):
        piano.notes += [(p, b * BAR, b * BAR + BAR - 20, 80) for p in (55, 59, 62)]
    for b in [*range(16), 18]:
        bass.notes += [(43 + 2 * (q % 2), b * BAR + q * 480, b * BAR + q * 480 + 400, 90) for q in range(4)]
    for b in range(8, 16):
        drums.notes += [(36 if q % 2 == 0 else 38, b * BAR + q * 480, b * BAR + q * 480 + 120, 100) for q in range(4)]
    return midi_bytes([piano, bass, drums], key="G")


@pytest.fixture(scope="module")
def clipped(tmp_path_factory):
    from tests.conftest import Project

    project = Project(tmp_path_factory.mktemp("clip"))
    write(project.root / "in" / "Band" / "Song.mid", _song())
    project.params(run={"workers": 2}, ingest={"source": "dir", "path": "in"})
    for stage in ("ingest", "split", "render", "mix", "tag", "metadata", "clip"):
        assert project.run(stage) == 0, stage
    clips = {c.id.split("/", 1)[1]: c for c in read_manifest(project.out("clip").manifest, Clip)}
    return project, clips


def test_clips_fall_on_bars_inside_sections(clipped):
    project, clips = clipped
    summary = json.loads(project.out("clip").summary.read_text())
    assert sorted(clips) == ["c000", "c000-t01", "c001", "c001-t01", "c003", "c003-t01"]
    c0, c1, c3 = clips["c000"], clips["c001"], clips["c003"]
    # The piano leaves and the drums enter at bar 8: a section line. The silent bars 16-17 make no clip;
    # bar 18 is a 1-bar tail padded with a silent bar up to the shortest count (2).
    assert [(c.bar_start, c.bars, c.section) for c in (c0, c1, c3)] == [(0, 8, 0), (8, 8, 1), (18, 2, 1)]
    assert [c.seconds_start for c in (c0, c1, c3)] == pytest.approx([0.0, 16.0, 36.0], abs=1e-6)
    assert [c.seconds_total for c in (c0, c1, c3)] == pytest.approx([16.0, 16.0, 4.0], abs=1e-4)
    assert c3.padded_s >= 2.0 and not c3.loopable and c0.loopable
    assert summary["dropped"] == 1 and summary["dropped_reasons"] == {"no notes start in its bars": 1}
    assert summary["clips"] == 6 and summary["splits"] == {"train": 6, "validation": 0, "test": 0}
    assert summary["hours"] == pytest.approx(2 * 36 / 3600, abs=1e-4)  # 3 mix + 3 stem clips


def test_clip_metadata_describes_its_own_span(clipped):
    _, clips = clipped
    assert [i.name for i in clips["c000"].instruments] == ["Acoustic Grand Piano", "Electric Bass (finger)"]
    assert [i.family for i in clips["c001"].instruments] == ["Bass", "Drums"]
    assert [i.notation.role for i in clips["c001"].instruments] == ["bassline", "drums"]
    assert [i.name for i in clips["c001-t01"].instruments] == ["Electric Bass (finger)"]  # the monophonic stem
    for name, c in clips.items():
        assert c.bpm == pytest.approx(120.0) and c.time_signature == "4/4"
        assert c.tempo_evidence.steady and c.tempo_evidence.felt_factor == 1.0
        if name.startswith("c003"):  # a 1-bar tail of 4 bass notes: too little to carry a key
            assert c.key is None and c.key_evidence.withheld.startswith("not tonal: only 4 pitched notes")
        else:  # the notes, the clip's audio and the G major signature agree
            assert c.key == "G major" and (c.key_evidence.notes, c.key_evidence.audio) == ("G major", "G major")
        assert c.split == "train" and c.fx == [] and c.label_sources["bpm"] == "midi"
        assert all(i.alternatives and i.patch == i.alternatives[0] for i in c.instruments)


def test_clip_files_are_16_bit_stereo_wavs_cut_from_the_mix(clipped):
    project, clips = clipped
    mix = next(read_manifest(project.out("mix").manifest, MixSong))
    full, sr = sf.read(project.root / mix.mix, dtype="float32", always_2d=True)
    for c in clips.values():
        info = sf.info(project.root / c.audio)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (44100, 2, "PCM_16", "WAV")
        assert info.frames == round(c.seconds_total * sr)
        assert json.loads((project.root / c.sidecar).read_text()) == c.model_dump(mode="json")
    c1 = clips["c001"]
    x, _ = sf.read(project.root / c1.audio, dtype="float32", always_2d=True)
    s0 = round(c1.seconds_start * sr)
    np.testing.assert_allclose(x, full[s0 : s0 + len(x)], atol=1.5 / 32768)


def test_clip_midi_span_starts_at_the_clip(clipped):
    project, clips = clipped
    pm = pretty_midi.PrettyMIDI(str(project.root / clips["c001"].midi))
    assert [i.is_drum for i in pm.instruments] == [i.is_drum for i in clips["c001"].instruments]
    bass = pm.instruments[clips["c001"].instruments[0].midi_track]
    assert len(bass.notes) == 32 and bass.notes[0].start == pytest.approx(0.0)
    assert max(n.end for n in bass.notes) <= 16.0 + 1e-6
    assert pm.get_tempo_changes()[1][0] == pytest.approx(120.0)
    assert clips["c001-t01"].midi == clips["c001"].midi


def test_clip_is_deterministic_and_drops_silence_with_a_reason(clipped):
    project, _ = clipped
    out = project.out("clip")

    def digest() -> str:
        h = hashlib.sha256(out.manifest.read_bytes())
        for wav in sorted(out.out("audio").rglob("*.wav")):
            h.update(wav.read_bytes())
        return h.hexdigest()

    before = digest()
    assert project.run("clip") == 0
    assert digest() == before
    project.params(run={"workers": 1}, ingest={"source": "dir", "path": "in"}, clip={"silence_lufs": -10.0})
    assert project.run("clip") == 1  # every clip is quieter than -10 LUFS: nothing succeeds
    summary = json.loads(out.summary.read_text())
    # three spans, each dropped with its solo stem once the mix is found near-silent
    assert summary["clips"] == 0 and summary["dropped_reasons"]["near-silent"] == 3
    project.params(run={"workers": 2}, ingest={"source": "dir", "path": "in"})
    assert project.run("clip") == 0 and digest() == before

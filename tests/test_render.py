"""Stage `render` with real FluidSynth: timing, pitch, drums, patches, failures, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from pipeline.io.manifest import read_manifest
from pipeline.params import parse_params
from pipeline.records import Failure, RenderSong, SplitSong, Track
from pipeline.render.events import instrument_events
from pipeline.render.fluid import SoundFontBackend
from pipeline.render.patches import choose_patch
from tests.audio_checks import centroid_hz, dominant_hz, onsets
from tests.midi_factory import TrackSpec, midi_bytes, write

PPQ = 480
TEMPOS = [(0, 500_000), (4 * PPQ, 400_000), (8 * PPQ, 666_667)]  # 120, 150, 90 BPM


def _render(project, tmp_path, tracks, tempos=None, render=None, name="song.mid"):
    write(tmp_path / "in" / name, midi_bytes(tracks, tempos=tempos, ppq=PPQ))
    project.params(ingest={"source": "dir", "path": str(tmp_path / "in")}, render=render or {})
    assert project.run("ingest") == 0 and project.run("split") == 0
    code = project.run("render")
    songs = list(read_manifest(project.out("render").manifest, RenderSong)) if code == 0 else []
    fails = (
        list(read_manifest(project.out("render").failures, Failure)) if project.out("render").failures.exists() else []
    )
    return code, songs, fails


def _audio(project, track):
    x, sr = sf.read(str(project.root / track.audio), dtype="float32")
    return x, sr


def test_onsets_follow_the_tempo_map(project, tmp_path):
    import pretty_midi

    clicks = [(76, q * PPQ, q * PPQ + PPQ // 8, 120) for q in range(12)]  # woodblock on every beat
    code, (song,), _ = _render(project, tmp_path, [TrackSpec("Block", 115, 0, notes=clicks)], tempos=TEMPOS)
    assert code == 0
    expected = [n.start for n in pretty_midi.PrettyMIDI(str(tmp_path / "in/song.mid")).instruments[0].notes]
    assert expected[5] - expected[4] == pytest.approx(0.4) and expected[9] - expected[8] == pytest.approx(
        2 / 3, abs=1e-4
    )
    x, sr = _audio(project, song.tracks[0])
    got = onsets(x, sr)
    assert len(got) == len(expected)
    assert np.max(np.abs(got - expected)) < 0.005  # within 5 ms, tempo changes included


def test_a_single_note_sounds_at_its_pitch(project, tmp_path):
    _, (song,), _ = _render(project, tmp_path, [TrackSpec("Flute", 73, 0, notes=[(69, 0, 2 * PPQ, 100)])])
    x, sr = _audio(project, song.tracks[0])
    assert dominant_hz(x[int(0.3 * sr) : int(0.9 * sr)], sr) == pytest.approx(440.0, rel=0.01)
    t = song.tracks[0]
    assert (t.backend, t.patch, t.rule) == ("soundfont", "gm", "pipes")
    assert t.patch_detail == "soundfont TimGM6mb.sf2 bank 0 preset 73"
    assert t.alternatives[:4] == ["gm", "flute", "pan-flute", "recorder"]
    assert t.alternatives[4:8] == [f"{p}@FluidR3_GM" for p in t.alternatives[:4]]  # render.alternative_soundfonts
    # the stem starts at the song's time zero and ends after the release, trimmed
    assert 1.0 <= t.duration_s <= 1.0 + 2.0


def test_drums_render_as_a_kit_not_a_piano(project, tmp_path):
    hats = [(42, q * PPQ // 2, q * PPQ // 2 + 60, 110) for q in range(8)]
    drums = TrackSpec("Drums", 0, 9, notes=hats)
    piano = TrackSpec("Piano", 0, 0, notes=hats)
    _, (song,), _ = _render(project, tmp_path, [drums, piano])
    by_name = {t.track_name: t for t in song.tracks}
    kit, keys = by_name["Drums"], by_name["Piano"]
    assert kit.is_drum and kit.patch_detail.endswith("bank 128 preset 0") and kit.name == "Standard Drum Kit"
    x_kit, sr = _audio(project, kit)
    x_keys, _ = _audio(project, keys)
    assert centroid_hz(x_kit, sr) > 3000  # a hi-hat is noise up high
    assert centroid_hz(x_keys, sr) < 1500  # the same note numbers on a piano are a low F#
    assert dominant_hz(x_keys[: sr // 4], sr) == pytest.approx(92.5 * 2, rel=0.5)


def test_controllers_and_bends_reach_the_synth(project, tmp_path):
    note = [(69, 0, 4 * PPQ, 100)]
    bent = TrackSpec("Lead", 80, 0, notes=note, bends=[(2 * PPQ, 4096)])  # +1 semitone (GM range +-2) from 1 s
    _, (song,), _ = _render(project, tmp_path, [bent])
    x, sr = _audio(project, song.tracks[0])
    assert dominant_hz(x[int(0.2 * sr) : int(0.9 * sr)], sr) == pytest.approx(440, rel=0.01)
    assert dominant_hz(x[int(1.2 * sr) : int(1.9 * sr)], sr) == pytest.approx(440 * 2 ** (1 / 12), rel=0.005)
    quiet = TrackSpec("Lead", 80, 0, notes=note, controls=[(0, 7, 127), (2 * PPQ, 7, 30)])
    _, (song,), _ = _render(project, tmp_path, [quiet], name="song.mid")
    x, sr = _audio(project, song.tracks[0])
    loud, soft = np.abs(x[int(0.5 * sr) : sr]).max(), np.abs(x[int(1.5 * sr) : 2 * sr]).max()
    assert soft < loud / 4  # channel volume 127 -> 30


def test_chunk_size_does_not_change_the_audio(tmp_path):
    import pretty_midi

    inst = pretty_midi.Instrument(0)
    inst.notes = [pretty_midi.Note(90, 60 + i % 12, i * 0.23, i * 0.23 + 0.5) for i in range(20)]
    events = instrument_events(inst, 0)
    backend = SoundFontBackend(None, 0, 0, 44100)
    big = np.concatenate(list(backend.render(events, 5.0, 44100, 441000)))
    small = np.concatenate(list(backend.render(events, 5.0, 44100, 4410)))
    assert big.shape == small.shape == (220500, 2)
    assert np.array_equal(big, small)  # also: nothing leaked from the first render into the second


def test_a_preset_the_patch_names_but_the_soundfont_lacks_stops_before_anything_is_removed(project, tmp_path, caplog):
    tracks = [TrackSpec("Flute", 73, 0, notes=[(69, 0, PPQ, 100)]), TrackSpec("Bass", 33, 1, notes=[(40, 0, PPQ, 100)])]
    code, (song,), _ = _render(project, tmp_path, tracks)
    assert code == 0 and len(song.tracks) == 2
    before = project.out("render").manifest.read_bytes()
    render = {"patches": {"nowhere": {"backend": "soundfont", "bank": 7, "preset": 3}},
              "rules": [{"name": "flutes", "match": {"family": ["Pipe"]}, "patches": ["nowhere"]},
                        {"name": "drums", "match": {"drums": True}, "patches": ["gm-kit"]},
                        {"name": "rest", "match": {"drums": False}, "patches": ["gm"]}]}  # fmt: skip
    code, _, _ = _render(project, tmp_path, tracks, render=render)
    assert code == 2  # a config error: every track of that rule would fail
    assert "patch 'nowhere' (rule 'flutes'): TimGM6mb.sf2 has no preset 3 in bank 7" in caplog.text
    assert project.out("render").manifest.read_bytes() == before  # the previous outputs are kept


def test_a_kit_or_program_the_soundfont_lacks_falls_back_and_is_recorded(project, tmp_path):
    """TimGM6mb has no kit 1 (Room) in bank 128 and no bank 8: such tracks play the Standard kit and the
    bank-0 program, record why, and sound exactly as those presets do; no track is lost."""

    import pretty_midi

    from pipeline.params import load_params
    from pipeline.render.job import settings_of
    from pipeline.render.track import render_to_file

    beat = [(36 + 2 * (q % 2), q * PPQ, q * PPQ + PPQ // 4, 110) for q in range(8)]
    write(tmp_path / "in" / "room.mid", midi_bytes([TrackSpec("Drums", 1, 9, notes=beat)], ppq=PPQ))
    flute = [TrackSpec("Flute", 73, 0, notes=[(69, 0, 2 * PPQ, 100)])]
    write(tmp_path / "in" / "flute.mid", midi_bytes(flute, ppq=PPQ))
    render = {"patches": {"bank8": {"backend": "soundfont", "bank": 8}},
              "rules": [{"name": "flutes", "match": {"family": ["Pipe"]}, "patches": ["bank8"]},
                        {"name": "drums", "match": {"drums": True}, "patches": ["gm-kit"]},
                        {"name": "rest", "match": {"drums": False}, "patches": ["gm"]}]}  # fmt: skip
    project.params(ingest={"source": "dir", "path": str(tmp_path / "in")}, render=render)
    assert project.run("ingest") == 0 and project.run("split") == 0 and project.run("render") == 0
    assert not project.out("render").failures.exists() or not project.out("render").failures.read_text().strip()
    tracks = {s.title: s.tracks[0] for s in read_manifest(project.out("render").manifest, RenderSong)}
    room = tracks["room"]
    assert "has no preset 1 in bank 128: the Standard kit" in room.fallback
    assert room.patch_detail.endswith("bank 128 preset 0")
    # The same notes through the Standard kit, rendered directly: the same samples.
    drums = pretty_midi.PrettyMIDI(str(tmp_path / "in" / "room.mid")).instruments[0]
    settings = settings_of(load_params(project.root / "params.yaml").render)
    reference = render_to_file(SoundFontBackend(None, 128, 0, 44100), instrument_events(drums, 9),
                               tmp_path / "ref.flac", settings)  # fmt: skip
    assert reference.gain_db == room.render_gain_db
    assert np.array_equal(sf.read(str(tmp_path / "ref.flac"), dtype="float32")[0], _audio(project, room)[0])
    assert "has no preset 73 in bank 8: the nearest of its family, bank 0 preset 73" in tracks["flute"].fallback
    x, sr = _audio(project, tracks["flute"])
    assert dominant_hz(x[int(0.3 * sr) : int(0.9 * sr)], sr) == pytest.approx(440.0, rel=0.01)
    assert json.loads(project.out("render").summary.read_text())["preset_fallbacks"] == 2


def test_a_track_that_clips_louder_later_is_rendered_under_full_scale_not_lost(project, tmp_path):
    """A patch gain that clips a quiet note at the start and a loud chord later: the retry takes the whole
    track's peak (not the first clipping chunk's), so the track renders just under full scale."""
    # At +24 dB the opening chord peaks near +2 dBFS, the later one about 8 dB higher.
    loud = (36, 40, 43, 48, 52, 55, 60, 64, 67, 72, 76, 79)
    notes = [(p, 0, PPQ, 110) for p in (60, 64, 67, 72)] + [(p, 4 * PPQ, 6 * PPQ, 127) for p in loud]
    render = {"chunk_s": 0.25, "patches": {"hot": {"backend": "soundfont", "gain_db": 24}},
              "rules": [{"name": "all", "match": {"drums": False}, "patches": ["hot"]},
                        {"name": "drums", "match": {"drums": True}, "patches": ["gm-kit"]}]}  # fmt: skip
    code, (song,), fails = _render(project, tmp_path, [TrackSpec("Piano", 0, 0, notes=notes)], render=render)
    assert code == 0 and not fails
    (track,) = song.tracks
    x, _ = _audio(project, track)
    assert track.render_gain_db < 24 and -1.0 < track.peak_dbfs <= 0.0
    assert 0.85 < float(np.abs(x).max()) < 1.0


@pytest.mark.parametrize("replay_bytes", [None, 1024])
def test_a_clipping_track_is_written_again_from_its_first_render_the_same_as_a_second_render(
    tmp_path, monkeypatch, replay_bytes
):
    """A track that clips is rendered once: its kept chunks are written again at the lower gain, the
    same bytes a second render at that gain gives. A track too long to keep is rendered again."""
    import pretty_midi

    from pipeline.render import track as track_mod
    from pipeline.render.track import CLIP_LEVEL, RenderSettings, render_to_file, render_with_headroom

    if replay_bytes is not None:
        monkeypatch.setattr(track_mod, "REPLAY_BYTES", replay_bytes)
    inst = pretty_midi.Instrument(0)
    inst.notes = [pretty_midi.Note(120, p, 0.1, 1.5) for p in (48, 52, 55, 60, 64, 67)]
    events = instrument_events(inst, 0)
    settings = RenderSettings(sample_rate=44100, tail_s=0.5, chunk_s=0.25)

    class Counting(SoundFontBackend):
        calls = 0

        def render(self, *args, **kwargs):
            Counting.calls += 1
            return super().render(*args, **kwargs)

    got = render_with_headroom(Counting(None, 0, 0, 44100), events, tmp_path / "a.flac", settings, 24.0)
    assert got.gain_db < 24.0 and Counting.calls == (1 if replay_bytes is None else 2)
    again = render_to_file(SoundFontBackend(None, 0, 0, 44100), events, tmp_path / "b.flac", settings, got.gain_db)
    assert (tmp_path / "a.flac").read_bytes() == (tmp_path / "b.flac").read_bytes() and again == got
    assert 10 ** (got.peak_dbfs / 20) <= CLIP_LEVEL


def test_nearest_preset_prefers_bank_zero_then_the_family_then_fails(monkeypatch):
    from pipeline.render import fluid
    from pipeline.render.fluid import SoundFontError, nearest_preset

    names = {(0, p): f"P{p}" for p in (0, 1, 24, 27, 31)} | {(128, 0): "Standard", (8, 26): "Var"}
    monkeypatch.setattr(fluid, "preset_names", lambda sf2: names)
    assert nearest_preset("x.sf2", 8, 26, False) == (8, 26, None)
    assert nearest_preset("x.sf2", 8, 1, False)[:2] == (0, 1)  # the same program in bank 0 first
    assert nearest_preset("x.sf2", 8, 25, False)[:2] == (8, 26)  # then the family in its bank
    assert nearest_preset("x.sf2", 0, 25, False)[:2] == (0, 24)  # the nearest of its family (26 is in bank 8 only)
    assert nearest_preset("x.sf2", 0, 29, False)[:2] == (0, 27)  # 27 and 31 are as near: the lower
    assert nearest_preset("x.sf2", 128, 40, True)[:2] == (128, 0)
    with pytest.raises(SoundFontError, match="nor any preset of its GM family \\(programs 40-47\\)"):
        nearest_preset("x.sf2", 0, 41, False)


@pytest.mark.parametrize(
    ("render", "message"),
    [
        (
            {"patches": {"gm": {"backend": "soundfont", "sf2": "/nope/GM.sf2"}}},
            "patch 'gm' (rule 'pianos'): SoundFont not found",
        ),
        (
            {"patches": {"gm": {"backend": "vst3", "plugin": "/nope/Surge XT.vst3"}}},
            "patch 'gm' (rule 'pianos'): VST3 plugin not found",
        ),
    ],
)
def test_a_broken_instrument_map_stops_before_any_work(project, tmp_path, caplog, render, message):
    code, _, _ = _render(project, tmp_path, [TrackSpec("P", 0, 0, notes=[(60, 0, PPQ, 90)])], render=render)
    assert code == 2
    assert message in caplog.text
    assert not (project.out("render").dir / "audio").exists()


def test_a_broken_instrument_map_keeps_the_previous_render(project, tmp_path, caplog):
    code, (song,), _ = _render(project, tmp_path, [TrackSpec("P", 0, 0, notes=[(60, 0, PPQ, 90)])])
    assert code == 0
    before = project.out("render").manifest.read_bytes()
    project.params(render={"patches": {"gm": {"backend": "vst3", "plugin": "/nope/Surge XT.vst3"}}})
    assert project.run("render") == 2
    assert "render: stopped before any work: patch 'gm' (rule 'pianos'): VST3 plugin not found" in caplog.text
    assert project.out("render").manifest.read_bytes() == before
    assert (project.root / song.tracks[0].audio).is_file()


def _track(program: int, is_drum: bool = False, name: str = "", tid: str = "a__b__000000/t00") -> Track:
    return Track(id=tid, song_id=tid.split("/")[0], midi="x.mid", source_index=0, track_name=name, program=program,
                 is_drum=is_drum, name="n", family="f", subfamily="s", n_notes=1, pitch_min=60, pitch_max=60,
                 max_polyphony=1, polyphonic_fraction=0, polyphony="monophonic", start_s=0, end_s=1,
                 n_pitch_bends=0, n_control_changes=0)  # fmt: skip


def test_rules_match_by_family_program_range_and_track_name():
    params = parse_params({"render": {
        "patches": {"gm": {}, "kit": {"bank": 128}, "bright": {"preset": 1}, "sub": {"preset": 38}},
        "rules": [
            {"name": "sub-by-name", "match": {"track_name": "sub ?bass"}, "patches": ["sub"]},
            {"name": "kits", "match": {"drums": True}, "patches": ["kit"]},
            {"name": "low-programs", "match": {"programs": [0, 7]}, "patches": ["bright", "gm"]},
            {"name": "rest", "match": {"drums": False}, "patches": ["gm"]},
        ]}}).render  # fmt: skip
    assert choose_patch(params, _track(33, name="Sub Bass"), 0).rule == "sub-by-name"
    assert choose_patch(params, _track(0, is_drum=True), 0).patch == "kit"
    low = choose_patch(params, _track(4), 0)
    assert (low.rule, low.patch, low.alternatives) == ("low-programs", "bright", ("bright", "gm"))
    assert choose_patch(params, _track(33, name="Bass"), 0).rule == "rest"

    seeded = params.model_copy(update={"choice": "seeded"})
    picks = {choose_patch(seeded, _track(4, tid=f"a__b__000000/t{i:02d}"), 7).patch for i in range(30)}
    assert picks == {"bright", "gm"}
    assert choose_patch(seeded, _track(4), 7) == choose_patch(seeded, _track(4), 7)


def test_the_default_map_covers_every_program_and_kit():
    from pipeline.params import load_params
    from tests.conftest import REPO

    params = load_params(REPO / "params.yaml").render
    for program in range(128):
        assert choose_patch(params, _track(program), 0).patch
    for kit in (0, 8, 16, 24, 25, 32, 40, 48, 56):
        assert choose_patch(params, _track(kit, is_drum=True), 0).rule == "drums"


def test_split_songs_render_every_track(project):
    project.params(ingest={"sample": {"songs": 2}})
    for stage in ("ingest", "split", "render"):
        assert project.run(stage) == 0
    split = {t.id for s in read_manifest(project.out("split").manifest, SplitSong) for t in s.tracks}
    rendered = {t.id for s in read_manifest(project.out("render").manifest, RenderSong) for t in s.tracks}
    assert rendered == split


def test_render_soundfont_sets_the_sound_of_patches_that_name_none(project, tmp_path, caplog):
    import shutil

    from pipeline.render.fluid import DEFAULT_SF2
    from pipeline.render.soundfonts import UNKNOWN

    own = shutil.copy(DEFAULT_SF2, tmp_path / "House.sf2")
    notes = [TrackSpec("Piano", 0, 0, notes=[(60, 0, PPQ, 90)])]
    code, (song,), _ = _render(project, tmp_path, notes, render={"soundfont": str(own)})
    assert code == 0 and song.tracks[0].patch_detail == "soundfont House.sf2 bank 0 preset 0"
    summary = json.loads(project.out("render").summary.read_text())
    assert summary["soundfonts"] == {"House.sf2": {"licence": UNKNOWN, "source": str(own), "tracks": 1}}
    project.params(render={"soundfont": None})
    assert project.run("render") == 0
    summary = json.loads(project.out("render").summary.read_text())
    assert summary["soundfonts"]["TimGM6mb.sf2"]["licence"] == "GPL-2.0"
    project.params(render={"soundfont": str(tmp_path / "gone.sf2")})
    assert project.run("render") == 2
    assert f"SoundFont not found: {tmp_path / 'gone.sf2'} (render.soundfont)" in caplog.text

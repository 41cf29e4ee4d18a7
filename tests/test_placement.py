"""Stereo placement: the MIDI's pan where the song has one, a seeded family position where it has none."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from pipeline.analysis.timbre import timbre_features
from pipeline.audio.loudness import integrated_lufs
from pipeline.io.manifest import read_manifest
from pipeline.params import PlacementParams
from pipeline.records import ClipInstrument, MixSong, NotationInfo, RenderSong, SplitSong, Track
from pipeline.render.placement import apply_balance, balance_gains, place_song, song_places_parts
from tests.midi_factory import TrackSpec, midi_bytes, write

PPQ = 480
CHORDS = [(p, b * PPQ, (b + 1) * PPQ - 20, 90) for b in range(8) for p in (60, 64, 67)]
LINE = [(72 + (b % 5), b * PPQ // 2, (b + 1) * PPQ // 2 - 10, 100) for b in range(16)]
BASS = [(36 + (b % 3), b * PPQ, (b + 1) * PPQ - 20, 100) for b in range(8)]
HATS = [(42, b * PPQ // 2, b * PPQ // 2 + 60, 110) for b in range(16)]


def _band(pan_cc: int | None = None) -> list[TrackSpec]:
    cc = [(0, 10, pan_cc)] if pan_cc is not None else []
    return [
        TrackSpec("Keys", 0, 0, notes=CHORDS, controls=cc),
        TrackSpec("Guitar", 25, 1, notes=LINE, controls=cc),
        TrackSpec("Strings", 48, 2, notes=CHORDS, controls=cc),
        TrackSpec("Bass", 33, 3, notes=BASS, controls=cc),
        TrackSpec("Drums", 0, 9, notes=HATS, controls=cc),
    ]


def _run(project, tmp_path, tracks, render=None, stages=("render",)):
    write(tmp_path / "in" / "song.mid", midi_bytes(tracks, ppq=PPQ))
    project.params(ingest={"source": "dir", "path": str(tmp_path / "in")}, render=render or {})
    for stage in ("ingest", "split", *stages):
        assert project.run(stage) == 0, stage
    (song,) = read_manifest(project.out("render").manifest, RenderSong)
    return song


def _stem(project, track) -> np.ndarray:
    return sf.read(str(project.root / track.audio), dtype="float32")[0]


def _track(family: str, index: int, midi_pan: int | None = None) -> Track:
    return Track(
        id=f"s/t{index:02d}", song_id="s", midi="x.mid", source_index=index, track_name=family, program=0,
        is_drum=family == "Drums", name=family, family=family, subfamily=family, n_notes=1, pitch_min=60,
        pitch_max=60, max_polyphony=1, polyphonic_fraction=0, polyphony="monophonic", start_s=0, end_s=1,
        n_pitch_bends=0, n_control_changes=0, midi_pan=midi_pan,
    )  # fmt: skip


def test_unplaced_parts_alternate_sides_within_their_family_width():
    params = PlacementParams()
    families = ["Drums", "Bass", "Guitar", "Guitar", "Piano", "Synth Lead", "Strings"]
    tracks = [_track(f, i) for i, f in enumerate(families)]
    assert not song_places_parts(tracks)
    got = place_song(params, tracks, seed=3)
    pans = [got[t.id].pan for t in tracks]
    assert all(p.source == "family" and p.balance == p.pan for p in got.values())
    assert pans[:2] == [0.0, 0.0]  # drums and bass in the centre
    for pan, t in zip(pans[2:], tracks[2:], strict=True):
        assert params.width[t.family] / 2 <= abs(pan) <= params.width[t.family]  # audibly off centre
    signs = np.sign(pans[2:])
    assert np.all(signs[1:] == -signs[:-1])  # alternating sides: a balanced mix, no two guitars on one spot
    assert got == place_song(params, tracks, seed=3)  # seeded: the same every run
    assert got != place_song(params, tracks, seed=4)


def test_a_song_that_pans_any_part_keeps_its_midi_placement():
    tracks = [_track("Guitar", 0, midi_pan=20), _track("Piano", 1, midi_pan=64), _track("Strings", 2)]
    assert song_places_parts(tracks)
    got = place_song(PlacementParams(), tracks, seed=3)
    assert [(got[t.id].pan, got[t.id].source, got[t.id].balance) for t in tracks] == [
        (round((20 - 64) / 63, 4), "midi", 0.0), (0.0, "midi", 0.0), (0.0, "midi", 0.0)
    ]  # fmt: skip
    # every part at 64 is no placement: the author left everything in the centre
    centred = [_track("Guitar", 0, midi_pan=64), _track("Piano", 1, midi_pan=64)]
    assert not song_places_parts(centred)
    assert {p.source for p in place_song(PlacementParams(), centred, seed=3).values()} == {"family"}
    # mode midi never places
    assert place_song(PlacementParams(mode="midi"), [_track("Guitar", 0)], seed=3)["s/t00"].pan == 0.0


@pytest.mark.parametrize("pan", [-1.0, -0.4, 0.25, 1.0])
def test_the_balance_keeps_a_centred_sources_loudness(pan):
    rng = np.random.default_rng(0)
    mono = (0.1 * rng.standard_normal(44100 * 3)).astype(np.float32)
    x = np.stack([mono, mono], axis=1)
    left, right = balance_gains(pan)
    assert left**2 + right**2 == pytest.approx(2.0)
    y = apply_balance(x, pan)
    assert integrated_lufs(y, 44100) == pytest.approx(integrated_lufs(x, 44100), abs=0.01)
    assert (np.sqrt(np.mean(y[:, 1] ** 2)) > np.sqrt(np.mean(y[:, 0] ** 2))) == (pan > 0)


def test_stems_of_an_unplaced_song_are_balanced_as_recorded(project, tmp_path):
    centred = _run(project, tmp_path, _band(), render={"placement": {"mode": "midi"}})
    flat = {t.track_name: _stem(project, t) for t in centred.tracks}
    assert all(t.pan == 0.0 and t.pan_source == "midi" for t in centred.tracks)
    placed = _run(project, tmp_path, _band())
    by_name = {t.track_name: t for t in placed.tracks}
    assert {t.pan_source for t in placed.tracks} == {"family"}
    assert by_name["Drums"].pan == 0.0 and by_name["Bass"].pan == 0.0
    assert by_name["Guitar"].pan != 0.0 and by_name["Keys"].pan != 0.0
    for name, t in by_name.items():
        got, want = _stem(project, t), apply_balance(flat[name], t.pan)
        n = min(len(got), len(want))  # the trim of the release tail sees the balanced level
        assert abs(len(got) - len(want)) < 0.1 * 44100, name
        assert np.max(np.abs(got[:n] - want[:n])) < 2.0**-22, name  # the same render, balanced (24-bit rounding)
    split = next(iter(read_manifest(project.out("split").manifest, SplitSong)))
    assert all(t.midi_pan is None for t in split.tracks)


def test_midi_pan_is_played_by_the_synth_and_recorded(project, tmp_path):
    song = _run(project, tmp_path, [TrackSpec("Guitar", 25, 0, notes=LINE, controls=[(0, 10, 0)])])
    (t,) = song.tracks
    assert (t.pan, t.pan_source) == (-1.0, "midi")
    x = _stem(project, t)
    left, right = np.sqrt(np.mean(x**2, axis=0))
    assert right < left / 10  # FluidSynth put it hard left: no balance on top of it


def test_the_mix_of_an_unplaced_song_has_a_stereo_image(project, tmp_path):
    _run(project, tmp_path, _band(), render={"placement": {"mode": "midi"}}, stages=("render", "mix"))
    (mono,) = read_manifest(project.out("mix").manifest, MixSong)
    flat = timbre_features(sf.read(str(project.root / mono.mix), dtype="float32")[0], 44100)
    _run(project, tmp_path, _band(), stages=("render", "mix"))
    (wide,) = read_manifest(project.out("mix").manifest, MixSong)
    assert all(s.pan_source == "family" for s in wide.stems)  # the stem records carry the placement
    image = timbre_features(sf.read(str(project.root / wide.mix), dtype="float32")[0], 44100)
    assert image.channel_correlation < flat.channel_correlation - 0.05 and image.side_share > flat.side_share + 0.02


def test_augment_re_renders_a_part_with_its_balance():
    import pretty_midi

    from pipeline.augment.rerender import Part, render_parts
    from pipeline.params import RenderParams

    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(25)
    inst.notes = [pretty_midi.Note(100, 64 + i % 5, i * 0.25, i * 0.25 + 0.2) for i in range(8)]
    pm.instruments.append(inst)
    notation = NotationInfo.model_validate(_notation())

    def part(balance: float) -> Part:
        ci = ClipInstrument(track_id="s/t00", midi_track=0, name="Acoustic Guitar (steel)", family="Guitar",
                            subfamily="Acoustic Guitar", program=25, is_drum=False, patch="gm", balance=balance,
                            alternatives=["gm"], notation=notation)  # fmt: skip
        return Part(ci, "gm")

    render = RenderParams()
    (flat,) = render_parts(pm, [part(0.0)], render, 44100 * 3)
    (panned,) = render_parts(pm, [part(-0.5)], render, 44100 * 3)
    np.testing.assert_allclose(panned, apply_balance(flat, -0.5), atol=1e-7)
    assert np.sqrt(np.mean(panned[:, 0] ** 2)) > 2 * np.sqrt(np.mean(panned[:, 1] ** 2))


def _notation() -> dict:
    return {"role": None, "notes_per_second": 4.0, "notes_per_beat": 2.0, "speed": None, "density": None,
            "contour": None, "pitch_register": None, "pitch_range_semitones": 4, "polyphony": 1}  # fmt: skip

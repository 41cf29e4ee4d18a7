"""The VST3 backend on a real plugin: DISTRHO Kars, a Karplus-Strong string built from its public
source (../shared/plugins, ISC). Its main bus is mono, it exposes 2,084 parameters and its pluck is
seeded from an unseeded random source, so it exercises upmixing, name lookup and the
reproducibility probe as no fake can. Loading it takes about 10 s: the module loads it once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pedalboard
import pretty_midi
import pytest
import soundfile as sf

from pipeline.io.manifest import read_manifest
from pipeline.params import PatchSpec
from pipeline.records import RenderSong
from pipeline.render.events import instrument_events
from pipeline.render.placement import balance_gains
from pipeline.render.track import CLIP_LEVEL, RenderSettings, render_with_headroom
from pipeline.render.vst3 import Vst3Backend, Vst3Error, is_reproducible, load_vst3, state_problem
from tests.audio_checks import onsets
from tests.midi_factory import TrackSpec, midi_bytes, write

KARS = Path(os.environ.get("M2F_KARS_VST3", Path(__file__).resolve().parents[2] / "shared/plugins/Kars.vst3"))
SR = 44100
PPQ = 480
TEMPOS = [(0, 500_000), (4 * PPQ, 400_000), (8 * PPQ, 666_667)]  # 120, 150, 90 BPM

pytestmark = pytest.mark.skipif(not KARS.exists(), reason=f"the Kars VST3 instrument is not at {KARS}")


@pytest.fixture(scope="module")
def kars() -> pedalboard.VST3Plugin:
    return pedalboard.load_plugin(str(KARS))


@pytest.fixture
def reuse(kars):
    """A loader handing load_vst3 the module's Kars instead of loading it again (10 s a load)."""

    def loader(path: str, plugin_name: str | None = None) -> pedalboard.VST3Plugin:
        return kars

    return loader


def _expected_starts(beats: list[float]) -> np.ndarray:
    """Note starts in seconds from the tempo map, computed here rather than by pretty_midi."""
    out = []
    for beat in beats:
        tick, t, prev_tick, prev_us = beat * PPQ, 0.0, 0, TEMPOS[0][1]
        for change_tick, us in TEMPOS[1:]:
            if change_tick >= tick:
                break
            t += (change_tick - prev_tick) / PPQ * prev_us / 1e6
            prev_tick, prev_us = change_tick, us
        out.append(t + (tick - prev_tick) / PPQ * prev_us / 1e6)
    return np.array(out)


def _plucks(tmp_path: Path, beats: list[float], pitch: int = 64) -> pretty_midi.Instrument:
    notes = [(pitch + i % 5, round(b * PPQ), round(b * PPQ) + PPQ // 8, 110) for i, b in enumerate(beats)]
    path = write(tmp_path / "plucks.mid", midi_bytes([TrackSpec("Guitar", 24, 0, notes=notes)], tempos=TEMPOS, ppq=PPQ))
    return pretty_midi.PrettyMIDI(str(path)).instruments[0]


@pytest.mark.parametrize("block_frames", [128, 8192])
def test_onsets_are_sample_exact_across_tempo_changes_and_chunks(kars, tmp_path, block_frames):
    beats = [q + (0.25 if q % 3 == 1 else 0.5) for q in range(12)]  # eighths and sixteenths off the beat, three tempos
    inst = _plucks(tmp_path, beats)
    settings = RenderSettings(sample_rate=SR, tail_s=0.5, chunk_s=0.37)  # chunk edges fall between notes
    backend = Vst3Backend(kars, block_frames)
    result = render_with_headroom(backend, instrument_events(inst, 0), tmp_path / "s.flac", settings)
    x, sr = sf.read(str(tmp_path / "s.flac"), dtype="float32")
    assert x.shape[1] == 2 and np.array_equal(x[:, 0], x[:, 1])  # the mono bus, upmixed
    assert result.frames == len(x)
    got, expected = onsets(x, sr, threshold_db=-50, quiet_s=0.02), _expected_starts(beats)
    assert len(got) == len(expected)
    assert np.max(np.abs(got - expected)) < 0.0005  # within half a millisecond (22 samples) at any block size
    assert np.abs(x[: round(expected[0] * sr)]).max() == 0.0  # nothing sounds before the first note


def test_nothing_rings_over_from_the_previous_track(kars, tmp_path):
    backend = Vst3Backend(kars)
    settings = RenderSettings(sample_rate=SR, tail_s=0.0, chunk_s=1.0)
    kars.sustain = True  # the string rings until the end of the render
    try:
        held = instrument_events(_plucks(tmp_path, [0.0, 0.5, 1.0], pitch=40), 0)
        render_with_headroom(backend, held, tmp_path / "a.flac", settings)
        late = instrument_events(_plucks(tmp_path, [2.0]), 0)  # the next track starts at 1 s
        render_with_headroom(backend, late, tmp_path / "b.flac", settings)
    finally:
        kars.sustain = False
    a, _ = sf.read(str(tmp_path / "a.flac"), dtype="float32")
    b, _ = sf.read(str(tmp_path / "b.flac"), dtype="float32")
    assert np.abs(a[-100:]).max() > 0.01  # the first track still rang at its end
    assert np.abs(b[: SR - 1]).max() == 0.0 and np.abs(b[SR:]).max() > 0.01


def test_a_clipping_plugin_never_loses_its_track(kars, tmp_path):
    """+30 dB on a chord of plucks clips; the retry renders the same track under full scale, although
    Kars never renders the same samples twice."""
    chord = _plucks(tmp_path, [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    settings = RenderSettings(sample_rate=SR, tail_s=0.5, chunk_s=0.25)
    result = render_with_headroom(Vst3Backend(kars), instrument_events(chord, 0), tmp_path / "c.flac", settings, 30.0)
    x, _ = sf.read(str(tmp_path / "c.flac"), dtype="float32")
    assert result.gain_db < 30.0 and float(np.abs(x).max()) <= CLIP_LEVEL
    assert float(np.abs(x).max()) > 0.3  # turned down to fit, not to silence


def test_kars_is_found_not_reproducible_and_a_fake_synth_is(kars):
    from tests.test_render_vst3 import FakeSynth

    assert is_reproducible(Vst3Backend(kars), SR) is False
    assert is_reproducible(Vst3Backend(FakeSynth()), SR) is True


def test_parameters_match_case_insensitively_and_typos_get_the_nearest_names(kars, reuse, tmp_path):
    patch = PatchSpec(backend="vst3", plugin=str(KARS), parameters={"Volume": 40.0, "RELEASE_S": 0.5})
    assert load_vst3(patch, "pluck", "guitars", loader=reuse) is kars
    assert kars.volume == pytest.approx(40.0, abs=0.1) and kars.release_s == pytest.approx(0.5, abs=0.01)
    typo = PatchSpec(backend="vst3", plugin=str(KARS), parameters={"volum": 50.0})
    with pytest.raises(Vst3Error) as info:
        load_vst3(typo, "pluck", "guitars", loader=reuse)
    assert str(info.value) == (
        "patch 'pluck' (rule 'guitars'): Kars has no parameter 'volum' "
        "(2084 parameters, names match case-insensitively; nearest: volume)"
    )
    kars.volume, kars.release_s = 75.0, 0.01


def test_a_saved_state_is_accepted_and_a_garbage_state_file_is_refused(kars, reuse, tmp_path):
    """Kars keeps its parameters out of its state (DPF), so this checks acceptance, not the restored sound."""
    saved = kars.raw_state
    assert state_problem(saved) is None
    (tmp_path / "saved.state").write_bytes(saved)
    load_vst3(PatchSpec(backend="vst3", plugin=str(KARS), state_file=str(tmp_path / "saved.state")), "p", "r", reuse)
    assert kars.raw_state == saved
    for name, data, reason in [
        ("garbage", b"not a plugin state at all", "it does not start with b'VC2!'"),
        ("cut", saved[:100], "it is truncated (92 of 229 bytes)"),
        ("preset", saved[:8] + saved[8:].replace(b"VST3PluginState", b"VST3PluginStatX"), "its XML is a <VST3P"),
    ]:
        (tmp_path / f"{name}.state").write_bytes(data)
        bad = PatchSpec(backend="vst3", plugin=str(KARS), state_file=str(tmp_path / f"{name}.state"))
        with pytest.raises(Vst3Error, match=r"^patch 'p' \(rule 'r'\): .*\.state is not a VST3 state saved") as info:
            load_vst3(bad, "p", "r", reuse)
        assert reason in str(info.value)


def test_the_render_stage_plays_kars_on_the_tempo_map_and_says_it_is_not_reproducible(project, tmp_path):
    beats = [float(q) for q in range(12)]
    notes = [(64, round(b * PPQ), round(b * PPQ) + PPQ // 8, 110) for b in beats]
    write(tmp_path / "in" / "song.mid", midi_bytes([TrackSpec("Guitar", 24, 0, notes=notes)], tempos=TEMPOS, ppq=PPQ))
    render = {"patches": {"kars": {"backend": "vst3", "plugin": str(KARS)}},
              "rules": [{"name": "strings", "match": {"drums": False}, "patches": ["kars"]},
                        {"name": "drums", "match": {"drums": True}, "patches": ["gm-kit"]}]}  # fmt: skip
    project.params(ingest={"source": "dir", "path": str(tmp_path / "in")}, render=render)
    assert project.run("ingest") == 0 and project.run("split") == 0 and project.run("render") == 0
    ((track,),) = [s.tracks for s in read_manifest(project.out("render").manifest, RenderSong)]
    assert track.backend == "vst3" and "not reproducible" in track.patch_detail
    x, sr = sf.read(str(project.root / track.audio), dtype="float32")
    # the mono bus on both channels, then the guitar's family position (a constant-power balance) on top
    assert track.pan_source == "family" and track.pan != 0
    left, right = balance_gains(track.pan)
    loud = np.abs(x).max(axis=1) > 1e-3
    np.testing.assert_allclose(x[loud, 0] * right, x[loud, 1] * left, rtol=2e-4, atol=2.0**-22)
    got = onsets(x, sr, threshold_db=-50, quiet_s=0.02)
    assert len(got) == 12 and np.max(np.abs(got - _expected_starts(beats))) < 0.0005
    summary = json.loads(project.out("render").summary.read_text())
    assert summary["not_reproducible"] == {"patches": ["kars"], "tracks": 1}
    (record,) = (project.root / ".cache" / "vst3-checks").iterdir()  # the next run skips the stage's own load
    assert json.loads(record.read_text()) == {"patch": "kars", "plugin": str(KARS), "reproducible": False}

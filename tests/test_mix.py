"""Stage `mix`: stems at their loudness target, mixes under the true-peak ceiling, silent stems left out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.audio.loudness import integrated_lufs, limit_true_peak, true_peak_dbtp
from pipeline.audio.measure import measure_file
from pipeline.audio.mix import MixJob, mix_song
from pipeline.audio.stems import stem_samples
from pipeline.io.manifest import read_manifest
from pipeline.params import MixParams
from pipeline.records import MixSong, RenderSong, Stem
from tests.audio_checks import lufs, true_peak_reference
from tests.midi_factory import band, write

SMALL = {"source": "dir", "path": "in"}


def read_stem(root, stem: Stem) -> tuple[np.ndarray, int]:
    """A mixed stem as its readers see it: mix's own file, or the render file times its gain."""
    x, sr = sf.read(str(root / stem.audio), dtype="float32", always_2d=True)
    return stem_samples(x, stem), sr


def _songs(root: Path) -> None:
    write(root / "in" / "Band" / "One.mid", band(bars=4))
    write(root / "in" / "Band" / "Two.mid", band(bars=3, tempos=[(0, 400_000), (4 * 480, 600_000)], key="E"))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Two short songs (piano, bass, drums) through ingest, split and render."""
    from tests.conftest import Project

    project = Project(tmp_path_factory.mktemp("mix"))
    _songs(project.root)
    project.params(run={"workers": 2}, ingest=SMALL)
    for stage in ("ingest", "split", "render"):
        assert project.run(stage) == 0
    return project


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("mode", ["sum", "average"])
def test_stems_hit_their_target_and_mixes_keep_the_ceiling(rendered, mode):
    rendered.params(run={"workers": 2}, ingest=SMALL, mix={"mode": mode})
    assert rendered.run("mix") == 0
    songs = list(read_manifest(rendered.out("mix").manifest, MixSong))
    assert len(songs) == 2
    for song in songs:
        for stem in song.stems:
            x, sr = read_stem(rendered.root, stem)
            assert lufs(x, sr) == pytest.approx(-18.0, abs=0.5), stem.id
            assert true_peak_reference(x) <= -1.0 + 0.05, stem.id
            assert stem.loudness_after_lufs == pytest.approx(lufs(x, sr), abs=0.05)
        mix, sr = sf.read(str(rendered.root / song.mix), dtype="float32")
        assert true_peak_reference(mix) <= -1.0 + 0.05
        assert song.mix_true_peak_dbtp <= -1.0
        assert lufs(mix, sr) == pytest.approx(song.mix_lufs, abs=0.05)
        assert song.mix_lufs == pytest.approx(-14.0, abs=1.0)  # the limiter may take a little
        assert len(mix) == max(sf.info(str(rendered.root / s.audio)).frames for s in song.stems)
        if mode == "average":
            assert song.shared_gain_db == pytest.approx(-20 * np.log10(len(song.stems)), abs=1e-3)
        else:
            assert song.shared_gain_db <= 0
    summary = __import__("json").loads(rendered.out("mix").summary.read_text())
    assert summary["songs"] == 2 and summary["max_true_peak_dbtp"] <= -1.0 and summary["mode"] == mode


def test_mix_is_the_sum_of_the_written_stems(rendered):
    rendered.params(run={"workers": 1}, ingest=SMALL, mix={"mode": "sum", "mix_lufs": -30})
    assert rendered.run("mix") == 0
    song = next(iter(read_manifest(rendered.out("mix").manifest, MixSong)))
    assert not song.mix_limited  # quiet target: no limiting, so the mix is a pure gain of the stem sum
    stems = [read_stem(rendered.root, s)[0].astype(np.float64) for s in song.stems]
    total = np.zeros((max(len(s) for s in stems), 2))
    for s in stems:
        total[: len(s)] += s
    mix = sf.read(str(rendered.root / song.mix), dtype="float64")[0]
    gain = 10 ** ((song.shared_gain_db + song.mix_gain_db) / 20)
    assert np.max(np.abs(mix - total * gain)) < 1e-4  # 24-bit rounding


def test_silent_stems_are_left_out_and_recorded(rendered, tmp_path):
    song = next(iter(read_manifest(rendered.out("render").manifest, RenderSong)))
    hush = tmp_path / "hush.flac"
    noise = np.random.default_rng(0).standard_normal((44100 * 3, 2)) * 1e-5  # about -100 dBFS
    sf.write(str(hush), noise, 44100, subtype="PCM_24")
    # A stem as render would record it: its own file's levels (render measures every stem it writes).
    level = measure_file(hush)
    silent = song.tracks[0].model_copy(update={"id": f"{song.id}/t99", "audio": str(hush), "measured": level})
    song = song.model_copy(update={"tracks": [*song.tracks, silent]})
    result = mix_song(MixJob(song, rendered.root, rendered.root / "scratch", MixParams()))
    assert result.silent_stems == [silent.id]
    assert [s.id for s in result.stems] == [t.id for t in song.tracks[:-1]]


def test_all_silent_song_fails_with_reason(rendered, tmp_path):
    from pipeline.errors import ItemError

    song = next(iter(read_manifest(rendered.out("render").manifest, RenderSong)))
    hush = tmp_path / "hush.flac"
    sf.write(str(hush), np.zeros((44100, 2)), 44100, subtype="PCM_24")
    track = song.tracks[0].model_copy(update={"audio": str(hush), "measured": measure_file(hush)})
    song = song.model_copy(update={"tracks": [track]})
    with pytest.raises(ItemError, match="all 1 stems are silent"):
        mix_song(MixJob(song, rendered.root, rendered.root / "scratch", MixParams()))


def test_limiter_keeps_a_true_peak_ceiling_on_intersample_peaks():
    sr = 44100
    t = np.arange(sr) / sr
    # A sine at fs/4 sampled off its crests: sample peaks under-read the true peak by 3 dB.
    # Faded in and out, so no edge transient adds peaks of its own.
    fade = np.minimum(1, np.minimum(t, t[::-1]) / 0.05)
    x = np.stack([np.sin(2 * np.pi * sr / 4 * t + np.pi / 4) * fade] * 2, axis=1).astype(np.float32) * 0.99
    assert 20 * np.log10(np.abs(x).max()) < -2.9
    analytic = 20 * np.log10(0.99)
    assert true_peak_dbtp(x) == pytest.approx(analytic, abs=0.1)
    assert true_peak_reference(x) == pytest.approx(analytic, abs=0.1)
    y, acted, peak = limit_true_peak(x, sr, -6.0)
    assert acted and peak <= -6.0 and true_peak_reference(y) <= -6.0 + 0.05
    quiet, acted, _ = limit_true_peak(x * 0.1, sr, -1.0)
    assert not acted and np.array_equal(quiet, x * 0.1)
    assert integrated_lufs(np.zeros((sr, 2), np.float32), sr) == float("-inf")


def test_render_and_mix_are_identical_on_rerun_and_across_worker_counts(rendered, tmp_path):
    from tests.conftest import Project

    rendered.params(run={"workers": 2}, ingest=SMALL)
    assert rendered.run("render") == 0 and rendered.run("mix") == 0
    first = {k: v for k, v in _tree(rendered.root / "data").items() if k.startswith(("render/", "mix/"))}
    assert rendered.run("render") == 0 and rendered.run("mix") == 0
    second = {k: v for k, v in _tree(rendered.root / "data").items() if k.startswith(("render/", "mix/"))}
    assert second == first

    other = Project(tmp_path / "one_worker")
    other.root.mkdir()
    _songs(other.root)
    other.params(run={"workers": 1}, ingest=SMALL)
    for stage in ("ingest", "split", "render", "mix"):
        assert other.run(stage) == 0
    third = {k: v for k, v in _tree(other.root / "data").items() if k.startswith(("render/", "mix/"))}
    assert third == first
    assert any(k.endswith("mix.flac") for k in first)


def test_a_stem_the_limiter_left_alone_is_its_render_file_times_a_gain(rendered, tmp_path):
    """No second copy of an unlimited stem: its record names the render file and the gain, and reading it
    gives, bit for bit, what a normalised 24-bit copy would hold. A limited stem gets its own file."""
    rendered.params(run={"workers": 1}, ingest=SMALL, mix={"stem_lufs": -18.0})
    assert rendered.run("mix") == 0
    stems = [st for s in read_manifest(rendered.out("mix").manifest, MixSong) for st in s.stems]
    assert stems and not any(st.limited for st in stems)
    for st in stems:
        assert st.audio.startswith("data/render/audio/") and st.source_gain is not None, st.id
        assert not (rendered.out("mix").out("audio") / f"{st.id}.flac").exists()
        x, sr = sf.read(str(rendered.root / st.audio), dtype="float32", always_2d=True)
        copy = tmp_path / "copy.flac"
        sf.write(str(copy), (x * st.source_gain).astype(np.float32), sr, format="FLAC", subtype="PCM_24")
        assert np.array_equal(read_stem(rendered.root, st)[0], sf.read(str(copy), dtype="float32")[0]), st.id
        assert st.gain_db == pytest.approx(20 * np.log10(st.source_gain), abs=1e-3)

    rendered.params(run={"workers": 1}, ingest=SMALL, mix={"stem_lufs": -6.0})  # loud: the limiter acts
    assert rendered.run("mix") == 0
    stems = [st for s in read_manifest(rendered.out("mix").manifest, MixSong) for st in s.stems]
    limited = [st for st in stems if st.limited]
    assert limited
    for st in limited:
        assert st.audio.startswith("data/mix/audio/") and st.source_gain is None
        assert (rendered.root / st.audio).exists()
        x, sr = read_stem(rendered.root, st)
        assert true_peak_reference(x) <= -1.0 + 0.05, st.id

"""split.humanize: seeded human timing, dynamics and articulation that leave every label true."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from pipeline.io.manifest import read_manifest
from pipeline.records import SplitSong
from tests.midi_factory import TrackSpec, midi_bytes, write

PPQ = 480
TEMPOS = [(0, 500_000), (8 * PPQ, 400_000), (16 * PPQ, 666_667)]  # 120, 150, 90 BPM
HUMAN = {"timing_ms": 8.0, "velocity": 6.0, "length": 0.08}


def _song(tmp_path) -> None:
    eighths = [(60 + (i * 5) % 12, i * PPQ // 2, i * PPQ // 2 + PPQ // 3, 80) for i in range(48)]  # 6 bars, 3 tempos
    chords = [(p, b * 4 * PPQ, b * 4 * PPQ + 2 * PPQ, 70) for b in range(6) for p in (48, 52, 55)]  # on every bar
    kit = [(36 if i % 2 == 0 else 38, i * PPQ, i * PPQ + PPQ // 8, 100) for i in range(24)]
    tracks = [TrackSpec("Lead", 81, 0, notes=eighths), TrackSpec("Pad", 89, 1, notes=chords),
              TrackSpec("Drums", 0, 9, notes=kit)]  # fmt: skip
    write(tmp_path / "in" / "song.mid", midi_bytes(tracks, tempos=TEMPOS, ppq=PPQ))


def _split(project, tmp_path, humanize: dict, seed: int = 0) -> tuple[SplitSong, list[pretty_midi.Instrument]]:
    project.params(ingest={"source": "dir", "path": str(tmp_path / "in")}, split={"humanize": humanize},
                   run={"workers": 1, "item_timeout_s": 0, "seed": seed})  # fmt: skip
    assert project.run("ingest") == 0 and project.run("split") == 0
    (song,) = read_manifest(project.out("split").manifest, SplitSong)
    insts = [pretty_midi.PrettyMIDI(str(project.root / t.midi)).instruments[0] for t in song.tracks]
    return song, insts


def _pairs(written: list[pretty_midi.Note], played: list[pretty_midi.Note]) -> list[tuple]:
    """Each written note with its played one: the same pitch, the nearest start (same-pitch notes here
    are 250 ms or more apart, the shifts under 10 ms)."""
    pairs = []
    for x in written:
        y = min((n for n in played if n.pitch == x.pitch), key=lambda n: abs(n.start - x.start))
        pairs.append((x, y))
    assert len({id(y) for _, y in pairs}) == len(played)
    return pairs


def _bytes(project, song: SplitSong) -> list[bytes]:
    return [(project.root / t.midi).read_bytes() for t in song.tracks]


def test_off_by_default_and_on_it_moves_notes_within_bounds_and_never_across_a_bar(project, tmp_path):
    _song(tmp_path)
    plain_song, plain = _split(project, tmp_path, {})
    human_song, human = _split(project, tmp_path, HUMAN)
    downbeats = pretty_midi.PrettyMIDI(str(tmp_path / "in" / "song.mid")).get_downbeats()
    assert human_song.tempo_map == plain_song.tempo_map and human_song.time_signatures == plain_song.time_signatures
    moved = velocity_changed = 0
    for a, b in zip(plain, human, strict=True):
        assert sorted(n.pitch for n in a.notes) == sorted(n.pitch for n in b.notes)  # the same notes
        for x, y in _pairs(a.notes, b.notes):
            shift = y.start - x.start
            assert abs(shift) <= 0.008 + 0.0011  # the bound, plus one tick of rounding to the file
            bar = np.searchsorted(downbeats, x.start + 1e-4, side="right")
            assert np.searchsorted(downbeats, y.start + 1e-4, side="right") == bar  # the same bar
            if np.min(np.abs(downbeats - x.start)) < 1e-4:
                assert shift >= 0  # a downbeat note only moves later
            assert abs(y.velocity - x.velocity) <= 18 and 1 <= y.velocity <= 127
            assert 0.7 < (y.end - y.start) / (x.end - x.start) < 1.3
            moved += abs(shift) > 0.0011
            velocity_changed += y.velocity != x.velocity
    n = sum(len(i.notes) for i in plain)
    assert moved > n / 2 and velocity_changed > n / 2  # it does something to most notes


def test_humanized_midi_is_reproducible_and_follows_the_seed(project, tmp_path):
    _song(tmp_path)
    first = _bytes(project, _split(project, tmp_path, HUMAN)[0])
    again = _bytes(project, _split(project, tmp_path, HUMAN)[0])
    other = _bytes(project, _split(project, tmp_path, HUMAN, seed=1)[0])
    assert first == again and first != other


@pytest.mark.parametrize("bad", [{"timing_ms": -1}, {"timing_ms": 100}, {"tempo": 3}])
def test_bad_humanize_params_name_the_key(project, tmp_path, caplog, bad):
    _song(tmp_path)
    project.params(ingest={"source": "dir", "path": str(tmp_path / "in")}, split={"humanize": bad})
    assert project.run("split") == 2
    assert "split.humanize." + next(iter(bad)) in caplog.text

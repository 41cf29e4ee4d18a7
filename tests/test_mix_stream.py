"""Streamed loudness, true peak, limiter and mix (pipeline/audio/stream.py) equal their whole-signal versions.

Real signals: a recording music21 ships (mono, 20 s) and stems rendered from MIDI.
Chunks are made small here so that every song crosses many chunk boundaries.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from pipeline.audio import kernels, stream
from pipeline.audio import mix as mix_module
from pipeline.audio.loudness import (
    TP_BLOCK,
    db_to_gain,
    integrated_lufs,
    limiter_gain,
    peak_envelope,
    to_db,
    true_peak_dbtp,
)
from pipeline.audio.mix import MixJob, mix_song, normalise, write_flac
from pipeline.audio.stems import stem_samples
from pipeline.audio.stream import LoudnessMeter, TruePeakMeter, limit_gains
from pipeline.io.manifest import read_manifest
from pipeline.params import MixParams
from pipeline.records import MixSong, RenderSong, Sound, Stem
from tests.test_mix import SMALL, _songs

RECORDING = Path(__import__("music21").__file__).parent / "audioSearch" / "test_audio.wav"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    from tests.conftest import Project

    project = Project(tmp_path_factory.mktemp("mixstream"))
    _songs(project.root)
    project.params(run={"workers": 1}, ingest=SMALL)
    for stage in ("ingest", "split", "render"):
        assert project.run(stage) == 0
    return project


def _signals(rendered) -> list[tuple[str, np.ndarray]]:
    rec, sr = sf.read(str(RECORDING), dtype="float32", always_2d=True)
    assert sr == 44100
    out = [("recording mono", rec), ("recording stereo", np.hstack([rec, 0.5 * rec]))]
    for song in read_manifest(rendered.out("render").manifest, RenderSong):
        for t in song.tracks:
            out.append((t.id, sf.read(str(rendered.root / t.audio), dtype="float32", always_2d=True)[0]))
    return out


def _pieces(x: np.ndarray, size: int):
    for i in range(0, len(x), size):
        yield x[i : i + size]


def test_streamed_loudness_equals_pyloudnorm(rendered):
    for name, x in _signals(rendered):
        reference = pyloudnorm.Meter(44100).integrated_loudness(x.astype(np.float64))
        for size in (7919, 44100, len(x)):  # pieces that cut the gating blocks anywhere
            meter = LoudnessMeter(44100, x.shape[1])
            for piece in _pieces(x, size):
                meter.add(piece)
            assert meter.result() == pytest.approx(reference, abs=0.01), name
            assert meter.result() == reference, name  # the same filters and sums: equal, bit for bit
    short = LoudnessMeter(44100, 2)  # under one gating block: padded with silence, as integrated_lufs
    short.add(_signals(rendered)[1][1][:5000])
    assert short.result() == integrated_lufs(_signals(rendered)[1][1][:5000], 44100)
    assert LoudnessMeter(44100, 2).result() == float("-inf")


def test_streamed_true_peak_equals_whole_signal(rendered):
    for name, x in _signals(rendered):
        for gain in (1.0, 3.0):
            y = (x * gain).astype(np.float32)
            meter = TruePeakMeter(len(y))
            for piece in _pieces(y, 3 * TP_BLOCK):
                meter.add(piece)
            assert meter.result() == true_peak_dbtp(y), name
            floor = 0.5 * float(np.abs(y).max())
            env = TruePeakMeter(len(y), floor)
            for piece in _pieces(y, 2 * TP_BLOCK):
                env.add(piece)
            assert env.envelope_max() == peak_envelope(y, floor).max(), name


def test_streamed_limiter_gain_equals_whole_signal(rendered, monkeypatch):
    monkeypatch.setattr(stream, "CHUNK", 4 * TP_BLOCK)
    for name, x in _signals(rendered)[:4]:
        env = peak_envelope(x)
        env = env * np.float32(4 * db_to_gain(-1.0) / env.max())  # 12 dB over the ceiling: the limiter works
        whole = limiter_gain(env, 44100, -1.0, 50.0)
        streamed = np.concatenate(list(limit_gains(len(env), 44100, -1.0, 50.0, lambda a, b, env=env: env[a:b])))
        assert np.array_equal(streamed, whole), name
        assert whole.min() < 0.3


def _whole_array_mix(job: MixJob) -> MixSong:
    """The mix stage as it was before streaming (whole arrays): the reference for byte equality."""
    song, p, sr = job.song, job.params, job.song.sample_rate
    song_dir = job.out_dir / song.id
    frames = max(sf.info(str(job.root / t.audio)).frames for t in song.tracks)
    acc = np.zeros((frames, 2), dtype=np.float64)
    stems = []
    for t in song.tracks:
        x, _ = sf.read(str(job.root / t.audio), dtype="float32", always_2d=True)
        loudness = integrated_lufs(x, sr)
        y, before, gain_db, limited, after, peak = normalise(
            x, sr, p.stem_lufs, p.ceiling_dbtp, p.limiter_release_ms, loudness=loudness
        )
        path = song_dir / Path(t.audio).name
        write_flac(path, y, sr)
        acc[: len(y)] += y
        stems.append(
            Stem(id=t.id, audio=path.relative_to(job.root).as_posix(), loudness_before_lufs=round(before, 3),
                 loudness_after_lufs=round(after, 3), gain_db=round(gain_db, 3), true_peak_dbtp=round(peak, 3),
                 limited=limited, **t.model_dump(include=set(Sound.model_fields)))
        )  # fmt: skip
    acc32 = acc.astype(np.float32)
    env = peak_envelope(acc32)
    staged = min(0.0, p.ceiling_dbtp - to_db(env.max()))
    shared_db = -20 * np.log10(len(stems)) if p.mode == "average" else staged
    shared = db_to_gain(shared_db)
    mix, _, mix_gain_db, mix_limited, mix_lufs, mix_peak = normalise(
        acc32 * shared, sr, p.mix_lufs, p.ceiling_dbtp, p.limiter_release_ms, envelope=env * shared
    )
    write_flac(song_dir / "mix.flac", mix, sr)
    return MixSong(
        id=song.id, artist=song.artist, title=song.title, sample_rate=sr, duration_s=round(frames / sr, 6),
        mode=p.mode, mix=(song_dir / "mix.flac").relative_to(job.root).as_posix(), stems=stems, silent_stems=[],
        shared_gain_db=round(shared_db, 3), mix_gain_db=round(mix_gain_db, 3), mix_lufs=round(mix_lufs, 3),
        mix_true_peak_dbtp=round(mix_peak, 3), mix_limited=mix_limited,
    )  # fmt: skip


@pytest.mark.parametrize("mode", ["sum", "average"])
def test_streamed_mix_is_byte_identical_to_the_whole_array_mix(rendered, monkeypatch, mode):
    chunk = 2 * TP_BLOCK  # ~0.37 s: every song crosses many chunk boundaries
    monkeypatch.setattr(stream, "CHUNK", chunk)
    monkeypatch.setattr(mix_module, "CHUNK", chunk)
    params = MixParams(mode=mode, mix_lufs=-8.0)  # hot: the limiter works on stems and mixes
    limited = 0
    for song in read_manifest(rendered.out("render").manifest, RenderSong):
        streamed = mix_song(MixJob(song, rendered.root, rendered.root / f"streamed-{mode}", params))
        whole = _whole_array_mix(MixJob(song, rendered.root, rendered.root / f"whole-{mode}", params))
        assert streamed.model_dump(exclude={"mix", "stems"}) == whole.model_dump(exclude={"mix", "stems"})
        for a, b in zip(streamed.stems, whole.stems, strict=True):
            assert a.model_dump(exclude={"audio", "source_gain"}) == b.model_dump(exclude={"audio", "source_gain"})
            if a.limited:  # mix's own file
                assert (rendered.root / a.audio).read_bytes() == (rendered.root / b.audio).read_bytes(), a.id
            else:  # the render file times a gain: the same samples as the reference's copy
                x = sf.read(str(rendered.root / a.audio), dtype="float32", always_2d=True)[0]
                copy = sf.read(str(rendered.root / b.audio), dtype="float32", always_2d=True)[0]
                assert np.array_equal(stem_samples(x, a), copy), a.id
        assert (rendered.root / streamed.mix).read_bytes() == (rendered.root / whole.mix).read_bytes()
        limited += streamed.mix_limited + sum(s.limited for s in streamed.stems)
        mix, sr = sf.read(str(rendered.root / streamed.mix), dtype="float32")
        assert streamed.mix_true_peak_dbtp <= params.ceiling_dbtp
        assert pyloudnorm.Meter(sr).integrated_loudness(mix.astype(np.float64)) == pytest.approx(
            streamed.mix_lufs, abs=0.05
        )
    assert limited  # the limiter's streamed path was exercised


def test_oversampling_is_upfirdn_bit_for_bit(rendered):
    """The path without numba: whole-array sums for blocks, upfirdn for long ranges."""
    from scipy.signal import upfirdn

    from pipeline.audio.loudness import _TP_TAPS, TP_BLOCK, TP_PAD, _upsample

    for name, x in _signals(rendered)[:3]:
        xt = np.ascontiguousarray(x.T)
        assert np.array_equal(_upsample(xt), upfirdn(_TP_TAPS, xt, up=4, axis=-1)), name
        # Blocks as the meters oversample them, at the start, middle and end.
        for start in (0, len(x) // 2, max(0, len(x) - TP_BLOCK)):
            block = np.ascontiguousarray(xt[:, start : start + TP_BLOCK + 2 * TP_PAD])
            assert np.array_equal(_upsample(block), upfirdn(_TP_TAPS, block, up=4, axis=-1)), (name, start)


def test_fused_envelope_equals_the_oversampled_signal(rendered, monkeypatch):
    """The compiled envelope (sums reduced as they are made) equals |upfirdn| maxed over phases and channels."""
    from pipeline.audio.loudness import TP_BLOCK, _oversampled

    assert kernels.envelope() is not None
    for name, x in _signals(rendered)[:4]:
        xt, n = np.ascontiguousarray(x.T), len(x)
        ranges = [(0, n), (0, min(n, TP_BLOCK)), (n // 2 // TP_BLOCK * TP_BLOCK, n), (max(0, n - 37), n)]
        fused = [_oversampled(xt, 0, n, a, b) for a, b in ranges]
        with monkeypatch.context() as m:
            m.setattr(kernels, "envelope", lambda: None)  # upfirdn itself for the long ranges
            plain = [_oversampled(xt, 0, n, a, b) for a, b in ranges]
        for (a, b), f, p in zip(ranges, fused, plain, strict=True):
            assert f.dtype == p.dtype and np.array_equal(f, p), (name, a, b)


@pytest.mark.parametrize("kernel", ["numba", "numpy"])
def test_integrated_lufs_is_pyloudnorm_bit_for_bit(rendered, monkeypatch, kernel):
    """Clip and augment measure every excerpt: the fast path must give pyloudnorm's value exactly, on
    excerpts of any length (shorter than a gating block, odd, mono) cut anywhere in real audio."""
    if kernel == "numba":
        assert kernels.biquads() is not None and kernels.block_sums() is not None
    else:
        monkeypatch.setattr(kernels, "biquads", lambda: None)
        monkeypatch.setattr(kernels, "block_sums", lambda: None)
    rng = np.random.default_rng(3)
    checked = 0
    for name, x in _signals(rendered):
        for length in (9000, 17640, 44100 * 3 + 17, 44100 * 20, len(x)):
            start = int(rng.integers(0, max(1, len(x) - length)))
            for excerpt in (x[start : start + length], x[start : start + length, :1]):
                padded = np.pad(excerpt, ((0, max(0, 17640 - len(excerpt))), (0, 0)))
                reference = pyloudnorm.Meter(44100).integrated_loudness(padded.astype(np.float64))
                value = integrated_lufs(excerpt, 44100)
                assert value == (reference if np.isfinite(reference) else float("-inf")), (name, start, length)
                checked += np.isfinite(value)
    assert checked > 20


def test_render_measured_every_stem_as_its_file_reads(rendered):
    """Mix normalises from the render manifest's levels: they must be the file's own, exactly."""
    from pipeline.audio.measure import measure_file

    tracks = [t for s in read_manifest(rendered.out("render").manifest, RenderSong) for t in s.tracks]
    assert tracks
    for t in tracks:
        path = rendered.root / t.audio
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
        m = t.measured
        assert m == measure_file(path), t.id
        assert m.loudness_lufs == pytest.approx(integrated_lufs(x, sr), abs=1e-9), t.id
        assert m.sample_peak == float(np.abs(x).max()), t.id
        assert to_db(np.float32(m.true_peak)) == true_peak_dbtp(x), t.id


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stem_meter_measures_what_the_24_bit_file_will_hold(rendered, tmp_path, dtype):
    """Render measures while writing (no read back): the pieces it writes, as libsndfile stores them in
    24 bits, give the values measured on the finished file, for a real recording and rendered stems."""
    from pipeline.audio.measure import StemMeter, as_pcm24, measure_file

    for i, (name, x) in enumerate(_signals(rendered)[:4]):
        x = (0.9 * x / max(1e-9, float(np.abs(x).max()))).astype(dtype)  # loud: many blocks near the peak
        path = tmp_path / f"{i}.flac"
        meter = StemMeter(44100, x.shape[1])
        with sf.SoundFile(str(path), "w", samplerate=44100, channels=x.shape[1], format="FLAC", subtype="PCM_24") as f:
            for piece in _pieces(x, 100_003):  # odd sizes: pieces straddle the meter's chunks
                f.write(piece)
                meter.add(piece)
        back = sf.read(str(path), dtype="float32", always_2d=True)[0]
        assert np.array_equal(as_pcm24(x), back), name
        assert meter.result() == measure_file(path), name

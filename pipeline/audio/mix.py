"""Loudness-normalise a song's stems and mix them.

`average` is the reference pipeline's method (the mean of the normalised stems);
`sum` adds them and, as Slakh2100 did, applies one shared gain when the sum would
pass the true-peak ceiling. Either way the mix is then brought to its own
loudness target, with a limiter keeping the ceiling.

A song is streamed in chunks (pipeline.audio.stream), so memory stays a few
chunks per stem whatever its length, and the files equal those of `normalise` on
whole arrays. Per stem: render measured its loudness, sample peak and true peak
(pipeline.audio.measure), so a stem that cannot reach the ceiling is read once;
for one that might, the envelope peak (oversampling only the blocks that can pass
the ceiling) decides whether the limiter acts, and a limited stem is limited once
to find its true peak (the hair over the ceiling `limit_true_peak` trims); then
all stems are streamed in step, the limited ones written to files of their own,
while their float64 sum goes to a float32 scratch file, which the mix's passes read.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.audio.loudness import (
    TP_BOUND,
    db_to_gain,
    integrated_lufs,
    limit_true_peak,
    peak_envelope,
    to_db,
)
from pipeline.audio.measure import loudness_of
from pipeline.audio.stream import (
    CHUNK,
    MARGIN,
    EnvelopeAt,
    FrameReader,
    LoudnessMeter,
    RawFile,
    TruePeakMeter,
    block_peaks,
    envelope_reader,
    exact_envelope_max,
    exact_envelope_reader,
    limit_gains,
)
from pipeline.errors import ItemError
from pipeline.io.atomic import atomic_open
from pipeline.params import MixParams
from pipeline.records import MixSong, RenderedTrack, RenderSong, Sound, Stem

SUBTYPE = "PCM_24"


@dataclass(frozen=True)
class MixJob:
    song: RenderSong
    root: Path
    out_dir: Path
    params: MixParams


def write_flac(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    with atomic_open(path, "wb") as fh:
        sf.write(fh, audio, sample_rate, format="FLAC", subtype=SUBTYPE)


def _r(x: float) -> float:
    return round(float(x), 3)


def normalise(
    x: np.ndarray,
    sample_rate: int,
    target_lufs: float,
    ceiling_dbtp: float,
    release_ms: float,
    loudness: float | None = None,
    envelope: np.ndarray | None = None,
) -> tuple[np.ndarray, float, float, bool, float, float]:
    """Bring `x` to `target_lufs` under the true-peak ceiling.

    Returns (audio, loudness before, gain dB, limited, loudness after, true peak dBTP).
    A gain shifts integrated loudness by exactly its dB, so loudness is measured
    again only when the limiter acted; `envelope` (of `x`) spares re-oversampling.
    """
    before = integrated_lufs(x, sample_rate) if loudness is None else loudness
    gain_db = target_lufs - before
    gain = db_to_gain(gain_db)
    y = (x * gain).astype(np.float32)
    if envelope is None:
        envelope = peak_envelope(x, floor=min(db_to_gain(ceiling_dbtp) / gain, float(np.abs(x).max(initial=0.0))))
    y, limited, peak = limit_true_peak(y, sample_rate, ceiling_dbtp, release_ms, envelope * gain)
    after = integrated_lufs(y, sample_rate) if limited else before + gain_db
    return y, before, gain_db, limited, after, peak


Source = Callable[[], tuple[Callable[[int, int], np.ndarray], EnvelopeAt, Callable[[], None]]]


@dataclass(frozen=True)
class Level:
    """What `normalise` decides for one signal, known before its output is written."""

    before: float
    gain_db: float
    limited: bool
    correction: float | None = None  # the limiter left a hair over the ceiling: this gain trims it
    peak: float | None = None  # true peak dBTP (None: measured while writing)

    @property
    def gain(self) -> float:
        return db_to_gain(self.gain_db)


def _gained(
    source: Source, n: int, sr: int, level: Level, p: MixParams, trim: bool = True, env_seen=None
) -> Iterator[np.ndarray]:
    """normalise()'s output for frames [s, s + CHUNK), s = 0, CHUNK, ..."""
    x_at, env_at, close = source()
    gain = level.gain
    try:
        gains = None
        if level.limited:

            def gained_env(a: int, b: int) -> np.ndarray:
                env = env_at(a, b)
                if env_seen is not None:  # the part of [a, b) that is this chunk's own
                    env_seen(env[: min(b, a + CHUNK) - a])
                return env * gain

            gains = limit_gains(n, sr, p.ceiling_dbtp, p.limiter_release_ms, gained_env)
        for s in range(0, n, CHUNK):
            curve = next(gains) if gains is not None else None  # reads ahead first: the reader moves forward
            x = x_at(s, min(n, s + CHUNK))
            y = (x * gain).astype(np.float32)
            if curve is not None:
                y = (y * curve[:, None]).astype(np.float32)
                if trim and level.correction is not None:
                    y = (y * level.correction).astype(np.float32)
            yield y
    finally:
        close()


def plan_level(
    source: Source, n: int, sr: int, before: float, target: float, env_peak: np.float32 | None, p: MixParams
) -> Level:
    """normalise()'s gain and limiter decisions. `env_peak`: the envelope's largest value, or None to
    find it while limiting (the limiter then runs in case; its result counts only if it acts)."""
    level = Level(before, target - before, True)
    ceiling = db_to_gain(p.ceiling_dbtp)
    if env_peak is not None and np.float32(env_peak) * level.gain <= ceiling:
        return replace(level, limited=False, peak=to_db(np.float32(env_peak) * level.gain))
    seen = [np.float32(0)]
    meter = TruePeakMeter(n)
    for y in _gained(source, n, sr, level, p, trim=False, env_seen=lambda e: seen.append(e.max(initial=0))):
        meter.add(y)
    top = np.float32(max(seen)) * level.gain
    if top <= ceiling:
        return replace(level, limited=False, peak=to_db(top))
    peak = meter.result()
    if peak > p.ceiling_dbtp:  # as limit_true_peak: interpolation left a hair over the ceiling
        return replace(level, correction=db_to_gain(p.ceiling_dbtp - peak - 0.01))
    return replace(level, peak=peak)


class Output:
    """One normalised signal being written: its file and what is measured on the way."""

    def __init__(self, stack: contextlib.ExitStack, path: Path, channels: int, n: int, sr: int, level: Level):
        fh = stack.enter_context(atomic_open(path, "wb"))
        self.file = stack.enter_context(
            sf.SoundFile(fh, "w", samplerate=sr, channels=channels, format="FLAC", subtype=SUBTYPE)
        )
        self.level = level
        self.loudness = LoudnessMeter(sr, channels) if level.limited else None
        self.peak = TruePeakMeter(n) if level.peak is None and level.limited else None

    def write(self, y: np.ndarray) -> None:
        self.file.write(y)
        if self.loudness is not None:
            self.loudness.add(y)
        if self.peak is not None:
            self.peak.add(y)

    def results(self) -> tuple[float, float]:
        """(loudness after, true peak dBTP), as normalise() reports them."""
        lv = self.level
        after = self.loudness.result() if self.loudness is not None else lv.before + lv.gain_db
        if self.peak is not None:
            peak = self.peak.result()
        else:
            assert lv.peak is not None
            peak = lv.peak
        return after, peak


@dataclass
class _StemPlan:
    track: RenderedTrack
    n: int
    channels: int
    level: Level
    source: Source


def _file_source(path: str, n: int, floor: float) -> Source:
    def source():
        reader = FrameReader(path)
        return reader, envelope_reader(reader, n, floor), reader.close

    return source


def mix_song(job: MixJob) -> MixSong:
    song, p, sr = job.song, job.params, job.song.sample_rate
    song_dir = job.out_dir / song.id
    paths = [str(job.root / t.audio) for t in song.tracks]
    infos = [sf.info(path) for path in paths]
    frames = max(info.frames for info in infos)
    plans, silent = [], []
    ceiling = db_to_gain(p.ceiling_dbtp)
    for t, path, info in zip(song.tracks, paths, infos, strict=True):
        if info.samplerate != sr:
            raise ItemError(f"{t.id}: stem is {info.samplerate} Hz, expected {sr} Hz")
        # Render measured the stem's file: loudness, sample peak and true peak, as mix would read them.
        loudness, n, channels = loudness_of(t.measured), info.frames, info.channels
        if loudness < p.silence_lufs:
            silent.append(t.id)
            continue
        gain = db_to_gain(p.stem_lufs - loudness)
        top = t.measured.sample_peak
        floor = min(ceiling / gain, top)  # normalise()'s: the envelope is exact where it can pass the ceiling
        source = _file_source(path, n, floor)
        if top * TP_BOUND * MARGIN * gain <= ceiling:  # cannot reach the ceiling: no limiter
            # The envelope's floor is the sample peak here, so its largest value is the stem's true peak.
            peak = to_db(np.float32(t.measured.true_peak) * gain)
            level = Level(loudness, p.stem_lufs - loudness, False, peak=peak)
        else:
            level = plan_level(source, n, sr, loudness, p.stem_lufs, None, p)
        plans.append(_StemPlan(t, n, channels, level, source))
    if not plans:
        raise ItemError(f"all {len(song.tracks)} stems are silent (below {p.silence_lufs} LUFS)")

    song_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".mix-", dir=song_dir.parent) as tmp:
        acc = RawFile(str(Path(tmp) / "sum.f32"), 2)
        stems, peaks = _write_stems(plans, song_dir, frames, sr, acc, p, job.root)
        # The mix's envelope is peak_envelope(sum) (floor 0); only its largest value and where it can
        # pass the ceiling matter, so only the blocks that can reach those are oversampled.
        env_max = exact_envelope_max(acc, frames, peaks)
        # average: the mean of the stems; sum: one shared gain only if the sum would pass the ceiling.
        staged = min(0.0, p.ceiling_dbtp - to_db(env_max))
        shared_db = -20 * np.log10(len(plans)) if p.mode == "average" else staged
        shared = db_to_gain(shared_db)
        meter = LoudnessMeter(sr, 2)
        for s in range(0, frames, CHUNK):
            meter.add(acc(s, min(frames, s + CHUNK)) * shared)
        before = meter.result()
        threshold = ceiling / (shared * db_to_gain(p.mix_lufs - before))
        env_of_sum = exact_envelope_reader(acc, frames, peaks, threshold)

        def source():
            return (lambda a, b: acc(a, b) * shared), (lambda a, b: env_of_sum(a, b) * shared), lambda: None

        level = plan_level(source, frames, sr, before, p.mix_lufs, np.float32(env_max) * shared, p)
        mix_path = song_dir / "mix.flac"
        with contextlib.ExitStack() as stack:
            out = Output(stack, mix_path, 2, frames, sr, level)
            for y in _gained(source, frames, sr, level, p):
                out.write(y)
        mix_lufs, mix_peak = out.results()
        acc.close()
    return MixSong(
        id=song.id,
        artist=song.artist,
        title=song.title,
        sample_rate=sr,
        duration_s=round(frames / sr, 6),
        mode=p.mode,
        mix=mix_path.relative_to(job.root).as_posix(),
        stems=stems,
        silent_stems=silent,
        shared_gain_db=_r(shared_db),
        mix_gain_db=_r(level.gain_db),
        mix_lufs=_r(mix_lufs),
        mix_true_peak_dbtp=_r(mix_peak),
        mix_limited=level.limited,
    )


def _write_stems(
    plans: list[_StemPlan], song_dir: Path, frames: int, sr: int, acc: RawFile, p: MixParams, root: Path
) -> tuple[list[Stem], np.ndarray]:
    """Add every stem up in step, chunk by chunk (float64, in track order) into `acc`, writing the stems
    the limiter changed (the others are their render file times a gain); returns the stems and the
    sum's block peaks."""
    with contextlib.ExitStack() as stack:
        outs = [
            Output(stack, song_dir / Path(pl.track.audio).name, pl.channels, pl.n, sr, pl.level)
            if pl.level.limited
            else None
            for pl in plans
        ]
        streams = [_gained(pl.source, pl.n, sr, pl.level, p) for pl in plans]
        peaks = []
        for s in range(0, frames, CHUNK):
            total = np.zeros((min(frames, s + CHUNK) - s, 2))
            for out, stream in zip(outs, streams, strict=True):
                y = next(stream, None)
                if y is not None:
                    if out is not None:
                        out.write(y)
                    total[: len(y)] += y
            total32 = total.astype(np.float32)
            acc.write(total32)
            peaks.append(block_peaks(total32))
    stems = []
    for pl, out in zip(plans, outs, strict=True):
        t, lv = pl.track, pl.level
        if out is not None:
            (after, peak), path, source_gain = out.results(), song_dir / Path(t.audio).name, None
        else:  # a gain shifts integrated loudness by exactly its dB; render measured the true peak
            assert lv.peak is not None
            after, peak, path, source_gain = lv.before + lv.gain_db, lv.peak, root / t.audio, lv.gain
        stems.append(
            Stem(
                id=t.id,
                audio=path.relative_to(root).as_posix(),
                source_gain=source_gain,
                loudness_before_lufs=_r(lv.before),
                loudness_after_lufs=_r(after),
                gain_db=_r(lv.gain_db),
                true_peak_dbtp=_r(peak),
                limited=lv.limited,
                **t.model_dump(include=set(Sound.model_fields)),
            )
        )
    return stems, np.concatenate(peaks)

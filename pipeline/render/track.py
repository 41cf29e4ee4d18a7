"""Render one track's events through a backend into a FLAC stem, in bounded memory.

Chunks before the last note-off go straight to disk; only the release tail is
held back, so trailing silence can be trimmed. NaN, silence and clipping are
caught here for every backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.audio.measure import StemMeter
from pipeline.errors import ItemError
from pipeline.io.atomic import atomic_path
from pipeline.records import StemMeasure
from pipeline.render.events import Backend, SynthEvent

SUBTYPE = "PCM_24"
CLIP_LEVEL = 0.999


@dataclass(frozen=True)
class RenderSettings:
    sample_rate: int = 44100
    tail_s: float = 2.0  # rendered after the last note-off for release and reverb tails
    trim_db: float = -80.0  # trailing audio below this level (dBFS) is cut
    chunk_s: float = 10.0  # render and write this much at a time


@dataclass(frozen=True)
class RenderedAudio:
    frames: int
    sample_rate: int
    peak_dbfs: float
    gain_db: float
    measured: StemMeasure  # the file's loudness and peaks, measured while writing it

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


class Clipped(ItemError):
    """The render peaked above full scale (`peak`: the whole track's); render again `gain_db` lower."""

    def __init__(self, peak: float):
        self.peak = peak
        super().__init__(f"render peaked at {20 * np.log10(peak):+.2f} dBFS")


def _note_end(events: Sequence[SynthEvent]) -> float:
    return max((e.time_s for e in events if e.kind == "note_off"), default=0.0)


# Raw chunks of one track kept in memory while it renders, so a track that clips is written again
# from them at a lower gain instead of rendered twice (a plugin's render can cost seconds); a longer
# track falls back to rendering again. 96 MiB holds 4.8 min of stereo float32 at 44.1 kHz.
REPLAY_BYTES = 96 * 2**20


class _Recorder:
    """Passes a backend's chunks through and keeps them (the backend hands out fresh arrays) until
    they pass `limit` bytes; `chunks` is None from then on."""

    def __init__(self, source: Iterable[np.ndarray], limit: int):
        self.source, self.limit, self.size = source, limit, 0
        self.chunks: list[np.ndarray] | None = []

    def __iter__(self) -> Iterator[np.ndarray]:
        for chunk in self.source:
            if self.chunks is not None:
                self.size += chunk.nbytes
                if self.size <= self.limit:
                    self.chunks.append(chunk)
                else:
                    self.chunks = None
            yield chunk


def render_to_file(
    backend: Backend, events: Sequence[SynthEvent], path: Path, settings: RenderSettings, gain_db: float = 0.0
) -> RenderedAudio:
    """Render `events` to a stereo FLAC at `path` (atomically). Raises ItemError on NaN or silence."""
    note_end = _note_end(events)
    return _write(_chunks(backend, events, settings, note_end), backend.name, note_end, path, settings, gain_db)


def _chunks(
    backend: Backend, events: Sequence[SynthEvent], settings: RenderSettings, note_end: float
) -> Iterator[np.ndarray]:
    if note_end <= 0:
        raise ItemError("track has no notes to render")
    frames = max(1, round(settings.chunk_s * settings.sample_rate))
    return backend.render(events, note_end + settings.tail_s, settings.sample_rate, frames)


def _write(
    chunks: Iterable[np.ndarray], name: str, note_end: float, path: Path, settings: RenderSettings, gain_db: float
) -> RenderedAudio:
    """Write a track's raw chunks times the gain; Clipped (with the whole track's peak) if it would clip."""
    sr = settings.sample_rate
    safe_frames = round(note_end * sr)  # audio before this point is never trailing silence
    threshold = 10 ** (settings.trim_db / 20)
    gain = 10 ** (gain_db / 20)
    written, peak, held = 0, 0.0, []
    meter = StemMeter(sr, 2)
    with atomic_path(path) as tmp:
        with sf.SoundFile(tmp, "w", samplerate=sr, channels=2, format="FLAC", subtype=SUBTYPE) as out:
            position = 0
            for chunk in chunks:
                if not np.all(np.isfinite(chunk)):
                    bad = position + int(np.argmin(np.all(np.isfinite(chunk), axis=1)))
                    raise ItemError(f"{name} returned NaN or infinite samples at {bad / sr:.3f} s")
                chunk = chunk * gain if gain != 1.0 else chunk
                peak = max(peak, float(np.abs(chunk).max(initial=0.0)))
                if peak > CLIP_LEVEL:  # render to the end for the whole track's peak, writing nothing more
                    position += len(chunk)
                    continue
                head = max(0, min(len(chunk), safe_frames - position))
                if head:
                    out.write(chunk[:head])
                    meter.add(chunk[:head])
                    written += head
                if head < len(chunk):
                    held.append(chunk[head:])
                position += len(chunk)
            if peak > CLIP_LEVEL:
                raise Clipped(peak)
            if held:
                tail = np.concatenate(held)
                loud = np.flatnonzero(np.abs(tail).max(axis=1) >= threshold)
                keep = int(loud[-1]) + 1 if len(loud) else 0
                out.write(tail[:keep])
                meter.add(tail[:keep])
                written += keep
        if peak < threshold:
            raise ItemError(f"{name} rendered silence (peak below {settings.trim_db:g} dBFS); check the patch")
    return RenderedAudio(written, sr, round(float(20 * np.log10(peak)), 3), gain_db, meter.result())


def _below(gain_db: float, peak: float, margin_db: float) -> float:
    return round(float(gain_db - 20 * np.log10(peak / CLIP_LEVEL) - margin_db), 3)


def render_with_headroom(
    backend: Backend, events: Sequence[SynthEvent], path: Path, settings: RenderSettings, gain_db: float = 0.0
) -> RenderedAudio:
    """Render; if it would clip, write it again just far enough below full scale for the whole track's
    peak: from the chunks kept in memory (the same samples, so it cannot clip again), or, for a track
    too long to keep, by rendering again. A backend that renders the same samples twice then cannot
    clip; one that does not (a plugin with unseeded randomness) gets one more try, with the second
    peak and 3 dB more room."""
    note_end = _note_end(events)
    recorder = _Recorder(_chunks(backend, events, settings, note_end), REPLAY_BYTES)
    try:
        return _write(recorder, backend.name, note_end, path, settings, gain_db)
    except Clipped as clip:
        lower = _below(gain_db, clip.peak, 0.5)
    if recorder.chunks is not None:
        return _write(recorder.chunks, backend.name, note_end, path, settings, lower)
    try:
        return render_to_file(backend, events, path, settings, lower)
    except Clipped as again:
        return render_to_file(backend, events, path, settings, _below(lower, again.peak, 3.0))

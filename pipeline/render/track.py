"""Render one track's events through a backend into a FLAC stem, in bounded memory.

Chunks before the last note-off go straight to disk; only the release tail is
held back, so trailing silence can be trimmed. NaN, silence and clipping are
caught here for every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def render_to_file(
    backend: Backend, events: Sequence[SynthEvent], path: Path, settings: RenderSettings, gain_db: float = 0.0
) -> RenderedAudio:
    """Render `events` to a stereo FLAC at `path` (atomically). Raises ItemError on NaN or silence."""
    sr = settings.sample_rate
    note_end = _note_end(events)
    if note_end <= 0:
        raise ItemError("track has no notes to render")
    end_s = note_end + settings.tail_s
    safe_frames = round(note_end * sr)  # audio before this point is never trailing silence
    threshold = 10 ** (settings.trim_db / 20)
    gain = 10 ** (gain_db / 20)
    chunk_frames = max(1, round(settings.chunk_s * sr))
    written, peak, held = 0, 0.0, []
    meter = StemMeter(sr, 2)
    with atomic_path(path) as tmp:
        with sf.SoundFile(tmp, "w", samplerate=sr, channels=2, format="FLAC", subtype=SUBTYPE) as out:
            position = 0
            for chunk in backend.render(events, end_s, sr, chunk_frames):
                if not np.all(np.isfinite(chunk)):
                    bad = position + int(np.argmin(np.all(np.isfinite(chunk), axis=1)))
                    raise ItemError(f"{backend.name} returned NaN or infinite samples at {bad / sr:.3f} s")
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
            raise ItemError(f"{backend.name} rendered silence (peak below {settings.trim_db:g} dBFS); check the patch")
    return RenderedAudio(written, sr, round(float(20 * np.log10(peak)), 3), gain_db, meter.result())


def render_with_headroom(
    backend: Backend, events: Sequence[SynthEvent], path: Path, settings: RenderSettings, gain_db: float = 0.0
) -> RenderedAudio:
    """Render; if it would clip, render again just far enough below full scale for the whole track's
    peak. A backend that renders the same samples twice then cannot clip; one that does not (a plugin
    with unseeded randomness) gets one more try, with the second peak and 3 dB more room."""
    try:
        return render_to_file(backend, events, path, settings, gain_db)
    except Clipped as clip:
        lower = round(float(gain_db - 20 * np.log10(clip.peak / CLIP_LEVEL) - 0.5), 3)
    try:
        return render_to_file(backend, events, path, settings, lower)
    except Clipped as again:
        lowest = round(float(lower - 20 * np.log10(again.peak / CLIP_LEVEL) - 3.0), 3)
        return render_to_file(backend, events, path, settings, lowest)

"""A stem's levels, measured once where it is made: what mix needs to normalise it.

Render feeds every piece it writes to a `StemMeter`, so neither render nor mix
reads a stem back to learn its loudness and peaks. The meter sees the samples
as the 24-bit file will decode them (`as_pcm24`, libsndfile's conversion both
ways), so its values equal those measured on the file (`measure_file`) exactly.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.audio.loudness import SILENCE
from pipeline.audio.stems import as_pcm24
from pipeline.audio.stream import (
    CHUNK,
    LoudnessMeter,
    TruePeakMeter,
)
from pipeline.records import StemMeasure


def measure_file(path: Path | str) -> StemMeasure:
    """Integrated loudness, sample peak and true peak of an audio file, in one streamed read."""
    with sf.SoundFile(str(path)) as f:
        meter = StemMeter(f.samplerate, f.channels, frames=f.frames)
        for x in f.blocks(CHUNK, dtype="float32", always_2d=True):
            meter.measure(x)
    return meter.result()


class StemMeter:
    """measure_file's values for a 24-bit file, from the pieces written to it, in the same pieces as
    measure_file reads (CHUNK frames): loudness, block peaks and the true peak in one pass, no read back."""

    def __init__(self, sample_rate: int, channels: int, frames: int | None = None):
        self.loudness = LoudnessMeter(sample_rate, channels)
        # Frames, when unknown until the end, are set before the last piece (only it needs them).
        self.peak = TruePeakMeter(sys.maxsize if frames is None else frames)
        self.top = np.float32(0)
        self.pending: list[np.ndarray] = []
        self.buffered = 0
        self.frames = 0

    def add(self, written: np.ndarray) -> None:
        """Frames just written to the file (float, as passed to soundfile)."""
        if len(written):
            self.pending.append(as_pcm24(written))
            self.buffered += len(written)
        while self.buffered > CHUNK:  # a whole chunk with frames after it: not the last piece
            self.measure(self._take(CHUNK))

    def _take(self, k: int) -> np.ndarray:
        x = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
        self.pending, self.buffered = ([x[k:]] if len(x) > k else []), len(x) - k
        return x[:k]

    def measure(self, x: np.ndarray) -> None:
        """Samples as the file holds them, in CHUNK pieces (the last may be shorter)."""
        self.loudness.add(x)
        self.peak.add(x)
        self.top = max(self.top, np.abs(x).max(initial=np.float32(0)))
        self.frames += len(x)

    def result(self) -> StemMeasure:
        self.peak.n = self.frames + self.buffered  # the true length, for the zeros past the end
        if self.buffered:
            self.measure(self._take(self.buffered))
        lufs = self.loudness.result()
        return StemMeasure(
            loudness_lufs=None if lufs == SILENCE else lufs,
            sample_peak=float(self.top),
            true_peak=float(self.peak.envelope_max()),
        )


def loudness_of(measure: StemMeasure) -> float:
    """The measured loudness as the loudness functions report it (-inf for silence)."""
    return SILENCE if measure.loudness_lufs is None else measure.loudness_lufs

"""Estimates of a recording's tempo and key, from the audio alone (essentia).

They fill only labels a person left empty, and only when the estimator is sure
enough (params); every estimate is kept in the record for audit and for drafts.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from pipeline.analysis.key import audio_key
from pipeline.params import RecordingsParams
from pipeline.recordings.audio import SAMPLE_RATE, SourceInfo, analysis_window, stereo_blocks
from pipeline.records import RecordingEstimates

MIN_ANALYSIS_S = 4.0


@functools.cache
def _rhythm():
    import essentia.standard as es

    return es.RhythmExtractor2013(method="multifeature")


def estimate(path: Path, info: SourceInfo, params: RecordingsParams) -> RecordingEstimates:
    """Tempo (beat tracker) and key on the recording's analysis window (all of it, or its middle)."""
    start, frames = analysis_window(info, params.analysis_max_s)
    blocks = list(stereo_blocks(path, info, start, frames))
    mono = np.concatenate(blocks).mean(axis=1, dtype=np.float32) if blocks else np.zeros(0, np.float32)
    seconds = round(len(mono) / SAMPLE_RATE, 3)
    if seconds < MIN_ANALYSIS_S:
        return RecordingEstimates(analysed_s=seconds, bpm=None, bpm_confidence=None, beats=0, key=None,
                                  key_strength=None)  # fmt: skip
    bpm, ticks, confidence, _, _ = _rhythm()(mono)
    key = audio_key(mono, SAMPLE_RATE, params.key_profile)
    return RecordingEstimates(
        analysed_s=seconds,
        bpm=round(float(bpm), 2) if bpm > 0 else None,
        bpm_confidence=round(float(confidence), 3),
        beats=len(ticks),
        key=key.label,
        key_strength=key.strength,
    )

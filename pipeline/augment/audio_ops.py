"""Audio-domain transforms for clips without MIDI: pitch shift and time stretch (pedalboard)."""

from __future__ import annotations

import numpy as np


def fit_frames(x: np.ndarray, frames: int) -> np.ndarray:
    """Cut or pad (with silence) `x` (frames, channels) to exactly `frames` frames."""
    if len(x) >= frames:
        return np.ascontiguousarray(x[:frames])
    return np.pad(x, ((0, frames - len(x)), (0, 0)))


def stereo(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    return np.repeat(x, 2, axis=1) if x.shape[1] == 1 else x[:, :2]


def pitch_shift(x: np.ndarray, sample_rate: int, semitones: float) -> np.ndarray:
    """Shift pitch, keeping duration (pedalboard's PitchShift, a phase vocoder)."""
    from pedalboard import PitchShift

    y = PitchShift(semitones=float(semitones)).process(np.ascontiguousarray(x.T), float(sample_rate))
    return fit_frames(np.ascontiguousarray(y.T), len(x))


def time_stretch(x: np.ndarray, sample_rate: int, speed: float, frames: int) -> np.ndarray:
    """Play `speed` times as fast at the same pitch (pedalboard's time_stretch), fitted to `frames`."""
    from pedalboard import time_stretch as stretch

    y = stretch(np.ascontiguousarray(x.T), float(sample_rate), stretch_factor=float(speed))
    return fit_frames(np.ascontiguousarray(np.asarray(y, dtype=np.float32).T), frames)

"""Measurements tests make on rendered audio, independent of the pipeline's own code."""

from __future__ import annotations

import numpy as np
import pyloudnorm
from scipy.signal import resample_poly


def onsets(x: np.ndarray, sr: int, threshold_db: float = -35.0, quiet_s: float = 0.04) -> np.ndarray:
    """Times where the level rises above threshold (relative to the peak) after a quiet stretch."""
    env = np.abs(x).max(axis=1)
    thr = env.max() * 10 ** (threshold_db / 20)
    above = env > thr
    starts = np.flatnonzero(above & ~np.r_[False, above[:-1]])
    q = round(quiet_s * sr)
    keep = [i for i in starts if i == 0 or env[max(0, i - q) : i].max() <= thr]
    return np.array(keep) / sr


def dominant_hz(x: np.ndarray, sr: int) -> float:
    mono = x.mean(axis=1) * np.hanning(len(x))
    spec = np.abs(np.fft.rfft(mono, n=8 * len(mono)))
    return float(np.fft.rfftfreq(8 * len(mono), 1 / sr)[np.argmax(spec)])


def centroid_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x.mean(axis=1)))
    freqs = np.fft.rfftfreq(len(x), 1 / sr)
    return float((spec * freqs).sum() / spec.sum())


def lufs(x: np.ndarray, sr: int) -> float:
    return float(pyloudnorm.Meter(sr).integrated_loudness(x.astype(np.float64)))


def true_peak_reference(x: np.ndarray) -> float:
    """4x oversampling with scipy's long polyphase filter (a reference, not the pipeline's)."""
    return float(20 * np.log10(np.abs(resample_poly(x.astype(np.float64), 4, 1, axis=0)).max()))

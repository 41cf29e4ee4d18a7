"""Tempo and key of audio files with the project's estimators (pipeline/analysis):
deeprhythm (when its weights are present) and essentia's RhythmExtractor2013 for tempo,
essentia's KeyExtractor with one fixed profile for key. The same code measures every
model's generations and the test split's real clips."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.analysis.key import audio_key
from pipeline.analysis.tempo import (
    DEEPRHYTHM_DEFAULT_DIR,
    DEEPRHYTHM_FILE,
    find_deeprhythm_weights,
    tempo_backend,
)
from pipeline.params import EvaluateParams

SAMPLE_RATE = 44100
MIN_RMS = 1e-6  # quieter audio (digital silence) is not measured: no tempo, no key


@dataclass(frozen=True)
class TempoPlan:
    """The tempo estimators that run, the one the headline figures use, and why."""

    primary: str
    estimators: tuple[str, ...]
    description: str


def plan_tempo(p: EvaluateParams) -> TempoPlan:
    """deeprhythm (and essentia beside it) when its weights exist, else essentia alone, said so."""
    weights = find_deeprhythm_weights(p.tempo.deeprhythm_weights)
    if weights is None:
        where = p.tempo.deeprhythm_weights or str(DEEPRHYTHM_DEFAULT_DIR / DEEPRHYTHM_FILE)
        return TempoPlan("essentia", ("essentia",), f"essentia (deeprhythm weights not found at {where})")
    tempo_backend("deeprhythm", str(weights), p.tempo.essentia_method)  # bad weights stop here (ConfigError)
    return TempoPlan("deeprhythm", ("deeprhythm", "essentia"), f"deeprhythm (weights {weights}); essentia also")


@dataclass(frozen=True)
class Measurement:
    tempo_bpm: dict[str, float | None]
    key: str | None
    key_strength: float | None
    note: str | None = None


def read_mono(path: Path) -> np.ndarray:
    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise ValueError(f"{path}: {sr} Hz, expected {SAMPLE_RATE}")
    return audio.mean(axis=1)


def measure_audio(mono: np.ndarray, plan: TempoPlan, p: EvaluateParams) -> Measurement:
    """Every planned tempo estimate and the key of one mono 44.1 kHz signal."""
    if not len(mono) or float(np.sqrt(np.mean(mono.astype(np.float64) ** 2))) < MIN_RMS:
        return Measurement({name: None for name in plan.estimators}, None, None, "silent: not measured")
    tempos: dict[str, float | None] = {}
    for name in plan.estimators:
        weights = p.tempo.deeprhythm_weights if name == "deeprhythm" else None
        est = tempo_backend(name, weights, p.tempo.essentia_method).estimate(mono, SAMPLE_RATE)
        tempos[name] = est.bpm if est.bpm > 0 else None
    key = audio_key(mono, SAMPLE_RATE, p.key_profile)
    return Measurement(tempos, key.label, key.strength)


def measure_file(path: Path, plan: TempoPlan, p: EvaluateParams) -> Measurement:
    return measure_audio(read_mono(path), plan, p)


@dataclass(frozen=True)
class MeasureContext:
    """What every measurement job needs (map_items' read-only context)."""

    plan: TempoPlan
    params: EvaluateParams
    root: Path


def measure_job(audio: str, ctx: MeasureContext) -> Measurement:
    """One file (a path relative to the root), for pipeline.parallel.map_items."""
    return measure_file(ctx.root / audio, ctx.plan, ctx.params)

"""Tempo from audio: deeprhythm (a CNN on harmonic constant-Q modulation) or essentia.

deeprhythm downloads its weights from GitHub on first use, which fails offline,
and its predictor ignores a model path; so its real model and feature code are
used here directly with weights from a path. It also imports torchaudio, whose
PyPI wheel is a CUDA build that cannot load on a CPU torch: torchaudio is then
imported with its native extension marked unavailable (deeprhythm needs only
the pure-Python AmplitudeToDB).
"""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from pipeline.errors import ConfigError
from pipeline.params import TagParams
from pipeline.torchaudio_cpu import import_torchaudio as import_torchaudio_cpu

DEEPRHYTHM_SR = 22050
DEEPRHYTHM_CLIP_S = 8
DEEPRHYTHM_FILE = "deeprhythm-0.7.pth"
DEEPRHYTHM_DEFAULT_DIR = Path("~/.local/share/deeprhythm").expanduser()


@dataclass(frozen=True)
class TempoEstimate:
    bpm: float
    confidence: float


def import_torchaudio():
    """torchaudio, even when its native library (a CUDA build) cannot load."""
    return import_torchaudio_cpu()[0]


def find_deeprhythm_weights(path: str | None) -> Path | None:
    """The configured weights file, else the one deeprhythm itself would have cached."""
    if path:
        p = Path(path).expanduser()
        return p if p.is_file() else None
    default = DEEPRHYTHM_DEFAULT_DIR / DEEPRHYTHM_FILE
    return default if default.is_file() else None


class DeepRhythmTempo:
    """deeprhythm's model and HCQM features, weights from a file, on CPU."""

    name = "deeprhythm"

    def __init__(self, weights: Path):
        import torch

        import_torchaudio()
        from deeprhythm.audio_proc.hcqm import make_kernels
        from deeprhythm.model.frame_cnn import DeepRhythmModel

        torch.set_num_threads(1)  # deterministic and fair to the other workers
        self.torch = torch
        self.model = DeepRhythmModel()
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            self.model.load_state_dict(state)
        except (RuntimeError, EOFError, OSError, ValueError, KeyError, pickle.UnpicklingError) as exc:
            raise ConfigError(f"deeprhythm weights {weights} do not load into its model: {exc}") from None
        self.model.eval()
        self.kernels = make_kernels(device="cpu")

    def estimate(self, mono: np.ndarray, sample_rate: int) -> TempoEstimate:
        from deeprhythm.audio_proc.hcqm import compute_hcqm
        from deeprhythm.utils import class_to_bpm

        torch = self.torch
        y = resample_poly(mono.astype(np.float64), DEEPRHYTHM_SR, sample_rate).astype(np.float32)
        clip = DEEPRHYTHM_SR * DEEPRHYTHM_CLIP_S
        if len(y) < clip:
            y = np.pad(y, (0, clip - len(y)))
        clips = torch.from_numpy(y[: len(y) // clip * clip].reshape(-1, clip).copy())
        with torch.no_grad():
            feats = compute_hcqm(clips, *self.kernels).permute(0, 3, 1, 2)
            probs = torch.softmax(self.model(feats), dim=1).mean(dim=0)
            confidence, cls = torch.max(probs, 0)
        return TempoEstimate(round(float(class_to_bpm(int(cls))), 3), round(float(confidence), 4))


class EssentiaTempo:
    """essentia's RhythmExtractor2013."""

    name = "essentia"

    def __init__(self, method: str = "multifeature"):
        import essentia.standard as es

        self.extractor = es.RhythmExtractor2013(method=method)

    def estimate(self, mono: np.ndarray, sample_rate: int) -> TempoEstimate:
        y = mono.astype(np.float32)
        if sample_rate != 44100:
            y = resample_poly(y, 44100, sample_rate).astype(np.float32)
        bpm, _, confidence, _, _ = self.extractor(y)
        return TempoEstimate(round(float(bpm), 3), round(float(confidence), 4))


@functools.cache
def tempo_backend(name: str, weights: str | None, essentia_method: str):
    """One estimator per process (model weights load once per worker)."""
    if name == "essentia":
        return EssentiaTempo(essentia_method)
    found = find_deeprhythm_weights(weights)
    if found is None:
        raise ConfigError(missing_weights_message(weights))
    return DeepRhythmTempo(found)


def missing_weights_message(weights: str | None) -> str:
    where = weights or str(DEEPRHYTHM_DEFAULT_DIR / DEEPRHYTHM_FILE)
    return (
        f"deeprhythm weights not found at {where}. deeprhythm downloads {DEEPRHYTHM_FILE} from GitHub on first use, "
        "which needs network: fetch it once where network is available and set tag.tempo.deeprhythm_weights to it, "
        "or use tag.tempo.backend: essentia (or auto, which falls back to essentia)"
    )


def tempo_accuracy(estimate: float, truth: float, tolerance: float = 0.04) -> tuple[bool, bool]:
    """(Acc1: within tolerance of the truth, Acc2: also allowing x2, x3, x1/2, x1/3)."""

    def near(target: float) -> bool:
        return abs(estimate - target) <= tolerance * target

    return near(truth), any(near(truth * f) for f in (1, 2, 3, 1 / 2, 1 / 3))


COMPOUND_NUMERATORS = (6, 9, 12)


def midi_tempo(tempo_map: list[tuple[float, float]], duration_s: float) -> float:
    """Quarter-note BPM weighted by how long each tempo holds (the DAW's BPM)."""
    total = 0.0
    for i, (start, bpm) in enumerate(tempo_map):
        stop = tempo_map[i + 1][0] if i + 1 < len(tempo_map) else duration_s
        total += max(0.0, min(stop, duration_s) - start) * bpm
    return round(total / duration_s, 4) if duration_s > 0 else tempo_map[0][1]


def beat_tempo(quarter_bpm: float, numerator: int, denominator: int) -> float:
    """The felt beat's tempo: the dotted quarter in compound meters (6/8, 9/8, 12/8),
    which is what audio tempo estimators count; the quarter note otherwise."""
    if denominator == 8 and numerator in COMPOUND_NUMERATORS:
        return round(quarter_bpm * 2 / 3, 4)
    return quarter_bpm


@dataclass(frozen=True)
class TempoPlan:
    """Which tempo backends run, which one labels, and why (recorded in the summary)."""

    primary: str
    measured: tuple[str, ...]
    note: str | None


def plan_tempo(params: TagParams) -> TempoPlan:
    """Resolve `auto`, and load deeprhythm once here so bad weights stop the stage before any work."""
    p = params.tempo
    weights = find_deeprhythm_weights(p.deeprhythm_weights)
    if p.backend == "essentia":
        return TempoPlan("essentia", ("essentia",), None)
    if weights is None:
        if p.backend == "deeprhythm":
            tempo_backend("deeprhythm", p.deeprhythm_weights, p.essentia_method)  # raises the clear error
        return TempoPlan("essentia", ("essentia",), "deeprhythm weights unavailable offline: fell back to essentia")
    tempo_backend("deeprhythm", p.deeprhythm_weights, p.essentia_method)
    return TempoPlan("deeprhythm", ("deeprhythm", "essentia"), None)

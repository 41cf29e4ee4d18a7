"""Fréchet distances between sets of audio files in a learned music embedding (musicnn).

Runs in its own environment (TensorFlow cannot share the data environment's): see
benchmarks/sound.py, which calls it. Each file is read at 16 kHz mono, set to -14 LUFS (so level
is not what the distance measures), cut into 3 s patches, and every patch embedded with musicnn's
MSD_musicnn model (trained to tag the Million Song Dataset; weights inside the `musicnn` wheel),
taking its 200-d penultimate layer. A set's embeddings are summarised by their mean and covariance,
and two sets compared by the Fréchet distance (as FAD/FID):
|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).

Input (JSON on stdin): {"sets": {name: [files]}, "pairs": [[a, b], ...], "max_s": seconds per file,
"max_s_stems": seconds per file of a set whose name ends in /stems}.
Output (JSON on stdout): {"patches": {name: n}, "distances": {"a|b": d}, "bootstrap": {"a|b": [p5, p50, p95]}}
(with "bootstrap": n, each distance again n times over the first set's files drawn with replacement).
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # musicnn builds tf.compat.v1.layers graphs
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import librosa
import numpy as np
import pyloudnorm
import soundfile as sf
import tensorflow as tf
from musicnn import configuration as config
from musicnn import models

from pipeline.analysis.frechet import frechet_distance

SR = config.SR  # 16 kHz
PATCH_S = 3.0
MODEL = "MSD_musicnn"


class Embedder:
    """musicnn's graph built once, its checkpoint restored from the installed wheel."""

    def __init__(self, model: str = MODEL):
        tf.compat.v1.disable_eager_execution()
        tf.compat.v1.reset_default_graph()
        # musicnn's own patch length: librosa.time_to_frames(3 s) + 1 = 187 frames
        self.frames = librosa.time_to_frames(PATCH_S, sr=SR, n_fft=config.FFT_SIZE, hop_length=config.FFT_HOP) + 1
        with tf.name_scope("model"):
            self.x = tf.compat.v1.placeholder(tf.float32, [None, self.frames, config.N_MELS])
            self.training = tf.compat.v1.placeholder(tf.bool)
            outputs = models.define_model(self.x, self.training, model, len(config.MSD_LABELS))
        self.penultimate = outputs[-1]
        self.session = tf.compat.v1.Session()
        self.session.run(tf.compat.v1.global_variables_initializer())
        folder = os.path.join(os.path.dirname(models.__file__), model)
        tf.compat.v1.train.Saver().restore(self.session, folder + "/")

    def patches(self, path: str, max_s: float) -> np.ndarray:
        # Only the middle `max_s` of a long file (past its intro, before its fade) is read and resampled.
        info = sf.info(path)
        keep = min(info.frames, int(max_s * info.samplerate))
        start = (info.frames - keep) // 2
        x, rate = sf.read(path, start=start, frames=keep, dtype="float32", always_2d=True)
        y = librosa.resample(x.mean(axis=1), orig_sr=rate, target_sr=SR)
        loudness = pyloudnorm.Meter(SR).integrated_loudness(y.astype(np.float64))
        if not np.isfinite(loudness):
            return np.zeros((0, 200), dtype=np.float32)
        y = (y * 10 ** ((-14.0 - loudness) / 20)).astype(np.float32)
        mel = librosa.feature.melspectrogram(
            y=y, sr=SR, hop_length=config.FFT_HOP, n_fft=config.FFT_SIZE, n_mels=config.N_MELS
        ).T
        # musicnn's input: the mel power rounded to float16 as its extractor does, then the log in float32
        # (its extractor multiplies in float16, which overflows to inf above a power of 6.55)
        mel = np.log10(10000 * mel.astype(np.float16).astype(np.float32) + 1)
        n = len(mel) // self.frames
        if n == 0:
            return np.zeros((0, 200), dtype=np.float32)
        batch = mel[: n * self.frames].reshape(n, self.frames, config.N_MELS)
        return self.session.run(self.penultimate, feed_dict={self.x: batch, self.training: False})


def main() -> None:
    job = json.load(sys.stdin)
    embedder = Embedder()
    emb, per_file = {}, {}
    for name, files in job["sets"].items():
        max_s = job.get("max_s_stems", 30.0) if name.endswith("/stems") else job.get("max_s", 120.0)
        per_file[name] = [embedder.patches(f, max_s) for f in files]
        emb[name] = np.concatenate(per_file[name]) if files else np.zeros((0, 200))
        print(f"{name}: {len(files)} files, {len(emb[name])} patches", file=sys.stderr)
    out = {"patches": {k: len(v) for k, v in emb.items()}, "distances": {}, "bootstrap": {}}
    rng = np.random.default_rng(0)
    for a, b in job["pairs"]:
        out["distances"][f"{a}|{b}"] = round(frechet_distance(emb[a], emb[b]), 3)
        # The spread from which files happened to be in the first set: FD over files drawn with replacement.
        draws = []
        for _ in range(job.get("bootstrap", 0)):
            pick = rng.integers(len(per_file[a]), size=len(per_file[a]))
            draws.append(frechet_distance(np.concatenate([per_file[a][i] for i in pick]), emb[b]))
        if draws:
            out["bootstrap"][f"{a}|{b}"] = [round(float(np.percentile(draws, q)), 3) for q in (5, 50, 95)]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()

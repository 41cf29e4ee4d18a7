"""musicnn (MSD-trained music tagger; weights inside the `musicnn` wheel) on audio files.

Runs only in the tagger environment (`make tagger-env`: TensorFlow cannot share the data
environment's numpy and protobuf pins); the pipeline reaches it through a subprocess
(pipeline/recordings/tagger.py), the sound benchmark through benchmarks/sound_fad.py. One
graph is built per process and its checkpoint restored from the installed wheel.

A file is read at 16 kHz mono (only its middle `max_s`, past the intro, before the fade), set
to -14 LUFS so level does not move the result, cut into musicnn's 3 s patches, and each patch
gives the 50 MSD tag probabilities and the 200-d penultimate layer.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # musicnn builds tf.compat.v1.layers graphs
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import librosa
import numpy as np
import pyloudnorm
import soundfile as sf
import tensorflow as tf
from musicnn import configuration as config
from musicnn import models

SR = config.SR  # 16 kHz
PATCH_S = 3.0
MODEL = "MSD_musicnn"
TAGS: tuple[str, ...] = tuple(config.MSD_LABELS)
EMBEDDING_DIM = 200


class Musicnn:
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
        self.probabilities = tf.nn.sigmoid(outputs[0])
        self.penultimate = outputs[-1]
        self.session = tf.compat.v1.Session()
        self.session.run(tf.compat.v1.global_variables_initializer())
        folder = os.path.join(os.path.dirname(models.__file__), model)
        tf.compat.v1.train.Saver().restore(self.session, folder + "/")

    def _batch(self, path: str, max_s: float) -> np.ndarray | None:
        """The file's log-mel patches (n, frames, mels), or None when it has no audible patch."""
        info = sf.info(path)
        keep = min(info.frames, int(max_s * info.samplerate))
        start = (info.frames - keep) // 2
        x, rate = sf.read(path, start=start, frames=keep, dtype="float32", always_2d=True)
        y = librosa.resample(x.mean(axis=1), orig_sr=rate, target_sr=SR)
        loudness = pyloudnorm.Meter(SR).integrated_loudness(y.astype(np.float64))
        if not np.isfinite(loudness):
            return None
        y = (y * 10 ** ((-14.0 - loudness) / 20)).astype(np.float32)
        mel = librosa.feature.melspectrogram(
            y=y, sr=SR, hop_length=config.FFT_HOP, n_fft=config.FFT_SIZE, n_mels=config.N_MELS
        ).T
        # musicnn's input: the mel power rounded to float16 as its extractor does, then the log in float32
        # (its extractor multiplies in float16, which overflows to inf above a power of 6.55)
        mel = np.log10(10000 * mel.astype(np.float16).astype(np.float32) + 1)
        n = len(mel) // self.frames
        if n == 0:
            return None
        return mel[: n * self.frames].reshape(n, self.frames, config.N_MELS)

    def embeddings(self, path: str, max_s: float) -> np.ndarray:
        """The 200-d penultimate layer per 3 s patch: (patches, 200)."""
        batch = self._batch(path, max_s)
        if batch is None:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return self.session.run(self.penultimate, feed_dict={self.x: batch, self.training: False})

    def tag_probabilities(self, path: str, max_s: float) -> np.ndarray:
        """The 50 MSD tags' probabilities per 3 s patch: (patches, 50), in TAGS' order."""
        batch = self._batch(path, max_s)
        if batch is None:
            return np.zeros((0, len(TAGS)), dtype=np.float32)
        return self.session.run(self.probabilities, feed_dict={self.x: batch, self.training: False})


def main() -> None:
    """JSON on stdin {"files": [...], "max_s": s}; JSON lines on stdout, each flushed as written:
    {"tags": TAGS} once the model is loaded, then per file in order {"file": path,
    "probabilities": mean probabilities | null (no audible 3 s patch), "error": reason | null}.
    A line per file lets the caller bound each file's time (pipeline/recordings/tagger.py)."""
    import json
    import sys

    job = json.load(sys.stdin)
    model = Musicnn()
    print(json.dumps({"tags": list(TAGS)}), flush=True)
    for n, path in enumerate(job["files"], 1):
        probs, error = None, None
        try:
            frames = model.tag_probabilities(path, float(job.get("max_s", 120.0)))
            probs = [round(float(p), 4) for p in frames.mean(axis=0)] if len(frames) else None
        except Exception as exc:  # noqa: BLE001 (one unreadable file never stops the others)
            error = f"{type(exc).__name__}: {exc}"
        print(json.dumps({"file": path, "probabilities": probs, "error": error}), flush=True)
        print(f"musicnn: {n}/{len(job['files'])} {path}", file=sys.stderr)


if __name__ == "__main__":
    main()

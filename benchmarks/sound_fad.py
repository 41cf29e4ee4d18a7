"""Fréchet distances between sets of audio files in a learned music embedding (musicnn).

Runs in the tagger environment (`make tagger-env`; TensorFlow cannot share the data
environment's): see benchmarks/sound.py, which calls it. Each file is read at 16 kHz mono, set to
-14 LUFS (so level is not what the distance measures), cut into 3 s patches, and every patch
embedded with musicnn's MSD_musicnn model (pipeline/analysis/musicnn.py; trained to tag the Million
Song Dataset, weights inside the `musicnn` wheel), taking its 200-d penultimate layer. A set's
embeddings are summarised by their mean and covariance, and two sets compared by the Fréchet
distance (as FAD/FID):
|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).

Input (JSON on stdin): {"sets": {name: [files]}, "pairs": [[a, b], ...], "max_s": seconds per file,
"max_s_stems": seconds per file of a set whose name ends in /stems}.
Output (JSON on stdout): {"patches": {name: n}, "distances": {"a|b": d}, "bootstrap": {"a|b": [p5, p50, p95]}}
(with "bootstrap": n, each distance again n times over the first set's files drawn with replacement).
"""

from __future__ import annotations

import json
import sys

import numpy as np

from pipeline.analysis.frechet import frechet_distance
from pipeline.analysis.musicnn import Musicnn


def main() -> None:
    job = json.load(sys.stdin)
    embedder = Musicnn()
    emb, per_file = {}, {}
    for name, files in job["sets"].items():
        max_s = job.get("max_s_stems", 30.0) if name.endswith("/stems") else job.get("max_s", 120.0)
        per_file[name] = [embedder.embeddings(f, max_s) for f in files]
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

"""The Fréchet distance between two sets of embeddings (FAD's formula), each taken as a Gaussian.

||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^1/2). Used by benchmarks/sound_fad.py to compare renders
with produced music; numpy and scipy only, so it is tested without the embedding model.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg


def gaussian_frechet(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """Fréchet distance of N(mu1, s1) and N(mu2, s2). The matrix root's tiny imaginary part (numerical
    noise for covariances) is dropped."""
    root = scipy.linalg.sqrtm(s1 @ s2)
    if np.iscomplexobj(root):
        root = root.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Between two (n, dims) sets of embeddings; each needs more rows than one."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need two (n, dims) arrays of the same dims, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("each set needs at least 2 embeddings for a covariance")
    return gaussian_frechet(a.mean(axis=0), np.cov(a, rowvar=False), b.mean(axis=0), np.cov(b, rowvar=False))

"""Train/validation/test by source song: every clip (and later every variant) of a
song stays in its song's split, so no phrase is both trained on and evaluated."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.ids import item_rng
from pipeline.records import Split

SPLITS: tuple[Split, ...] = ("train", "validation", "test")


def assign_splits(song_ids: Sequence[str], ratios: dict[str, float], seed: int) -> dict[str, Split]:
    """Shuffle the songs (seeded) and deal them out by ratio, largest remainders first.

    A split with a ratio above 0 gets at least one song once there are enough songs for every such split.
    """
    ids = sorted(song_ids)
    n = len(ids)
    order = item_rng(seed, "clip", "splits").permutation(n)
    exact = np.array([ratios[s] * n for s in SPLITS])
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    wanted = [i for i, s in enumerate(SPLITS) if ratios[s] > 0]
    if n >= len(wanted):
        for i in wanted:
            if counts[i] == 0:
                donor = int(np.argmax(counts))
                counts[donor] -= 1
                counts[i] += 1
    out: dict[str, Split] = {}
    pos = 0
    for split, count in zip(SPLITS, counts, strict=True):
        for k in order[pos : pos + count]:
            out[ids[k]] = split
        pos += count
    return out

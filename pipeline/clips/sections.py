"""Song sections, so clips start where the music does: from Spotify when it has
them, else from the MIDI.

MIDI sections come from what changes between the bars before and after a bar
line (a checkerboard novelty over `KERNEL_BARS` on each side):

- instrumentation: which tracks sound in each bar;
- density: note onsets per bar and track (log scale, relative to the track's busiest bar);
- harmony: the pitch-class profile of the bars (notes weighted by sounding time);
- repeats: a bar line where a block of bars that occurs again later begins, after
  material that is not part of it (a repeated verse or chorus starting);
- rests: a run of `rest_bars` silent bars is a break on both sides.

Bar lines whose novelty is a local peak at or above the threshold are candidates;
the strongest are kept first, at least `min_bars` apart (and from both ends).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pretty_midi

from pipeline.clips.grid import BarGrid

KERNEL_BARS = 4  # bars compared on each side of a bar line
REPEAT_BARS = 4  # a repeated block is at least this long
WEIGHTS = {"instrumentation": 1.0, "density": 0.6, "harmony": 0.6, "repeat": 0.5}


@dataclass(frozen=True)
class BarFeatures:
    active: np.ndarray  # (bars, tracks) 1 where the track sounds
    density: np.ndarray  # (bars, tracks) log onsets, 0-1 per track
    chroma: np.ndarray  # (bars, 12) pitch-class share of sounding time
    fingerprint: tuple[tuple[Any, ...], ...]  # per bar: its notes relative to the bar line

    @property
    def silent(self) -> np.ndarray:
        return self.active.sum(axis=1) == 0


def bar_features(instruments: Sequence[pretty_midi.Instrument], grid: BarGrid) -> BarFeatures:
    n = grid.n_bars
    edges = grid.times
    active = np.zeros((n, len(instruments)))
    onsets = np.zeros((n, len(instruments)))
    chroma = np.zeros((n, 12))
    prints: list[list[tuple[Any, ...]]] = [[] for _ in range(n)]
    for k, inst in enumerate(instruments):
        for note in inst.notes:
            first = int(np.searchsorted(edges, note.start, side="right")) - 1
            last = int(np.searchsorted(edges, note.end, side="left")) - 1
            if first < 0 or first >= n:
                continue
            onsets[first, k] += 1
            bar_len = edges[first + 1] - edges[first]
            prints[first].append((k, note.pitch, round((note.start - edges[first]) / bar_len, 2)))
            for b in range(first, min(max(last, first), n - 1) + 1):
                overlap = min(note.end, edges[b + 1]) - max(note.start, edges[b])
                if overlap > 0:
                    active[b, k] = 1
                    if not inst.is_drum:
                        chroma[b, note.pitch % 12] += overlap
    density = np.log1p(onsets)
    peak = density.max(axis=0)
    density = np.divide(density, peak, out=np.zeros_like(density), where=peak > 0)
    totals = chroma.sum(axis=1, keepdims=True)
    chroma = np.divide(chroma, totals, out=np.zeros_like(chroma), where=totals > 0)
    return BarFeatures(active, density, chroma, tuple(tuple(sorted(p)) for p in prints))


def _repeat_starts(fp: tuple[tuple[Any, ...], ...]) -> np.ndarray:
    """1 at bar b where a block of REPEAT_BARS bars that recurs elsewhere begins after other material.

    The block at b must occur again at least a block away, the bar before b must differ from the bar
    before that other occurrence (else b is inside a longer repeat), and the same block must not
    also start up to a block earlier (a loop is one section, not a section per turn).
    """
    n, size = len(fp), REPEAT_BARS
    out = np.zeros(n)
    where: dict[tuple[Any, ...], list[int]] = {}
    for b in range(n - size + 1):
        if any(fp[b : b + size]):
            where.setdefault(fp[b : b + size], []).append(b)
    for block, starts in where.items():
        for b in starts:
            if b == 0 or any(fp[b - k : b - k + size] == block for k in range(1, min(b, size) + 1)):
                continue
            if any(abs(s - b) >= size and (s == 0 or fp[s - 1] != fp[b - 1]) for s in starts):
                out[b] = 1.0
    return out


def novelty(features: BarFeatures) -> np.ndarray:
    """Per bar line b (between bar b-1 and b): how much changes there, 0-1."""
    n = len(features.fingerprint)
    out = np.zeros(n)
    repeats = _repeat_starts(features.fingerprint)
    for b in range(1, n):
        lo, hi = max(0, b - KERNEL_BARS), min(n, b + KERNEL_BARS)
        before, after = slice(lo, b), slice(b, hi)
        instr = float(np.abs(features.active[before].mean(0) - features.active[after].mean(0)).max(initial=0))
        dens = float(np.abs(features.density[before].mean(0) - features.density[after].mean(0)).max(initial=0))
        c1, c2 = features.chroma[before].mean(0), features.chroma[after].mean(0)
        norm = float(np.linalg.norm(c1) * np.linalg.norm(c2))
        harm = 1.0 - float(c1 @ c2) / norm if norm > 0 else 0.0
        parts = {"instrumentation": instr, "density": dens, "harmony": harm, "repeat": repeats[b]}
        out[b] = sum(WEIGHTS[k] * v for k, v in parts.items()) / sum(WEIGHTS.values())
    return out


def _rest_breaks(silent: np.ndarray, rest_bars: int) -> list[int]:
    breaks, b, n = [], 0, len(silent)
    while b < n:
        if silent[b]:
            e = b
            while e < n and silent[e]:
                e += 1
            if e - b >= rest_bars:
                breaks += [b, e]
            b = e
        else:
            b += 1
    return [x for x in breaks if 0 < x < n]


def _keep_apart(candidates: list[tuple[float, int]], n_bars: int, min_bars: int) -> list[int]:
    """Strongest first; each kept boundary at least `min_bars` from the others and from both ends."""
    kept: list[int] = []
    for _, b in sorted(candidates, key=lambda c: (-c[0], c[1])):
        if b < min_bars or n_bars - b < min_bars:
            continue
        if all(abs(b - k) >= min_bars for k in kept):
            kept.append(b)
    return sorted(kept)


def midi_sections(features: BarFeatures, threshold: float, min_bars: int, rest_bars: int) -> list[int]:
    """Section start bars (always including 0) found in the MIDI."""
    nov = novelty(features)
    n = len(nov)
    candidates = [
        (float(nov[b]), b)
        for b in range(1, n)
        if nov[b] >= threshold and nov[b] >= nov[b - 1] and (b + 1 >= n or nov[b] >= nov[b + 1])
    ]
    candidates += [(np.inf, b) for b in _rest_breaks(features.silent, rest_bars)]
    return [0, *_keep_apart(candidates, n, min_bars)]


def spotify_sections(sections: Sequence[dict[str, float | None]], grid: BarGrid, min_bars: int) -> list[int]:
    """Spotify's section starts (seconds) snapped to the nearest bar line."""
    starts = [float(s["start"]) for s in sections if s.get("start") is not None]
    bars = {int(np.argmin(np.abs(grid.times[:-1] - t))) for t in starts}
    candidates = [(1.0, b) for b in sorted(bars) if b > 0]
    return [0, *_keep_apart(candidates, grid.n_bars, min_bars)]

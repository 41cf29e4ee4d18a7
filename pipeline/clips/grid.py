"""The bar grid of a song, from its MIDI: clips start and end only on these lines.

Bars are walked in ticks from the time signatures (default 4/4), so a tempo
change never moves a bar line and a meter change starts a new bar. Seconds come
from pretty_midi's tempo map, which it extends past the last event.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pretty_midi


@dataclass(frozen=True)
class BarGrid:
    ticks: np.ndarray  # n_bars + 1 bar lines, in the source's ticks
    times: np.ndarray  # the same lines in seconds
    meters: tuple[str, ...]  # time signature of each bar, e.g. "4/4"

    @property
    def n_bars(self) -> int:
        return len(self.meters)

    def span_s(self, first: int, n: int) -> tuple[float, float]:
        return float(self.times[first]), float(self.times[first + n])

    def duration_s(self, first: int, n: int) -> float:
        start, end = self.span_s(first, n)
        return end - start


def bar_grid(pm: pretty_midi.PrettyMIDI, end_s: float) -> BarGrid:
    """Bars from tick 0 until the bar holding `end_s` (the music's end) is complete."""
    meters = sorted(
        ((pm.time_to_tick(ts.time), ts.numerator, ts.denominator) for ts in pm.time_signature_changes),
        key=lambda m: m[0],
    )
    if not meters or meters[0][0] > 0:
        meters.insert(0, (0, 4, 4))
    end_tick = pm.time_to_tick(end_s)
    ticks, labels = [0], []
    m = 0
    while ticks[-1] < end_tick or not labels:
        start = ticks[-1]
        while m + 1 < len(meters) and meters[m + 1][0] <= start:
            m += 1
        _, num, den = meters[m]
        length = round(num * pm.resolution * 4 / den)
        nxt = start + length
        if m + 1 < len(meters) and meters[m + 1][0] < nxt:  # a meter change cuts the bar short
            nxt = meters[m + 1][0]
        ticks.append(nxt)
        labels.append(f"{num}/{den}")
    times = np.array([pm.tick_to_time(int(t)) for t in ticks], dtype=float)
    return BarGrid(np.array(ticks, dtype=np.int64), times, tuple(labels))

"""Which bars become clips: whole numbers of bars, inside sections, within the window.

Each section is cut from its first bar with the longest allowed bar count that
fits both the window and what is left of the section, so clips start on phrase
lines (a section start, then every 16/8/4 bars after it). A remainder shorter than
the shortest count joins the next section; at the end of the song it is padded
with silence up to the shortest count, or dropped (`tail`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pipeline.clips.grid import BarGrid


@dataclass(frozen=True)
class ClipPlan:
    section: int
    bar_start: int
    bars: int  # bars of the song the clip covers
    pad_bars: int = 0  # silent bars appended to a padded tail (the clip is bars + pad_bars long)


@dataclass(frozen=True)
class Skipped:
    bar_start: int
    bars: int
    reason: str


def plan_clips(
    grid: BarGrid,
    section_starts: Sequence[int],
    bar_counts: Sequence[int],
    window_s: float,
    tail: Literal["pad", "drop"],
) -> tuple[list[ClipPlan], list[Skipped]]:
    counts = sorted(set(bar_counts), reverse=True)
    shortest = counts[-1]
    bounds = [*sorted(set(section_starts) | {0}), grid.n_bars]
    plans: list[ClipPlan] = []
    skipped: list[Skipped] = []
    pos = 0
    for si in range(len(bounds) - 1):
        end = bounds[si + 1]
        last_section = end == grid.n_bars
        while pos < end:
            left = end - pos
            n = next((c for c in counts if c <= left and grid.duration_s(pos, c) <= window_s + 1e-9), None)
            if n is not None:
                plans.append(ClipPlan(si, pos, n))
                pos += n
                continue
            if left >= shortest:  # even the shortest count is longer than the window here
                skipped.append(Skipped(pos, shortest, f"{shortest} bars last longer than the {window_s:g} s window"))
                pos += shortest
                continue
            if not last_section:
                break  # a short remainder joins the next section
            pad = shortest - left
            per_bar = grid.duration_s(pos, left) / left
            if tail == "pad" and per_bar * shortest <= window_s + 1e-9:
                plans.append(ClipPlan(si, pos, left, pad))
            else:
                skipped.append(Skipped(pos, left, f"tail of {left} bar(s) < {shortest} (clip.tail: {tail})"))
            pos = end
    return plans, skipped

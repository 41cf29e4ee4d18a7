"""Human performance: seeded variation of timing, velocity and note length around the written notes.

Rendered MIDI plays every note on the grid at its written velocity, one of the reasons renders sound
artificial. This moves each onset by a few milliseconds, each velocity by a few steps and each
length by a few percent, the way orchestral dataset generators randomise dynamics and articulation,
while every label stays true: the tempo map, meter and pitches are untouched, no onset crosses a bar
line (a note on a downbeat only moves later, so a clip cut on the bar keeps its attack) and the
shifts are bounded (`timing_ms` is a maximum, the Gaussian spread is a third of it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pretty_midi

_ON_THE_BAR_S = 1e-4  # a note starting this close to a downbeat is on it
_MIN_LENGTH_S = 0.01


@dataclass(frozen=True)
class Humanize:
    timing_ms: float = 0.0  # largest onset shift
    velocity: float = 0.0  # spread of velocity changes (steps, Gaussian sigma; at most 3 sigma)
    length: float = 0.0  # spread of relative length changes (Gaussian sigma; at most 3 sigma)

    @property
    def active(self) -> bool:
        return self.timing_ms > 0 or self.velocity > 0 or self.length > 0


def humanize(inst: pretty_midi.Instrument, downbeats: np.ndarray, how: Humanize, rng: np.random.Generator) -> None:
    """Vary `inst`'s notes in place (in their sorted order, so the result depends only on the notes,
    the bar grid and the generator's seed)."""
    if not how.active or not inst.notes:
        return
    n = len(inst.notes)
    limit = how.timing_ms / 1000.0
    shift = np.clip(rng.normal(0.0, limit / 3, n), -limit, limit) if limit else np.zeros(n)
    dv = np.clip(np.rint(rng.normal(0.0, how.velocity, n)), -3 * how.velocity, 3 * how.velocity)
    stretch = 1.0 + np.clip(rng.normal(0.0, how.length, n), -3 * how.length, 3 * how.length)
    starts = np.array([note.start for note in inst.notes])
    bar = np.searchsorted(downbeats, starts + _ON_THE_BAR_S, side="right") - 1
    bar_start = np.where(bar >= 0, downbeats[np.maximum(bar, 0)], 0.0)
    next_bar = np.where(bar + 1 < len(downbeats), downbeats[np.minimum(bar + 1, len(downbeats) - 1)], np.inf)
    on_bar = np.abs(starts - bar_start) <= _ON_THE_BAR_S
    shift = np.where(on_bar, np.abs(shift), shift)  # a downbeat note only moves later
    new_start = np.clip(starts + shift, bar_start, np.nextafter(next_bar, -np.inf))
    new_start = np.where(on_bar, np.maximum(new_start, starts), np.maximum(new_start, 0.0))
    for i, note in enumerate(inst.notes):
        length = max(_MIN_LENGTH_S, (note.end - note.start) * float(stretch[i]))
        note.start = float(new_start[i])
        note.end = note.start + length
        note.velocity = int(np.clip(note.velocity + dv[i], 1, 127))

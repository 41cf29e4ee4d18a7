"""Where a part sits in the stereo image.

A song whose MIDI places any part off centre (pan controller CC10) keeps the
author's placement: the synth plays the controller events. A song that places
nothing would otherwise render every part in the centre (channel correlation 1
on every stem, a mono-sounding mix): each part then gets a seeded position
within its family's width (drums and bass in the centre by default), applied
to the rendered stem as a constant-power balance, which keeps the stem's
BS.1770 loudness for a centred source.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from pipeline.ids import item_rng
from pipeline.params import PlacementParams
from pipeline.records import Track, stem_balance
from pipeline.render.events import Backend, SynthEvent

CENTRE_CC = 64


@dataclass(frozen=True)
class Placement:
    pan: float  # -1 left .. +1 right
    source: Literal["midi", "family"]

    @property
    def balance(self) -> float:
        """The balance render applies to the stem (MIDI pan is the synth's)."""
        return stem_balance(self.pan, self.source)


CENTRE = Placement(0.0, "midi")


def cc_to_pan(value: int) -> float:
    """MIDI pan 0..127 (64 centre) as -1..+1."""
    return float(np.clip((value - CENTRE_CC) / 63, -1.0, 1.0))


def song_places_parts(tracks: Iterable[Track]) -> bool:
    """True when the MIDI sets any part's pan off centre: the author placed the parts."""
    return any(t.midi_pan is not None and t.midi_pan != CENTRE_CC for t in tracks)


def place_song(params: PlacementParams, tracks: Sequence[Track], seed: int) -> dict[str, Placement]:
    """Each track's placement. A song the MIDI places keeps it (a part it leaves unset plays in the centre).
    Otherwise the parts with room to move alternate sides, in track order from a seeded first side, each
    at a seeded distance between half and all of its family's width: the mix stays balanced and every
    such part is audibly off centre."""
    if params.mode == "midi" or song_places_parts(tracks):
        return {
            t.id: Placement(round(cc_to_pan(t.midi_pan), 4) if t.midi_pan is not None else 0.0, "midi") for t in tracks
        }
    out: dict[str, Placement] = {}
    side = 1.0
    if tracks:
        side = 1.0 if item_rng(seed, "pan-side", tracks[0].song_id).random() < 0.5 else -1.0
    for t in tracks:
        width = params.width.get(t.family, params.default_width)
        if width <= 0:
            out[t.id] = Placement(0.0, "family")
            continue
        distance = float(item_rng(seed, "pan", t.id).uniform(0.5, 1.0)) * width
        out[t.id] = Placement(round(side * distance, 4), "family")
        side = -side
    return out


def balance_gains(pan: float) -> tuple[float, float]:
    """Constant-power balance with unity at the centre: L^2 + R^2 = 2 at every position, so a centred
    source keeps its loudness; a hard-panned one is 3 dB up on its side and silent on the other."""
    angle = (pan + 1.0) * np.pi / 4
    return float(np.sqrt(2) * np.cos(angle)), float(np.sqrt(2) * np.sin(angle))


def apply_balance(x: np.ndarray, pan: float) -> np.ndarray:
    """(frames, 2) audio with the balance applied (float32 in, float32 out)."""
    if pan == 0.0:
        return x
    left, right = balance_gains(pan)
    return x * np.array([left, right], dtype=np.float32)


class Balanced:
    """A backend whose every chunk is balanced to `pan`: the same placement for the render stage's
    stems and augment's re-renders."""

    def __init__(self, backend: Backend, pan: float):
        self.backend, self.pan = backend, pan
        self.name = backend.name

    def render(
        self, events: Sequence[SynthEvent], end_s: float, sample_rate: int, chunk_frames: int
    ) -> Iterator[np.ndarray]:
        for chunk in self.backend.render(events, end_s, sample_rate, chunk_frames):
            yield apply_balance(chunk, self.pan)


def balanced(backend: Backend, pan: float) -> Backend:
    return Balanced(backend, pan) if pan != 0.0 else backend

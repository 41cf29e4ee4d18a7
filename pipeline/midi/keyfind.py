"""Key from notes: a duration- and bass-weighted pitch-class profile matched against key profiles.

The whole song's profile labels a song; a clip's profile is built from the
notes sounding inside its own span, so a modulation gives different clips
different keys. Key signatures are evidence elsewhere, never read here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pretty_midi

from pipeline.midi.keys import Scale, key_label

KeyProfile = Literal["krumhansl", "temperley", "albrecht"]

# (major, minor) profiles, tonic first. Krumhansl-Kessler (1982) probe-tone ratings;
# Temperley's Kostka-Payne corpus profile (2001); Albrecht & Shanahan (2013), fitted
# to duration-weighted pitch classes of a corpus of common-practice works.
PROFILES: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "krumhansl": (
        np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]),
        np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]),
    ),
    "temperley": (
        np.array([0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400]),
        np.array([0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330]),
    ),
    "albrecht": (
        np.array([0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080, 0.008, 0.081]),
        np.array([0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022, 0.061, 0.052]),
    ),
}


@dataclass(frozen=True)
class KeyEstimate:
    tonic_pc: int
    scale: Scale
    correlation: float
    margin: float = 0.0  # correlation of the best key minus the runner-up's

    @property
    def label(self) -> str:
        return key_label(self.tonic_pc, self.scale)


def _pitched(instruments: Sequence[pretty_midi.Instrument]) -> list[pretty_midi.Note]:
    return [n for inst in instruments if not inst.is_drum for n in inst.notes if n.end > n.start]


def span_profile(
    instruments: Sequence[pretty_midi.Instrument],
    start_s: float = 0.0,
    end_s: float = float("inf"),
    bass_weight: float = 0.0,
) -> np.ndarray:
    """Seconds sounded per pitch class inside [start, end), plus `bass_weight` x the seconds
    each pitch class is the lowest sounding note (the bass implies the harmony's root)."""
    profile = np.zeros(12)
    notes = [
        (max(n.start, start_s), min(n.end, end_s), n.pitch)
        for n in _pitched(instruments)
        if n.end > start_s and n.start < end_s
    ]
    for s, e, pitch in notes:
        profile[pitch % 12] += max(0.0, e - s)
    if bass_weight > 0 and notes:
        # sweep the note boundaries, keeping the sounding pitches (offs sort before ons)
        events = sorted([(s, 1, p) for s, _, p in notes] + [(e, 0, p) for _, e, p in notes])
        sounding: Counter[int] = Counter()
        last = events[0][0]
        for t, is_on, pitch in events:
            if t > last and sounding:
                profile[min(sounding) % 12] += bass_weight * (t - last)
            last = t
            if is_on:
                sounding[pitch] += 1
            else:
                sounding[pitch] -= 1
                if sounding[pitch] <= 0:
                    del sounding[pitch]
    return profile


def key_scores(profile: np.ndarray, method: KeyProfile = "krumhansl") -> dict[tuple[int, str], float]:
    """Correlation of the profile with each of the 24 keys, by (tonic pitch class, scale); empty for no notes."""
    if profile.sum() <= 0 or np.ptp(profile) == 0:
        return {}
    return {
        (tonic, scale): float(np.corrcoef(profile, np.roll(ref, tonic))[0, 1])
        for scale, ref in zip(("major", "minor"), PROFILES[method], strict=True)
        for tonic in range(12)
    }


def profile_key(profile: np.ndarray, method: KeyProfile = "krumhansl") -> KeyEstimate | None:
    """Best-correlated of the 24 keys, with its margin over the runner-up; None for an empty profile."""
    scores = key_scores(profile, method)
    if not scores:
        return None
    scored = sorted(((r, tonic, scale) for (tonic, scale), r in scores.items()), key=lambda s: (-s[0], s[1], s[2]))
    (best, tonic, scale), runner_up = scored[0], scored[1][0]
    return KeyEstimate(tonic, scale, round(best, 4), round(best - runner_up, 4))  # type: ignore[arg-type]


def _bass_pc(notes: list[pretty_midi.Note], t: float, window_s: float) -> int | None:
    """Pitch class of the lowest note sounding within `window_s` after `t` (of those ending after it)."""
    near = [n for n in notes if n.start <= t + window_s and n.end >= t]
    return min(near, key=lambda n: n.pitch).pitch % 12 if near else None


def relative_tonic(
    est: KeyEstimate, instruments: Sequence[pretty_midi.Instrument], window_s: float = 0.5
) -> KeyEstimate:
    """A pitch set's tonic from where the music starts and ends: C major and A minor (natural minor)
    share every note, and a profile cannot tell them apart, but songs open and close on their
    tonic. The bass of the first and the last chord vote; the relative key wins only with more votes."""
    notes = _pitched(instruments)
    if not notes:
        return est
    first = _bass_pc(notes, min(n.start for n in notes), window_s)
    last_end = max(n.end for n in notes)
    last = min((n for n in notes if n.end >= last_end - window_s), key=lambda n: n.pitch).pitch % 12
    rel = ((est.tonic_pc + 9) % 12, "minor") if est.scale == "major" else ((est.tonic_pc + 3) % 12, "major")
    votes = [first, last]
    if votes.count(rel[0]) > votes.count(est.tonic_pc):
        return KeyEstimate(rel[0], rel[1], est.correlation, 0.0)  # type: ignore[arg-type]
    return est


# Pitch classes a key's music uses without leaving it: the major scale; natural minor plus the
# raised 6th and 7th of melodic and harmonic minor.
KEY_PITCHES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 9, 10, 11)}


def foreign_share(profile: np.ndarray, tonic_pc: int, scale: str) -> float:
    """Share of the profile's weight on pitch classes outside the key (a modulation puts weight there)."""
    total = float(profile.sum())
    if total <= 0:
        return 0.0
    inside = sum(profile[(tonic_pc + step) % 12] for step in KEY_PITCHES[scale])
    return round(1.0 - float(inside) / total, 4)


# The pitch classes that define a key, the ones a passage in it keeps: the major scale; natural minor
# plus the leading tone (the raised 6th is a melodic passing note, not part of the key's identity).
CORE_PITCHES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10, 11)}


def retained_share(profile: np.ndarray, song: tuple[int, str], span: tuple[int, str]) -> float:
    """Share of the profile's weight on pitch classes of the song's key that the span's key lacks.

    A modulation replaces the song's pitches with the new key's (C major to G major: F# for F, and
    F falls silent); a tonicization adds a secondary leading tone to them (F# before a cadence on G,
    F still heard around it). Near 0: the span left the song's key; well above: it borrows inside it.
    """
    total = float(profile.sum())
    if total <= 0:
        return 0.0
    own = {(span[0] + step) % 12 for step in CORE_PITCHES[span[1]]}
    kept = [(song[0] + step) % 12 for step in KEY_PITCHES[song[1]] if (song[0] + step) % 12 not in own]
    return round(float(sum(profile[pc] for pc in kept)) / total, 4)


def pitch_class_profile(pm: pretty_midi.PrettyMIDI) -> np.ndarray:
    """Seconds sounded per pitch class over the non-drum notes."""
    return span_profile(pm.instruments)


def estimate_key(
    pm: pretty_midi.PrettyMIDI, method: KeyProfile = "krumhansl", bass_weight: float = 0.0, tonic_votes: bool = False
) -> KeyEstimate | None:
    """The whole file's key from its notes (the relative key when the first and last bass say so,
    with `tonic_votes`); None when there are no pitched notes."""
    est = profile_key(span_profile(pm.instruments, bass_weight=bass_weight), method)
    return relative_tonic(est, pm.instruments) if est is not None and tonic_votes else est


def count_pitched(instruments: Sequence[pretty_midi.Instrument], start_s: float, end_s: float) -> int:
    """Pitched notes that start inside [start, end)."""
    return sum(start_s <= n.start < end_s for n in _pitched(instruments))

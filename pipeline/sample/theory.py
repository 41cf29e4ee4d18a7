"""Just enough music theory to write songs that make sense: scales, triads, voicings."""

from __future__ import annotations

from pipeline.midi.keys import Scale

SCALE_STEPS: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),  # natural minor
}

# Progressions as scale degrees (0 = tonic), one chord per bar.
PROGRESSIONS: dict[str, dict[str, tuple[tuple[int, ...], ...]]] = {
    "major": {
        "verse": ((0, 5, 3, 4), (0, 3, 4, 0), (0, 4, 5, 3), (5, 3, 0, 4)),
        "chorus": ((3, 4, 0, 5), (0, 4, 5, 3), (3, 0, 4, 0), (0, 3, 5, 4)),
        "bridge": ((5, 3, 1, 4), (3, 2, 1, 4), (1, 4, 0, 5)),
        "intro": ((0, 3, 0, 4), (0, 5, 3, 4)),
        "outro": ((3, 4, 0, 0), (0, 3, 4, 0)),
    },
    "minor": {
        "verse": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2)),
        "chorus": ((5, 2, 6, 0), (3, 0, 6, 4), (0, 5, 3, 4), (5, 6, 0, 0)),
        "bridge": ((3, 6, 2, 5), (5, 3, 6, 4), (3, 4, 5, 4)),
        "intro": ((0, 5, 0, 6), (0, 3, 0, 4)),
        "outro": ((3, 4, 0, 0), (5, 6, 0, 0)),
    },
}


def degree_pc(tonic: int, scale: Scale, degree: int) -> int:
    steps = SCALE_STEPS[scale]
    return (tonic + steps[degree % 7]) % 12


def triad(tonic: int, scale: Scale, degree: int) -> tuple[int, int, int]:
    """Diatonic triad (root, third, fifth) as pitch classes."""
    return tuple(degree_pc(tonic, scale, degree + k) for k in (0, 2, 4))  # type: ignore[return-value]


def scale_pitches(tonic: int, scale: Scale, lo: int, hi: int) -> list[int]:
    pcs = {(tonic + s) % 12 for s in SCALE_STEPS[scale]}
    return [p for p in range(lo, hi + 1) if p % 12 in pcs]


def lowest_at_or_above(pc: int, floor: int) -> int:
    return floor + (pc - floor) % 12


def voice_chord(pcs: tuple[int, ...], previous: list[int] | None, lo: int, hi: int) -> list[int]:
    """Close voicing of the chord in [lo, hi] that moves least from the previous one."""
    candidates = []
    for inversion in range(len(pcs)):
        order = pcs[inversion:] + pcs[:inversion]
        for base in range(lo, hi - 11):
            if base % 12 != order[0]:
                continue
            voicing = [base]
            for pc in order[1:]:
                voicing.append(lowest_at_or_above(pc, voicing[-1] + 1))
            if voicing[-1] <= hi:
                candidates.append(voicing)
    if previous is None:
        centre = (lo + hi) / 2
        return min(candidates, key=lambda v: (abs(sum(v) / len(v) - centre), v))
    return min(candidates, key=lambda v: (sum(abs(a - b) for a, b in zip(v, previous, strict=True)), v))

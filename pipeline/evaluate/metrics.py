"""Adherence metrics: tempo Acc1/Acc2 at a tolerance, key exact / key-only / MIREX weighted.

- Acc1 at tolerance t: the measured tempo within t of the requested one (the reference
  fine-tune and deeprhythm use t = 2%; MIREX and madmom use 4%).
- Acc2 at t: within t of the requested tempo or of its 2x, 3x, 1/2x or 1/3x.
- key exact ("key+scale"): tonic and scale both right (the reference's key accuracy).
- key only: the tonic right, whatever the scale.
- weighted: the MIREX key score as mir_eval computes it (1 exact, 0.5 fifth, 0.3
  relative, 0.2 parallel, else 0).

All functions are pure; a missing measurement (None) never counts as right, and an
aggregate over no items is None (never 0, which would read as "always wrong").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import mir_eval

from pipeline.analysis.tempo import tempo_accuracy
from pipeline.midi.keys import NOTE_NAMES, tonic_pc


def tempo_hits(measured: float | None, requested: float, tolerance: float) -> tuple[bool, bool]:
    """(Acc1, Acc2) of one measurement; a missing measurement is (False, False)."""
    if measured is None or measured <= 0:
        return False, False
    return tempo_accuracy(measured, requested, tolerance)


def _split(key: str) -> tuple[int, str]:
    tonic, scale = key.split(" ")
    if scale not in ("major", "minor"):
        raise ValueError(f"{key!r}: the scale must be major or minor")
    return tonic_pc(tonic), scale


def canonical_key(key: str) -> str:
    """'C# minor', 'Db minor' and 'c# minor' all read 'C# minor' (the project's spelling)."""
    pc, scale = _split(key[0].upper() + key[1:])
    return f"{NOTE_NAMES[pc]} {scale}"


def key_exact(measured: str | None, requested: str) -> bool:
    return measured is not None and _split(canonical_key(measured)) == _split(canonical_key(requested))


def key_only(measured: str | None, requested: str) -> bool:
    """The tonic right, whatever the scale."""
    return measured is not None and _split(canonical_key(measured))[0] == _split(canonical_key(requested))[0]


def key_weighted(measured: str | None, requested: str) -> float:
    """mir_eval.key.weighted_score(reference, estimate): MIREX's weighting."""
    if measured is None:
        return 0.0
    return float(mir_eval.key.weighted_score(canonical_key(requested), canonical_key(measured)))


def mean(values: Iterable[float | bool]) -> float | None:
    vals = [float(v) for v in values]
    return round(sum(vals) / len(vals), 4) if vals else None


def tolerance_name(tolerance: float) -> str:
    """0.02 -> '2pct', 0.025 -> '2.5pct' (summary keys)."""
    return f"{round(tolerance * 100, 3):g}pct"


def tempo_scores(pairs: Sequence[tuple[float | None, float]], tolerances: Sequence[float]) -> dict[str, float | None]:
    """{'acc1_2pct': .., 'acc2_2pct': .., ...} over (measured, requested) pairs, plus 'n'."""
    out: dict[str, float | None] = {"n": len(pairs)}
    for t in tolerances:
        hits = [tempo_hits(m, r, t) for m, r in pairs]
        out[f"acc1_{tolerance_name(t)}"] = mean(h[0] for h in hits)
        out[f"acc2_{tolerance_name(t)}"] = mean(h[1] for h in hits)
    return out


def key_scores(pairs: Sequence[tuple[str | None, str]]) -> dict[str, float | None]:
    """{'n', 'exact', 'key_only', 'weighted'} over (measured, requested) pairs."""
    return {
        "n": len(pairs),
        "exact": mean(key_exact(m, r) for m, r in pairs),
        "key_only": mean(key_only(m, r) for m, r in pairs),
        "weighted": mean(key_weighted(m, r) for m, r in pairs),
    }

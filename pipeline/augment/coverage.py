"""Coverage of the augmented dataset: the distributions Foundation-1 publishes for its data.

One CSV per facet (`<facet>.csv`: a label column and `items`), declared as DVC plots
in dvc.yaml, so `dvc plots show` draws them and `dvc plots diff` compares runs.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipeline.io.atomic import write_text
from pipeline.records import Variant

BPM_BIN = 10
FACETS: dict[str, str] = {
    "family": "instrument families (one count per instrument per item)",
    "key": "keys",
    "bpm": f"BPM in {BPM_BIN}-BPM bins ('none' for items that state no BPM: the tempo varies)",
    "fx": "FX labels ('none' for items without any)",
    "timbre": "timbre tags",
    "notation": "notation terms (role, speed, density, contour, register)",
    "axis": "variants per axis ('original' for the clips themselves)",
}


def _bpm_bin(bpm: float | None) -> str:
    if bpm is None:
        return "none"
    lo = int(bpm // BPM_BIN * BPM_BIN)
    return f"{lo:03d}-{lo + BPM_BIN - 1:03d}"


def _notation_terms(v: Variant) -> Iterable[str]:
    for ci in v.instruments:
        n = ci.notation
        if n is None:  # a recording's instrument: no notes to describe
            continue
        for name, value in (("role", n.role), ("speed", n.speed), ("density", n.density),
                            ("contour", n.contour), ("register", n.pitch_register)):  # fmt: skip
            if value:
                yield f"{name}: {value}"


def coverage(items: Sequence[Variant]) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {f: Counter() for f in FACETS}
    for v in items:
        out["family"].update(ci.family for ci in v.instruments)
        out["key"][v.key or "none"] += 1
        out["bpm"][_bpm_bin(v.bpm)] += 1
        out["fx"].update(v.fx or ["none"])
        out["timbre"].update(v.timbre or ["none"])
        out["notation"].update(_notation_terms(v))
        out["axis"].update([t.axis for t in v.transforms] or ["original"])
    return out


def write_coverage(out_dir: Path, items: Sequence[Variant]) -> dict[str, dict[str, int]]:
    """Write `<facet>.csv` per facet (rows sorted by label); returns the counts."""
    tables = coverage(items)
    for facet, counts in tables.items():
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([facet, "items"])
        for label in sorted(counts):
            w.writerow([label, counts[label]])
        write_text(out_dir / f"{facet}.csv", buf.getvalue())
    return {f: dict(sorted(c.items())) for f, c in tables.items()}

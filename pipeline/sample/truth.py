"""Span queries against a sample song's ground truth (a truth JSON dict).

They answer what holds over [start_s, end_s) of a song: the key, the tempo,
the meters, whether only drums play, which tracks are inaudible. They read the
messy set's fields (key_segments, bar_spans, drum_only_spans, ...) and fall
back to the clean set's (one key, one meter, the bar list), so they serve both.
"""

from __future__ import annotations

from typing import Any

Truth = dict[str, Any]

KEY_SHARE = 0.9  # one key must hold over this share of the span's pitched time
_EPS = 1e-6


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _check(start_s: float, end_s: float) -> None:
    if not end_s > start_s:
        raise ValueError(f"empty span [{start_s}, {end_s})")


def key_segments(truth: Truth) -> list[dict[str, Any]]:
    """[{start_s, end_s, label, ...}] of the keys the pitched notes are in; gaps are drums-only."""
    if "key_segments" in truth:
        return list(truth["key_segments"])
    return [{"start_s": 0.0, "end_s": float(truth["duration_s"]), **truth["key"]}]


def drum_only_spans(truth: Truth) -> list[tuple[float, float]]:
    return [(float(d["start_s"]), float(d["end_s"])) for d in truth.get("drum_only_spans", [])]


def bar_spans(truth: Truth) -> list[tuple[float, float, str]]:
    """(start_s, end_s, meter) of every bar."""
    if "bar_spans" in truth:
        return [(float(b["start_s"]), float(b["end_s"]), str(b["meter"])) for b in truth["bar_spans"]]
    ts = truth["time_signature"]
    meter = f"{ts['numerator']}/{ts['denominator']}"
    starts = [float(t) for t in truth["bars"]]
    ends = [*starts[1:], float(truth["duration_s"])]
    return [(a, b, meter) for a, b in zip(starts, ends, strict=True)]


def truth_key(truth: Truth, start_s: float, end_s: float) -> str | None:
    """The key label if one key holds over >= 90% of the span's pitched time; None if drums-only or mixed."""
    _check(start_s, end_s)
    by_key: dict[str, float] = {}
    for seg in key_segments(truth):
        o = _overlap(start_s, end_s, float(seg["start_s"]), float(seg["end_s"]))
        if o > _EPS:
            by_key[seg["label"]] = by_key.get(seg["label"], 0.0) + o
    total = sum(by_key.values())
    if total <= _EPS:
        return None
    label, held = max(by_key.items(), key=lambda kv: kv[1])
    return label if held >= KEY_SHARE * total - _EPS else None


def truth_tempo(truth: Truth, start_s: float, end_s: float) -> tuple[float, float, float]:
    """(min, max, time-weighted mean) notated BPM over the span, from the tempo map (every set_tempo).

    Multiply by truth["felt_tempo"]["factor"] (when present) for the felt tempo.
    """
    _check(start_s, end_s)
    tmap = truth["tempo_map"]
    pieces = []
    for i, t in enumerate(tmap):
        t0 = float(t["time_s"])
        t1 = float(tmap[i + 1]["time_s"]) if i + 1 < len(tmap) else float("inf")
        o = _overlap(start_s, end_s, t0, t1)
        if o > _EPS:
            pieces.append((o, float(t["tempo_bpm"])))
    if not pieces:  # a span past the end holds the last tempo
        last = float(tmap[-1]["tempo_bpm"])
        return last, last, last
    bpms = [b for _, b in pieces]
    weighted = sum(o * b for o, b in pieces) / sum(o for o, _ in pieces)
    return min(bpms), max(bpms), round(weighted, 6)


def truth_meters(truth: Truth, start_s: float, end_s: float) -> list[str]:
    """Distinct meters ("4/4", "2/4", ...) of the bars overlapping the span, in order of appearance."""
    _check(start_s, end_s)
    out: list[str] = []
    for b0, b1, meter in bar_spans(truth):
        if _overlap(start_s, end_s, b0, b1) > _EPS and meter not in out:
            out.append(meter)
    return out


def truth_drums_only(truth: Truth, start_s: float, end_s: float) -> bool:
    """True when the whole span lies inside the song's drum-only spans (only drums sound there)."""
    _check(start_s, end_s)
    covered = sum(_overlap(start_s, end_s, a, b) for a, b in drum_only_spans(truth))
    return covered >= (end_s - start_s) - _EPS


def truth_silent_tracks(truth: Truth) -> list[str]:
    """Track names that are in the file but inaudible (near-zero velocity or CC7 volume)."""
    return [t["track_name"] for t in truth.get("near_silent_tracks", [])]

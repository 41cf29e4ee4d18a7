"""The label audit: every stated key, BPM and meter beside every independent estimate.

Per clip rows go to CSV files that DVC plots (a key confusion matrix, a tempo
scatter); the counts of stated and withheld labels, and why, go to the clip
stage's summary. Where a song carries ground truth (the generated samples),
the stated labels are also scored against it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.io.table import write_csv
from pipeline.records import Clip


def reason_kind(text: str | None) -> str:
    """The kind of a withheld reason, without its particulars ("tempo varies # BPM inside the clip")."""
    if text is None:
        return "stated"
    head = text.split(" (")[0]
    if ":" in head and not head.startswith("not tonal"):
        head = head.split(":")[0]
    return re.sub(r"\d+(\.\d+)?(-\d+(\.\d+)?)?", "#", head)


def label_counts(clips: Sequence[Clip]) -> dict[str, Any]:
    """Stated and withheld labels (by reason) and how the estimates agree."""
    mixes = [c for c in clips if c.kind == "mix"]
    tonal = [c for c in clips if c.key_evidence.tonal]
    return {
        "clips": len(clips),
        "key_stated": sum(c.key is not None for c in clips),
        "key_withheld": dict(
            sorted(Counter(reason_kind(c.key_evidence.withheld) for c in clips if c.key is None).items())
        ),
        "key_stated_share_of_tonal": _share([c.key is not None for c in tonal]),
        "keys_on_atonal_clips": sum(c.key is not None for c in clips if not c.key_evidence.tonal),
        "key_notes_vs_audio": dict(sorted(Counter(c.key_evidence.agreement or "none" for c in mixes).items())),
        "key_signature_vs_notes": dict(
            sorted(Counter(_sig_relation(c) for c in mixes if c.key_evidence.tonal).items())
        ),
        "bpm_stated": sum(c.bpm is not None for c in clips),
        "bpm_withheld": dict(
            sorted(Counter(reason_kind(c.tempo_evidence.withheld) for c in clips if c.bpm is None).items())
        ),
        "felt_level_sources": dict(sorted(Counter(c.tempo_evidence.felt_source for c in mixes).items())),
        "felt_factors": dict(sorted(Counter(f"{c.tempo_evidence.felt_factor:.4g}" for c in mixes).items())),
        "meter_stated": sum(c.time_signature is not None for c in clips),
        "meter_withheld": sum(c.time_signature is None for c in clips),
        "quiet_instruments_unnamed": sum(len(c.quiet_instruments) for c in mixes),
    }  # fmt: skip


def _sig_relation(c: Clip) -> str:
    k = c.key_evidence
    if k.signature is None:
        return "no signature"
    return "agrees" if k.signature == k.notes else "contradicts"


def _share(values: Iterable[bool]) -> float | None:
    v = list(values)
    return round(sum(v) / len(v), 4) if v else None


def key_rows(clips: Sequence[Clip]) -> list[dict[str, Any]]:
    """One row per tonal mix clip: the notes' key against the audio's (the confusion plot) and the rest."""
    return [
        {
            "id": c.id, "notes": c.key_evidence.notes or "none", "audio": c.key_evidence.audio or "none",
            "signature": c.key_evidence.signature or "none", "stated": c.key or "withheld",
            "notes_confidence": c.key_evidence.notes_confidence, "audio_strength": c.key_evidence.audio_strength,
        }
        for c in clips
        if c.kind == "mix" and c.key_evidence.tonal
    ]  # fmt: skip


def tempo_rows(clips: Sequence[Clip]) -> list[dict[str, Any]]:
    """One row per mix clip with an audio tempo: notated and felt BPM against the audio's (the scatter)."""
    rows = []
    for c in clips:
        t = c.tempo_evidence
        if c.kind != "mix" or not t.audio_bpm:
            continue
        audio = next(iter(t.audio_bpm.values()))
        rows.append({
            "id": c.id, "notated_bpm": t.notated_bpm, "felt_bpm": t.felt_bpm, "audio_bpm": audio,
            "stated_bpm": c.bpm if c.bpm is not None else "", "steady": t.steady, "felt_source": t.felt_source,
        })  # fmt: skip
    return rows


def write_audit(folder: Path, clips: Sequence[Clip]) -> None:
    write_csv(folder / "keys.csv", key_rows(clips),
              ("id", "notes", "audio", "signature", "stated", "notes_confidence", "audio_strength"))  # fmt: skip
    write_csv(folder / "tempo.csv", tempo_rows(clips),
              ("id", "notated_bpm", "felt_bpm", "audio_bpm", "stated_bpm", "steady", "felt_source"))  # fmt: skip


# -- against ground truth --------------------------------------------------------------


@dataclass(frozen=True)
class SpanTruth:
    """What is true of a clip's span (from a generated song's truth file)."""

    key: str | None  # None: drums only, or no single key holds
    drums_only: bool
    min_bpm: float | None  # None: the truth holds no tempo map
    max_bpm: float | None
    weighted_bpm: float | None
    meters: list[str] | None


TruthOf = Callable[[Clip], SpanTruth | None]


def truth_scores(clips: Sequence[Clip], truth_of: TruthOf) -> dict[str, Any] | None:
    """The issue's figures: stated keys exact, keys stated on tonal clips, BPM within 1 %, meter right,
    keys on drums-only clips."""
    pairs = [(c, t) for c in clips if (t := truth_of(c)) is not None]
    if not pairs:
        return None
    keyed = [(c, t) for c, t in pairs if c.key is not None]
    tonal = [(c, t) for c, t in pairs if t.key is not None]
    timed = [(c, t) for c, t in pairs if c.bpm is not None and t.weighted_bpm is not None]
    metered = [(c, t) for c, t in pairs if c.time_signature is not None and t.meters is not None]
    wrong_keys = Counter(f"{t.key or 'none'} -> {c.key}" for c, t in keyed if c.key != t.key)
    return {
        "clips_with_truth": len(pairs),
        "key_exact_of_stated": _share(c.key == t.key for c, t in keyed),
        "key_stated_of_tonal": _share(c.key is not None for c, _ in tonal),
        "keys_on_drums_only": sum(c.key is not None for c, t in pairs if t.drums_only),
        "bpm_within_1pct_of_stated": _share(_bpm_right(c, t) for c, t in timed),
        "bpm_stated_of_steady": _share(
            c.bpm is not None for c, t in pairs if t.max_bpm is not None and t.max_bpm <= t.min_bpm * 1.02
        ),
        "meter_right_of_stated": _share([c.time_signature] == t.meters for c, t in metered),
        "wrong_keys": dict(wrong_keys.most_common(10)),
    }  # fmt: skip


def _bpm_right(c: Clip, t: SpanTruth) -> bool:
    """The stated BPM is within 1 % of the truth's steady tempo (times the felt factor, for felt labels)."""
    ev = c.tempo_evidence
    factor = 1.0 if c.bpm == ev.notated_bpm else ev.felt_factor
    if c.bpm is None or t.weighted_bpm is None or t.min_bpm is None or t.max_bpm is None:
        return False
    target = t.weighted_bpm * factor
    return t.max_bpm <= t.min_bpm * 1.02 and abs(c.bpm - target) <= 0.01 * target

"""Ground truth of a clip's span, for the generated samples (their ingest truth files).

The generated sets' truth is read through pipeline/sample/truth.py's span queries
(key segments, per-bar meters, drum-only spans, the tempo map); a music21 score's
truth is its own key and meters.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipeline.clips.audit import SpanTruth, TruthOf
from pipeline.records import Clip, Song
from pipeline.sample import truth as span

EDGE_S = 1e-3


def span_truth(truth: dict[str, Any], clip: Clip) -> SpanTruth | None:
    """What is true of the clip's span; None where the truth cannot say (a score that changes key)."""
    # a millisecond inside the bar lines: both sides round times to the microsecond
    start, end = clip.seconds_start + EDGE_S, clip.seconds_start + clip.seconds_total - clip.padded_s - EDGE_S
    if truth.get("truth_source") == "music21 score":
        if truth["key_changes_in_score"]:
            return None
        return SpanTruth(truth["key"]["label"], False, None, None, None, truth["meters"])
    slowest, fastest, weighted = span.truth_tempo(truth, start, end)
    drums_only = span.truth_drums_only(truth, start, end) or all(i.is_drum for i in clip.instruments)
    key = None if drums_only else span.truth_key(truth, start, end)
    return SpanTruth(key, drums_only, slowest, fastest, weighted, span.truth_meters(truth, start, end))


def truth_of_clips(songs: Iterable[Song], root: Path) -> TruthOf:
    """A clip -> its span's truth lookup (None for songs without a truth file)."""
    paths = {s.id: root / s.truth for s in songs if s.truth}

    @functools.cache
    def load(song_id: str) -> dict[str, Any] | None:
        path = paths.get(song_id)
        return json.loads(path.read_text()) if path and path.is_file() else None

    def truth_of(clip: Clip) -> SpanTruth | None:
        truth = load(clip.song_id)
        return span_truth(truth, clip) if truth else None

    return truth_of

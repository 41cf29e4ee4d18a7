"""Ground truth of a clip's span, for the generated samples (their ingest truth files).

The clean sample states one key, meter and tempo map per song; the messy set
(pipeline/sample/messy.py) states key segments, per-bar meters and drum-only
spans, answered by pipeline/sample/truth.py's span queries.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipeline.clips.audit import SpanTruth, TruthOf
from pipeline.clips.labels import span_tempi
from pipeline.records import Clip, Song, TempoChange


def span_truth(truth: dict[str, Any], clip: Clip) -> SpanTruth | None:
    """What is true of the clip's span; None where the truth cannot say (a score that changes key)."""
    start, end = clip.seconds_start, clip.seconds_start + clip.seconds_total - clip.padded_s
    slowest = fastest = weighted = None
    if "tempo_map" in truth:
        tempo_map = [TempoChange(time_s=t["time_s"], tempo_bpm=t["tempo_bpm"]) for t in truth["tempo_map"]]
        weighted, slowest, fastest = span_tempi(tempo_map, start, end)
    pitched = [i for i in clip.instruments if not i.is_drum]
    if "key_segments" in truth:
        from pipeline.sample import truth as messy

        drums_only = messy.truth_drums_only(truth, start, end)
        key = None if drums_only else messy.truth_key(truth, start, end)
        meters = messy.truth_meters(truth, start, end)
    elif truth.get("truth_source") == "music21 score":
        if truth["key_changes_in_score"]:
            return None
        drums_only, key, meters = False, truth["key"]["label"], truth["meters"]
    else:
        ts = truth["time_signature"]
        drums_only = not pitched
        key, meters = (None if drums_only else truth["key"]["label"]), [f"{ts['numerator']}/{ts['denominator']}"]
    if clip.kind == "stem" and not pitched:
        key, drums_only = None, True
    return SpanTruth(key, drums_only, slowest, fastest, weighted, meters)


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

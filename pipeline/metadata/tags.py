"""Last.fm tag clean-up: user tags are noisy ("seen live", the artist's own name,
mixed case), so only heavy, meaningful, normalised tags are kept."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.metadata.similarity import normalise_artist
from pipeline.params import LastfmParams


def normalise_tag(name: str) -> str:
    """Lower-case, trimmed, inner whitespace collapsed to single spaces."""
    return " ".join(str(name).split()).casefold()


def _weight(value: object) -> int | None:
    try:
        return round(float(str(value)))
    except ValueError:
        return None


def clean_tags(raw: Iterable[tuple[str, object]], artist: str, params: LastfmParams) -> list[tuple[str, int]]:
    """Tags with weight >= min_tag_weight, normalised, without junk or the artist's name,
    one entry per name (its heaviest), heaviest first then by name, at most max_tags."""
    junk = {normalise_tag(j) for j in params.junk_tags}
    artist_plain, artist_loose = normalise_tag(artist), normalise_artist(artist)
    best: dict[str, int] = {}
    for name, value in raw:
        tag, weight = normalise_tag(name), _weight(value)
        if not tag or weight is None or weight < params.min_tag_weight or tag in junk:
            continue
        if tag == artist_plain or (artist_loose and normalise_artist(tag) == artist_loose):
            continue
        best[tag] = max(weight, best.get(tag, weight))
    ordered = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))
    return ordered[: params.max_tags]

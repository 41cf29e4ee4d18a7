"""Title/artist similarity for accepting a search hit.

Search engines rank by popularity, not by closeness, so the best-ranked hit may be a
cover or a different song: each hit is scored here and only one at or above the
threshold is accepted. Decorations that differ between a MIDI file's name and a
catalogue entry ("feat. X", "(Live)", "- 2011 Remaster") are removed first.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

TITLE_WEIGHT = 0.6  # the title says more about which recording it is than the artist credit
ARTIST_WEIGHT = 1.0 - TITLE_WEIGHT

_BRACKETS = re.compile(r"\s*[\(\[\{][^\)\]\}]*[\)\]\}]")
_FEAT = re.compile(r"\s+(?:feat\.?|ft\.?|featuring)\s.*$", re.IGNORECASE)
_VERSION_SUFFIX = re.compile(
    r"\s+[-–—]\s+[^-–—]*\b(?:remaster(?:ed)?|version|edit|mix|live|mono|stereo|demo|acoustic|single|radio|bonus)\b.*$",
    re.IGNORECASE,
)
_NOT_WORD = re.compile(r"[^\w\s]|_")
_LEADING_THE = re.compile(r"^the\s+")


def strip_decorations(text: str) -> str:
    """`text` without bracketed parts, featured artists and version suffixes (case kept),
    as sent in the search query."""
    text = _BRACKETS.sub("", text)
    text = _VERSION_SUFFIX.sub("", text)
    text = _FEAT.sub("", text)
    return " ".join(text.split())


def normalise(text: str) -> str:
    """Lower-case ASCII-folded words of `text` without decorations or punctuation."""
    text = strip_decorations(text)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = text.replace("&", " and ").replace("'", "").replace("’", "")
    return " ".join(_NOT_WORD.sub(" ", text).split())


def normalise_artist(text: str) -> str:
    """As `normalise`, and without a leading "the" ("The Beatles" == "Beatles")."""
    return _LEADING_THE.sub("", normalise(text))


def ratio(a: str, b: str) -> float:
    if not a or not b:
        return 0.0
    return SequenceMatcher(None, a, b).ratio()


@dataclass(frozen=True)
class Candidate:
    """A search hit, reduced to what matching needs."""

    track_id: str
    name: str
    artists: tuple[str, ...]
    duration_ms: int | None


def score(title: str, artist: str, candidate: Candidate) -> float:
    """Weighted title and artist similarity in 0-1; the artist counts as the closest
    of the hit's credited artists (or all of them together)."""
    t = ratio(normalise(title), normalise(candidate.name))
    wanted = normalise_artist(artist)
    names = [normalise_artist(a) for a in candidate.artists]
    a = max([ratio(wanted, n) for n in names] + [ratio(wanted, " and ".join(names))], default=0.0)
    return round(TITLE_WEIGHT * t + ARTIST_WEIGHT * a, 4)


def pick_best(
    title: str, artist: str, duration_s: float | None, candidates: Sequence[Candidate]
) -> tuple[Candidate, float] | None:
    """The highest-scoring candidate; ties go to the closer duration, then to search order."""

    def rank(item: tuple[int, Candidate]) -> tuple[float, float, int]:
        i, c = item
        gap = abs(c.duration_ms / 1000 - duration_s) if duration_s and c.duration_ms else float("inf")
        return (-score(title, artist, c), gap, i)

    if not candidates:
        return None
    _, best = min(enumerate(candidates), key=rank)
    return best, score(title, artist, best)

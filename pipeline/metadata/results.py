"""What a lookup returns. Every field but `matched` and `source` may be empty:
Spotify withholds features from new apps and some tracks have no analysis."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Section = dict[str, float | int | None]


@dataclass(frozen=True)
class SpotifyResult:
    matched: bool
    similarity: float | None = None
    track_id: str | None = None
    name: str | None = None
    artist: str | None = None
    duration_ms: int | None = None
    energy: float | None = None
    acousticness: float | None = None
    instrumentalness: float | None = None
    danceability: float | None = None
    valence: float | None = None
    tempo: float | None = None
    key: int | None = None  # pitch class 0-11
    mode: int | None = None  # 1 major, 0 minor
    sections: list[Section] | None = None  # start, duration, tempo, key, mode, loudness
    source: Literal["spotify", "none"] = "spotify"
    reason: str | None = None  # why it is unmatched or incomplete, for humans

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LastfmResult:
    matched: bool
    tags: list[tuple[str, int]]  # (name, weight 0-100), heaviest first
    source: Literal["lastfm", "none"] = "lastfm"
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

"""The metadata stage's one entry point: Spotify and Last.fm lookups behind a shared
on-disk cache, with call counts and one-time status notes for the run summary."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from pipeline.metadata.cache import ResponseCache
from pipeline.metadata.lastfm import LastfmLookup
from pipeline.metadata.notes import Notes
from pipeline.metadata.results import LastfmResult, SpotifyResult
from pipeline.metadata.retry import Clock, Sleep
from pipeline.metadata.spotify import SpotifyLookup
from pipeline.params import MetadataParams


class MetadataClient:
    """Looks songs up on Spotify and Last.fm.

    Per-song problems (no match, 404, an unreadable answer, refused credentials,
    forbidden endpoints) give an unmatched or partial result and a note, never an
    exception. A service still down after all retries raises `ServiceUnavailable`
    (an `ItemError`) for each song that is not in the cache. Not thread-safe: use one
    client per process.
    """

    def __init__(
        self,
        settings: MetadataParams,
        cache_dir: Path,
        env: Mapping[str, str] = os.environ,
        sleep: Sleep = time.sleep,
        *,
        clock: Clock = time.monotonic,
    ):
        self.settings = settings
        self.cache = ResponseCache(Path(cache_dir))
        self._notes = Notes()
        self._spotify = SpotifyLookup(settings, self.cache, self._notes, env, sleep, clock)
        self._lastfm = LastfmLookup(settings, self.cache, self._notes, env, sleep, clock)

    def spotify(self, artist: str, title: str, duration_s: float | None = None) -> SpotifyResult:
        """The best search hit at or above match_threshold, with features and sections when allowed."""
        return self._spotify.lookup(artist, title, duration_s)

    def lastfm(self, artist: str, title: str) -> LastfmResult:
        """The track's cleaned top tags."""
        return self._lastfm.lookup(artist, title)

    @property
    def network_calls(self) -> int:
        """HTTP requests that really went out, every retry and token request included."""
        return self._spotify.stats.network_calls + self._lastfm.stats.network_calls

    @property
    def cache_hits(self) -> int:
        return self._spotify.stats.cache_hits + self._lastfm.stats.cache_hits

    @property
    def stats(self) -> dict[str, dict[str, int]]:
        """Calls and cache hits per service."""
        return {
            "spotify": {
                "network_calls": self._spotify.stats.network_calls,
                "cache_hits": self._spotify.stats.cache_hits,
            },
            "lastfm": {"network_calls": self._lastfm.stats.network_calls, "cache_hits": self._lastfm.stats.cache_hits},
        }

    @property
    def notes(self) -> list[str]:
        """One-time human status notes, in the order they arose."""
        return self._notes.lines

    def close(self) -> None:
        self._spotify.close()
        self._lastfm.close()

    def __enter__(self) -> MetadataClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

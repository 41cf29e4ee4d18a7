"""What the Spotify and Last.fm lookups share: cache, notes, retries, and the two ways
a service stops answering: switched off (every song gets source `none`) or down
(songs not in the cache fail this run)."""

from __future__ import annotations

from typing import Any

from pipeline.metadata.cache import Params, ResponseCache
from pipeline.metadata.errors import ServiceUnavailable
from pipeline.metadata.notes import Notes
from pipeline.metadata.retry import CallStats, Clock, Retrier, Sleep
from pipeline.params import MetadataParams

Answer = dict[str, Any]


class ServiceLookup:
    name: str  # as people write it, e.g. "Last.fm"
    service: str  # cache folder and note prefix, e.g. "lastfm"

    def __init__(
        self,
        settings: MetadataParams,
        cache: ResponseCache,
        notes: Notes,
        sleep: Sleep,
        clock: Clock,
        network_errors: tuple[type[BaseException], ...],
    ):
        self.settings = settings
        self.cache, self.notes = cache, notes
        self.stats = CallStats()
        self._retrier = Retrier(self.name, settings, self.stats, sleep, clock, network_errors)
        self._off: str | None = None  # why every song gets source none
        self._down: str | None = None  # why songs not in the cache fail

    def _switch_off(self, key: str, note: str) -> None:
        self._off = note
        self.notes.add(f"{self.service}:{key}", note)

    def _cached(self, endpoint: str, params: Params) -> Answer | None:
        answer = self.cache.get(self.service, endpoint, params)
        if answer is not None:
            self.stats.cache_hits += 1
        return answer

    def _raise_if_down(self) -> None:
        if self._down:
            raise ServiceUnavailable(self._down)

    def _went_down(self, cause: BaseException) -> ServiceUnavailable:
        """Remember the service is down for this run; the caller raises what this returns."""
        self._down = f"{self.name} unavailable: {cause}"
        self.notes.add(f"{self.service}:down", f"{self._down}; songs not in the cache fail this run (re-run to retry)")
        return ServiceUnavailable(self._down)

"""Last.fm top tags through pylast: track.getTopTags, cleaned by `tags.clean_tags`.

The raw (tag, weight) list is what gets cached, so changing the tag filters in
params.yaml needs no new requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pylast

from pipeline.metadata.cache import Params, ResponseCache, normalise_params
from pipeline.metadata.errors import MalformedResponse, RetriesExhausted
from pipeline.metadata.notes import Notes
from pipeline.metadata.results import LastfmResult
from pipeline.metadata.retry import Clock, Sleep
from pipeline.metadata.service import Answer, ServiceLookup
from pipeline.metadata.tags import clean_tags
from pipeline.metadata.transports import LASTFM_HOSTS, LASTFM_NETWORK_ERRORS, LastfmTransport
from pipeline.params import MetadataParams

SERVICE = "lastfm"
ENDPOINT = "track.getTopTags"
# Errors that mean the key (or account) is refused: authentication failed, invalid
# session key, invalid API key, token unauthorised/expired, suspended API key.
REFUSED_CODES = frozenset({4, 9, 10, 14, 15, 26})
NO_KEY = "Last.fm: no API key (set LASTFM_API_KEY); songs get source none"


def _weight(value: Any) -> int | None:
    try:
        return round(float(value))
    except (TypeError, ValueError):
        return None


class LastfmLookup(ServiceLookup):
    name, service = "Last.fm", SERVICE

    def __init__(
        self,
        settings: MetadataParams,
        cache: ResponseCache,
        notes: Notes,
        env: Mapping[str, str],
        sleep: Sleep,
        clock: Clock,
    ):
        super().__init__(settings, cache, notes, sleep, clock, LASTFM_NETWORK_ERRORS)
        self.params = settings.lastfm
        self._api_key = (env.get("LASTFM_API_KEY") or "").strip()
        self._network: pylast.LastFMNetwork | None = None
        self._transport: LastfmTransport | None = None
        if not self.params.enabled:
            self._switch_off("disabled", "Last.fm: disabled (metadata.lastfm.enabled is false); songs get source none")
        elif not self._api_key:
            self._switch_off("no-key", NO_KEY)

    def _net(self) -> pylast.LastFMNetwork:
        """pylast opens an httpx2.Client per request; our transport is mounted for the API host
        (more specific than any proxy mount, so it always wins)."""
        if self._network is None:
            self._transport = LastfmTransport(self._retrier, self.settings.timeout_s)
            self._network = pylast.LastFMNetwork(api_key=self._api_key, proxy={LASTFM_HOSTS: self._transport})
        return self._network

    def close(self) -> None:
        if self._transport is not None:
            self._transport.shutdown()

    def _download(self, params: Params) -> Answer:
        top = self._net().get_track(str(params["artist"]), str(params["track"])).get_top_tags()
        return {"status": "ok", "tags": [[str(t.item.get_name()), _weight(t.weight)] for t in top]}

    def _fetch(self, params: Params, what: str) -> Answer:
        params = normalise_params(params)
        cached = self._cached(ENDPOINT, params)
        if cached is not None:
            return cached
        self._raise_if_down()
        try:
            answer = self._download(params)
        except pylast.NetworkError as exc:  # pylast wraps whatever the transport raised
            cause = exc.underlying_error
            if isinstance(cause, RetriesExhausted):
                raise self._went_down(cause) from cause
            if isinstance(cause, MalformedResponse):
                return self._malformed(str(cause), what)
            raise
        except pylast.MalformedResponseError as exc:
            return self._malformed(str(exc), what)
        except pylast.WSError as exc:
            try:
                code = int(exc.status)
            except (TypeError, ValueError):
                code = -1
            answer = {"status": "error", "code": code, "message": str(exc.details).strip()}
            if code in REFUSED_CODES:
                self._switch_off(
                    "refused",
                    f"Last.fm: the API key was refused (error {code}: {answer['message']}); songs get source none",
                )
                return answer
        self.cache.put(SERVICE, ENDPOINT, params, answer)
        return answer

    def _malformed(self, message: str, what: str) -> Answer:
        self.notes.add(
            "lastfm:malformed",
            f"Last.fm: {ENDPOINT} gave an unreadable answer (first for {what}); no tags and not cached",
        )
        return {"status": "malformed", "message": message}

    def lookup(self, artist: str, title: str) -> LastfmResult:
        if self._off:
            return LastfmResult(matched=False, tags=[], source="none", reason=self._off)
        if not artist.strip() or not title.strip():
            return LastfmResult(matched=False, tags=[], reason="Last.fm needs both artist and title")
        what = f"{artist} - {title}"
        answer = self._fetch({"artist": artist, "track": title}, what)
        if self._off:
            return LastfmResult(matched=False, tags=[], source="none", reason=self._off)
        if answer["status"] == "ok":
            return LastfmResult(matched=True, tags=clean_tags(answer["tags"], artist, self.params))
        if answer["status"] == "malformed":
            return LastfmResult(matched=False, tags=[], reason=f"{ENDPOINT}: {answer['message']}")
        code, message = answer.get("code"), answer.get("message", "")
        self.notes.add(
            f"lastfm:error:{code}",
            f"Last.fm: error {code} ({message}) for some songs (first: {what}); they get no tags",
        )
        return LastfmResult(matched=False, tags=[], reason=f"Last.fm error {code}: {message}")

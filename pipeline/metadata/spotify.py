"""Spotify lookups through spotipy: a track search, then audio-features and
audio-analysis for the accepted hit.

Since 2024-11-27 Spotify answers 403 to new apps for audio-features and
audio-analysis; that is remembered (in the cache too) and noted once, and the match
is kept without those fields. Since Feb 2026 search returns at most 10 items.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import requests
import spotipy
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.exceptions import SpotifyException, SpotifyOauthError
from spotipy.oauth2 import SpotifyClientCredentials

from pipeline.metadata.cache import Params, ResponseCache, normalise_params
from pipeline.metadata.errors import MalformedResponse, RetriesExhausted
from pipeline.metadata.notes import Notes
from pipeline.metadata.results import Section, SpotifyResult
from pipeline.metadata.retry import Clock, Sleep
from pipeline.metadata.service import Answer, ServiceLookup
from pipeline.metadata.similarity import Candidate, pick_best, strip_decorations
from pipeline.metadata.transports import SPOTIFY_NETWORK_ERRORS, SpotifyAdapter
from pipeline.params import MetadataParams

SERVICE = "spotify"
FEATURE_FIELDS = ("energy", "acousticness", "instrumentalness", "danceability", "valence", "tempo")
SECTION_FIELDS = ("start", "duration", "tempo", "key", "mode", "loudness")
FORBIDDEN_WHAT = {
    "audio-features": "energy, acousticness, instrumentalness, danceability, valence, tempo, key and mode",
    "audio-analysis": "sections",
}
# Answers that are no fact about the request (credentials, proxies, passing trouble): never cached.
UNCACHED_STATUS = frozenset({401, 407, 408, 429})
NO_CREDENTIALS = "Spotify: no credentials (set SPOTIPY_CLIENT_ID and SPOTIPY_CLIENT_SECRET); songs get source none"


def search_query(artist: str, title: str) -> str:
    """Spotify field-filtered query, without the decorations that would only narrow it."""
    t, a = strip_decorations(title), strip_decorations(artist)
    return f"track:{t} artist:{a}" if a else f"track:{t}"


def _number(value: Any, kind: type[float] | type[int]) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return kind(value)


def _pitch_class(value: Any) -> int | None:
    v = _number(value, int)
    return v if v is not None and 0 <= v <= 11 else None  # Spotify uses -1 for "no key detected"


def _mode(value: Any) -> int | None:
    v = _number(value, int)
    return v if v in (0, 1) else None


def _trim_search(raw: Any) -> Answer:
    """Only what matching and the result need; a search answer holds markets and images by the kilobyte."""
    if not isinstance(raw, dict) or not isinstance(raw.get("tracks"), dict):
        raise MalformedResponse("search answer without 'tracks'")
    items = []
    for item in raw["tracks"].get("items") or []:
        if not isinstance(item, dict) or not item.get("id") or not item.get("name"):
            continue
        artists = [a.get("name") for a in item.get("artists") or [] if isinstance(a, dict) and a.get("name")]
        items.append(
            {
                "id": str(item["id"]),
                "name": str(item["name"]),
                "artists": artists,
                "duration_ms": _number(item.get("duration_ms"), int),
            }
        )
    return {"status": 200, "items": items}


def _trim_features(raw: Any) -> Answer:
    """spotipy's audio_features gives a list with one entry per id, None for an unknown id."""
    entry = raw[0] if isinstance(raw, list) and raw else None
    if entry is None:
        return {"status": 404, "message": "no audio features for this track"}
    if not isinstance(entry, dict):
        raise MalformedResponse("audio-features entry is not an object")
    return {"status": 200, "features": {k: entry.get(k) for k in (*FEATURE_FIELDS, "key", "mode")}}


def _trim_analysis(raw: Any) -> Answer:
    """Sections only: the full analysis (segments, tatums) runs to hundreds of kilobytes."""
    if not isinstance(raw, dict):
        raise MalformedResponse("audio-analysis answer is not an object")
    sections = [s for s in raw.get("sections") or [] if isinstance(s, dict)]
    return {"status": 200, "sections": [{k: s.get(k) for k in SECTION_FIELDS} for s in sections]}


def _section(raw: dict[str, Any]) -> Section:
    return {
        "start": _number(raw.get("start"), float),
        "duration": _number(raw.get("duration"), float),
        "tempo": _number(raw.get("tempo"), float),
        "key": _pitch_class(raw.get("key")),
        "mode": _mode(raw.get("mode")),
        "loudness": _number(raw.get("loudness"), float),
    }


def _message(exc: SpotifyException) -> str:
    """spotipy prefixes the request URL; keep only Spotify's own words."""
    return str(exc.msg).split("\n", 1)[-1].strip() or f"HTTP {exc.http_status}"


class SpotifyLookup(ServiceLookup):
    name, service = "Spotify", SERVICE

    def __init__(
        self,
        settings: MetadataParams,
        cache: ResponseCache,
        notes: Notes,
        env: Mapping[str, str],
        sleep: Sleep,
        clock: Clock,
    ):
        super().__init__(settings, cache, notes, sleep, clock, SPOTIFY_NETWORK_ERRORS)
        self.params = settings.spotify
        self._client_id = (env.get("SPOTIPY_CLIENT_ID") or "").strip()
        self._client_secret = (env.get("SPOTIPY_CLIENT_SECRET") or "").strip()
        self._sp: spotipy.Spotify | None = None
        self._session: requests.Session | None = None
        self._forbidden: set[str] = set()
        self._checked_forbidden: set[str] = set()
        if not self.params.enabled:
            self._switch_off("disabled", "Spotify: disabled (metadata.spotify.enabled is false); songs get source none")
        elif not (self._client_id and self._client_secret):
            self._switch_off("no-credentials", NO_CREDENTIALS)

    # -- plumbing -------------------------------------------------------------

    def _client(self) -> spotipy.Spotify:
        """Built on first need, so a run answered from the cache never asks for a token."""
        if self._sp is None:
            timeout = self.settings.timeout_s
            session = requests.Session()
            adapter = SpotifyAdapter(self._retrier, timeout)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            auth = SpotifyClientCredentials(
                client_id=self._client_id,
                client_secret=self._client_secret,
                requests_session=session,
                requests_timeout=timeout,
                cache_handler=MemoryCacheHandler(),  # the default writes the token to ./.cache
            )
            # A session of our own replaces spotipy's urllib3 Retry: the adapter is the one retry layer.
            self._sp = spotipy.Spotify(auth_manager=auth, requests_session=session, requests_timeout=timeout)
            self._session = session
        return self._sp

    def close(self) -> None:
        if self._session is not None:
            self._session.close()

    def _fetch(
        self, endpoint: str, params: Params, call: Callable[[Params], Answer], what: str, gated: bool = False
    ) -> Answer:
        """The cached answer, or a fresh one (cached when it is a fact about the request).

        A `gated` endpoint remembered as forbidden answers 403 without asking; that check
        comes after the cache so that answers cached before the 403 still count.
        """
        params = normalise_params(params)
        cached = self._cached(endpoint, params)
        if cached is not None:
            return cached
        if gated and self._is_forbidden(endpoint):
            return {"status": 403, "message": "remembered as forbidden"}
        self._raise_if_down()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # spotipy flags audio-features/analysis
                answer = call(params)
        except RetriesExhausted as exc:
            raise self._went_down(exc) from exc
        except MalformedResponse as exc:
            self.notes.add(
                f"spotify:{endpoint}:malformed",
                f"Spotify: {endpoint} gave an unreadable answer (first for {what}); left empty and not cached",
            )
            return {"status": "malformed", "message": str(exc)}
        except SpotifyOauthError as exc:
            detail = exc.error_description or exc.error or str(exc)
            self._switch_off("refused", f"Spotify: the credentials were refused ({detail}); songs get source none")
            return {"status": 401, "message": str(detail)}
        except SpotifyException as exc:
            answer = {"status": exc.http_status, "message": _message(exc)}
            if exc.http_status == 401:
                self._switch_off(
                    "refused", f"Spotify: the credentials were refused ({answer['message']}); songs get source none"
                )
            if exc.http_status in UNCACHED_STATUS or not 400 <= exc.http_status < 500:
                return answer
        self.cache.put(SERVICE, endpoint, params, answer)
        return answer

    def _failed(self, endpoint: str, answer: Answer, what: str) -> str:
        """Note a per-song failure once per (endpoint, status) and say what happened."""
        status, message = answer.get("status"), answer.get("message", "")
        reason = f"{endpoint} answered {status}: {message}" if status != "malformed" else f"{endpoint}: {message}"
        if status not in (401, "malformed"):
            self.notes.add(
                f"spotify:{endpoint}:{status}",
                f"Spotify: {endpoint} answered HTTP {status} ({message}) for some songs (first: {what}); left empty",
            )
        return reason

    def _marker(self, endpoint: str) -> tuple[str, Params]:
        return f"{endpoint}:access", {"access": "forbidden"}

    def _is_forbidden(self, endpoint: str) -> bool:
        """A 403 for an endpoint is remembered in the cache, so later songs and runs skip it."""
        if endpoint not in self._checked_forbidden:
            self._checked_forbidden.add(endpoint)
            marker, params = self._marker(endpoint)
            if self.cache.get(SERVICE, marker, params) is not None:
                self._forbidden.add(endpoint)
                self._note_forbidden(endpoint)
        return endpoint in self._forbidden

    def _forbid(self, endpoint: str, answer: Answer) -> None:
        """Remember a 403 (written once; a run answered from the cache writes nothing)."""
        if not self._is_forbidden(endpoint):
            marker, params = self._marker(endpoint)
            self.cache.put(SERVICE, marker, params, answer)
            self._forbidden.add(endpoint)
        self._note_forbidden(endpoint)

    def _note_forbidden(self, endpoint: str) -> None:
        marker, params = self._marker(endpoint)
        self.notes.add(
            f"spotify:{endpoint}:403",
            f"Spotify: {endpoint} answered 403 (forbidden for new apps since 2024-11-27); "
            f"{FORBIDDEN_WHAT[endpoint]} left empty (remembered in the cache: delete "
            f"{self.cache.path(SERVICE, marker, params)} to ask again)",
        )

    # -- lookups --------------------------------------------------------------

    def _features(self, track_id: str, what: str) -> tuple[dict[str, Any], str | None]:
        empty: dict[str, Any] = {**dict.fromkeys(FEATURE_FIELDS), "key": None, "mode": None}
        endpoint = "audio-features"
        answer = self._fetch(
            endpoint,
            {"id": track_id},
            lambda p: _trim_features(self._client().audio_features([p["id"]])),
            what,
            gated=True,
        )
        if answer["status"] == 200:
            f = answer["features"]
            values = {k: _number(f.get(k), float) for k in FEATURE_FIELDS}
            return {**values, "key": _pitch_class(f.get("key")), "mode": _mode(f.get("mode"))}, None
        if answer["status"] == 403:
            self._forbid(endpoint, answer)
            return empty, f"{endpoint} forbidden (403)"
        return empty, self._failed(endpoint, answer, what)

    def _sections(self, track_id: str, what: str) -> tuple[list[Section] | None, str | None]:
        endpoint = "audio-analysis"
        answer = self._fetch(
            endpoint,
            {"id": track_id},
            lambda p: _trim_analysis(self._client().audio_analysis(p["id"])),
            what,
            gated=True,
        )
        if answer["status"] == 200:
            return [_section(s) for s in answer["sections"]] or None, None
        if answer["status"] == 403:
            self._forbid(endpoint, answer)
            return None, f"{endpoint} forbidden (403)"
        return None, self._failed(endpoint, answer, what)

    def lookup(self, artist: str, title: str, duration_s: float | None = None) -> SpotifyResult:
        if self._off:
            return SpotifyResult(matched=False, source="none", reason=self._off)
        if not title.strip():
            return SpotifyResult(matched=False, reason="no title to search for")
        what = f"{artist} - {title}"
        params: Params = {
            "q": search_query(artist, title),
            "type": "track",
            "limit": self.params.search_limit,
            "market": self.params.market,
        }
        answer = self._fetch("search", params, lambda p: _trim_search(self._client().search(**p)), what)
        if self._off:
            return SpotifyResult(matched=False, source="none", reason=self._off)
        if answer["status"] != 200:
            return SpotifyResult(matched=False, reason=self._failed("search", answer, what))
        candidates = [
            Candidate(i["id"], i["name"], tuple(i.get("artists") or ()), i.get("duration_ms")) for i in answer["items"]
        ]
        best = pick_best(title, artist, duration_s, candidates)
        if best is None:
            return SpotifyResult(matched=False, reason="search found no tracks")
        hit, similarity = best
        threshold = self.params.match_threshold
        if similarity < threshold:
            return SpotifyResult(
                matched=False,
                similarity=similarity,
                reason=f"best hit {', '.join(hit.artists)} - {hit.name} scores {similarity:.2f}, "
                f"below match_threshold {threshold:.2f}",
            )
        features, features_reason = self._features(hit.track_id, what)
        sections, sections_reason = (None, None) if self._off else self._sections(hit.track_id, what)
        reasons = [r for r in (features_reason, sections_reason) if r]
        return SpotifyResult(
            matched=True,
            similarity=similarity,
            track_id=hit.track_id,
            name=hit.name,
            artist=", ".join(hit.artists) or None,
            duration_ms=hit.duration_ms,
            sections=sections,
            reason="; ".join(reasons) or None,
            **features,
        )

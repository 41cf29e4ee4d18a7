"""MetadataClient against recorded Spotify and Last.fm answers, offline.

The real spotipy and pylast clients build and parse every request; only the bytes on
the wire are replayed: `responses` stands in for requests' HTTPAdapter (spotipy) and
a replacement for httpx2.HTTPTransport.handle_request stands in for the socket layer
under pylast (respx only knows httpx, not the httpx2 fork pylast uses). Sockets are
blocked and time.sleep fails, so nothing leaves the machine and nothing really waits.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx2
import pytest
import requests
import responses
from responses import matchers

from pipeline.errors import ItemError
from pipeline.metadata import LastfmResult, MetadataClient, ServiceUnavailable, SpotifyResult
from pipeline.metadata.cache import ResponseCache
from pipeline.metadata.retry import parse_retry_after
from pipeline.metadata.similarity import Candidate, normalise, pick_best, score
from pipeline.metadata.tags import clean_tags
from pipeline.params import LastfmParams, MetadataParams, SpotifyParams

FIXTURES = Path(__file__).parent / "fixtures" / "metadata"
SECRETS = {"SPOTIPY_CLIENT_ID": "cid-0123456789", "SPOTIPY_CLIENT_SECRET": "csecret-9876543210"}
LASTFM_KEY = {"LASTFM_API_KEY": "lfmkey-abcdef0123"}
ENV = {**SECRETS, **LASTFM_KEY}

TOKEN_URL = "https://accounts.spotify.com/api/token"
SEARCH_URL = "https://api.spotify.com/v1/search"
FEATURES_URL = "https://api.spotify.com/v1/audio-features/"  # spotipy asks for ?ids=<id>
ANALYSIS_URL = "https://api.spotify.com/v1/audio-analysis/"
LASTFM_URL = "https://ws.audioscrobbler.com/2.0/"
YESTERDAY_ID = "3BQHpFgAp4l80e1XslIjNI"
LET_IT_BE_ID = "7iN1s7xHE4ifF5povM6A48"
COVER_ID = "4Y1HF1Qi3ZHyzRGSADbTlA"


def fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def settings(**spotify: Any) -> MetadataParams:
    return MetadataParams(
        timeout_s=7.5,
        retries=3,
        backoff_s=1.0,
        max_retry_after_s=60.0,
        rate_limit_per_s=100.0,
        spotify=SpotifyParams(**spotify),
    )


@dataclass
class FakeTime:
    """The clock only moves when the client sleeps."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now

    def waits(self) -> list[float]:
        """Retry waits, without the rate limiter's 0.01 s slots."""
        return [round(s, 6) for s in self.sleeps if s > 0.05]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_connect(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a test tried to open a real connection")

    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"a test really slept {seconds} s")

    monkeypatch.setattr(socket.socket, "connect", no_connect)
    monkeypatch.setattr(time, "sleep", no_sleep)


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(tmp_path: Path, clock: FakeTime) -> Iterator[Callable[..., MetadataClient]]:
    clients: list[MetadataClient] = []

    def make(params: MetadataParams | None = None, env: dict[str, str] | None = None) -> MetadataClient:
        client = MetadataClient(
            params or settings(),
            tmp_path / "cache",
            env=ENV if env is None else env,
            sleep=clock.sleep,
            clock=clock.monotonic,
        )
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


# -- Spotify replay (requests level, via `responses`) ------------------------------------


@pytest.fixture
def spotify_api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def add_token(api: responses.RequestsMock, **kwargs: Any) -> None:
    if "body" not in kwargs:
        kwargs.setdefault("json", fixture_json("spotify_token.json"))
    api.add(responses.POST, TOKEN_URL, **kwargs)


def add_search(api: responses.RequestsMock, q: str = "track:Yesterday artist:The Beatles", **kwargs: Any) -> None:
    if "body" not in kwargs:
        kwargs.setdefault("json", fixture_json("spotify_search_yesterday.json"))
    params = {"q": q, "limit": "10", "offset": "0", "type": "track"}
    api.add(responses.GET, SEARCH_URL, match=[matchers.query_param_matcher(params)], **kwargs)


def add_features(api: responses.RequestsMock, track_id: str = YESTERDAY_ID, **kwargs: Any) -> None:
    if "body" not in kwargs:
        kwargs.setdefault("json", fixture_json("spotify_audio_features.json"))
    api.add(responses.GET, FEATURES_URL, match=[matchers.query_param_matcher({"ids": track_id})], **kwargs)


def add_analysis(api: responses.RequestsMock, track_id: str = YESTERDAY_ID, **kwargs: Any) -> None:
    if "body" not in kwargs:
        kwargs.setdefault("json", fixture_json("spotify_audio_analysis.json"))
    api.add(responses.GET, ANALYSIS_URL + track_id, **kwargs)


def spotify_error(status: int, message: str) -> dict[str, Any]:
    return {"status": status, "json": {"error": {"status": status, "message": message}}}


def calls_to(api: responses.RequestsMock, url: str) -> list[Any]:
    return [c for c in api.calls if c.request.url.split("?")[0] == url]


# -- Last.fm replay (httpx2 transport level) ---------------------------------------------


Reply = httpx2.Response | Exception


class LastfmReplay:
    """Answers the requests pylast sends, in order; records each one's form fields."""

    def __init__(self) -> None:
        self.queue: list[Reply] = []
        self.requests: list[dict[str, str]] = []
        self.timeouts: list[Any] = []

    def add(self, body: str, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.queue.append(httpx2.Response(status, headers={"content-type": "text/xml", **(headers or {})}, text=body))

    def add_error(self, exc: Exception) -> None:
        self.queue.append(exc)

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        assert str(request.url) == LASTFM_URL and request.method == "POST"
        form = {k: v[0] for k, v in parse_qs(request.read().decode()).items()}
        self.requests.append(form)
        self.timeouts.append(request.extensions.get("timeout"))
        assert self.queue, f"unexpected Last.fm request {form}"
        reply = self.queue.pop(0) if len(self.queue) > 1 else self.queue[0]
        if isinstance(reply, Exception):
            raise reply
        return reply


@pytest.fixture
def lastfm_api(monkeypatch: pytest.MonkeyPatch) -> LastfmReplay:
    replay = LastfmReplay()

    def handle_request(transport: httpx2.HTTPTransport, request: httpx2.Request) -> httpx2.Response:
        return replay.handle(request)

    monkeypatch.setattr(httpx2.HTTPTransport, "handle_request", handle_request)
    return replay


def all_cache_text(root: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(root.rglob("*.json")))


# -- Spotify --------------------------------------------------------------------------------


def test_spotify_good_match_with_features_and_sections(
    make_client: Callable[..., MetadataClient], spotify_api: responses.RequestsMock, tmp_path: Path
) -> None:
    add_token(spotify_api)
    add_search(spotify_api)
    add_features(spotify_api)
    add_analysis(spotify_api)
    client = make_client()

    result = client.spotify("The Beatles", "Yesterday", 126.0)

    assert result.matched and result.source == "spotify"
    assert result.track_id == YESTERDAY_ID  # not the Boyz II Men cover ranked first by Spotify
    assert result.name == "Yesterday - Remastered 2009" and result.artist == "The Beatles"
    assert result.similarity is not None and result.similarity >= 0.99
    assert result.duration_ms == 125666
    assert (result.energy, result.acousticness, result.danceability, result.valence) == (0.179, 0.879, 0.332, 0.315)
    assert result.instrumentalness == 0.0 and isinstance(result.instrumentalness, float)
    assert (result.tempo, result.key, result.mode) == (96.529, 5, 1)
    assert result.sections is not None and len(result.sections) == 3
    assert result.sections[0] == {
        "start": 0.0,
        "duration": 9.68108,
        "tempo": 95.827,
        "key": 5,
        "mode": 1,
        "loudness": -16.442,
    }
    assert (result.sections[2]["key"], result.sections[2]["mode"]) == (None, None)  # Spotify's -1: no key
    assert result.reason is None
    assert client.notes == []

    # One token request, then search, features, analysis; the token is sent as a bearer.
    assert client.network_calls == 4 and client.cache_hits == 0
    token_call = spotify_api.calls[0]
    assert token_call.request.headers["Authorization"].startswith("Basic ")
    assert "grant_type=client_credentials" in token_call.request.body
    for call in spotify_api.calls[1:]:
        assert call.request.headers["Authorization"] == "Bearer " + fixture_json("spotify_token.json")["access_token"]
        assert call.request.req_kwargs["timeout"] == 7.5

    # Nothing secret reaches the cache, which holds trimmed answers only.
    text = all_cache_text(tmp_path / "cache")
    for secret in [*ENV.values(), fixture_json("spotify_token.json")["access_token"]]:
        assert secret not in text
    assert "available_markets" not in text and "segments" not in text


def test_spotify_best_hit_below_threshold_is_no_match(
    make_client: Callable[..., MetadataClient], spotify_api: responses.RequestsMock
) -> None:
    add_token(spotify_api)
    add_search(spotify_api, json=fixture_json("spotify_search_cover_only.json"))
    client = make_client()

    result = client.spotify("The Beatles", "Yesterday", None)

    assert not result.matched and result.source == "spotify"
    assert result.similarity is not None and 0.5 < result.similarity < 0.8
    assert result.track_id is None and result.energy is None and result.sections is None
    assert "below match_threshold 0.80" in (result.reason or "")
    assert client.network_calls == 2  # token + search; no features for a rejected hit


def test_spotify_market_and_limit_reach_the_search(
    make_client: Callable[..., MetadataClient], spotify_api: responses.RequestsMock
) -> None:
    add_token(spotify_api)
    params = {"q": "track:Yesterday artist:The Beatles", "limit": "5", "offset": "0", "type": "track", "market": "GB"}
    spotify_api.add(
        responses.GET,
        SEARCH_URL,
        match=[matchers.query_param_matcher(params)],
        json=fixture_json("spotify_search_cover_only.json"),
    )
    add_features(spotify_api, track_id=COVER_ID, **spotify_error(404, "analysis not found"))
    add_analysis(spotify_api, track_id=COVER_ID, **spotify_error(404, "analysis not found"))
    client = make_client(settings(search_limit=5, market="GB", match_threshold=0.5))

    result = client.spotify("The Beatles (feat. Nobody)", "Yesterday [MIDI version]", None)

    assert result.matched and result.artist == "Boyz II Men"  # a low threshold accepts the cover
    assert result.track_id == COVER_ID and result.energy is None and result.sections is None
    assert len(client.notes) == 2 and client.network_calls == 4


@pytest.mark.parametrize(
    "token_reply",
    [
        {"status": 400, "json": {"error": "invalid_client", "error_description": "Invalid client"}},
        {"status": 401, "json": {"error": "invalid_client", "error_description": "Invalid client secret"}},
    ],
    ids=["400-invalid-client", "401"],
)
def test_spotify_refused_token(
    make_client: Callable[..., MetadataClient], spotify_api: responses.RequestsMock, token_reply: dict[str, Any]
) -> None:
    add_token(spotify_api, **token_reply)
    client = make_client()

    first = client.spotify("The Beatles", "Yesterday", None)
    second = client.spotify("The Beatles", "Let It Be", None)

    assert first == second == SpotifyResult(matched=False, source="none", reason=first.reason)
    assert client.network_calls == 1  # refused once, not retried, not asked again
    assert len(client.notes) == 1 and client.notes[0].startswith(
        "Spotify: the credentials were refused (Invalid client"
    )


def test_spotify_401_on_the_api(
    make_client: Callable[..., MetadataClient], spotify_api: responses.RequestsMock, tmp_path: Path
) -> None:
    add_token(spotify_api)
    add_search(spotify_api, **spotify_error(401, "Invalid access token"))
    client = make_client()

    result = client.spotify("The Beatles", "Yesterday", None)
    again = client.spotify("The Beatles", "Let It Be", None)

    assert result.source == again.source == "none" and not result.matched
    assert client.notes == [
        "Spotify: the credentials were refused (Invalid access token); songs get source none",
    ]
    assert client.network_calls == 2
    assert not list((tmp_path / "cache").rglob("*.json"))  # a refusal is no answer to cache


def test_spotify_403_on_features_and_analysis_is_noted_once(
    make_client: Callable[..., MetadataClient], spotify_api: responses.RequestsMock
) -> None:
    add_token(spotify_api)
    add_search(spotify_api)
    add_search(spotify_api, q="track:Let It Be artist:The Beatles", json=fixture_json("spotify_search_let_it_be.json"))
    add_features(spotify_api, **spotify_error(403, "Forbidden"))
    add_analysis(spotify_api, **spotify_error(403, "Forbidden"))
    client = make_client()

    yesterday = client.spotify("The Beatles", "Yesterday", None)
    let_it_be = client.spotify("The Beatles", "Let It Be", None)

    for result in (yesterday, let_it_be):
        assert result.matched and result.source == "spotify" and result.duration_ms
        assert (result.energy, result.acousticness, result.tempo, result.key, result.mode) == (None,) * 5
        assert result.sections is None
    assert let_it_be.track_id == LET_IT_BE_ID
    assert len(client.notes) == 2
    assert client.notes[0].startswith(
        "Spotify: audio-features answered 403 (forbidden for new apps since 2024-11-27); energy, acousticness"
    )
    assert (
        client.notes[1].startswith("Spotify: audio-analysis answered 403") and "sections left empty" in client.notes[1]
    )
    # The second song skips both forbidden endpoints: token, 2 searches, 1 features, 1 analysis.
    assert client.network_calls == 5
    assert len(calls_to(spotify_api, FEATURES_URL)) == 1


def test_spotify_403_is_remembered_across_runs(
    make_client: Callable[..., MetadataClient], spotify_api: responses.RequestsMock
) -> None:
    add_token(spotify_api)
    add_search(spotify_api)
    add_search(spotify_api, q="track:Let It Be artist:The Beatles", json=fixture_json("spotify_search_let_it_be.json"))
    add_features(spotify_api, **spotify_error(403, "Forbidden"))
    add_analysis(spotify_api, **spotify_error(403, "Forbidden"))
    first = make_client()
    first.spotify("The Beatles", "Yesterday", None)

    second = make_client()
    result = second.spotify("The Beatles", "Let It Be", None)  # a new song: only its search goes out

    assert result.matched and result.energy is None and result.sections is None
    assert second.network_calls == 2  # token + search
    assert second.notes == first.notes


def test_spotify_404_on_features_keeps_the_match(
    make_client: Callable[..., MetadataClient], spotify_api: responses.RequestsMock
) -> None:
    add_token(spotify_api)
    add_search(spotify_api)
    add_features(spotify_api, **spotify_error(404, "analysis not found"))
    add_analysis(spotify_api)
    client = make_client()

    result = client.spotify("The Beatles", "Yesterday", None)

    assert result.matched and result.energy is None and result.sections is not None
    assert "audio-features answered 404" in (result.reason or "")
    assert client.notes == [
        "Spotify: audio-features answered HTTP 404 (analysis not found) for some songs "
        "(first: The Beatles - Yesterday); left empty"
    ]
    rerun = make_client()
    assert rerun.spotify("The Beatles", "Yesterday", None) == result
    assert rerun.network_calls == 0  # the 404 is an answer, so it was cached


def test_spotify_429_waits_retry_after_then_succeeds(
    make_client: Callable[..., MetadataClient], spotify_api: responses.RequestsMock, clock: FakeTime
) -> None:
    add_token(spotify_api)
    add_search(spotify_api, status=429, headers={"Retry-After": "7"}, json={"error": {"status": 429}})
    add_search(spotify_api)
    add_features(spotify_api)
    add_analysis(spotify_api)
    client = make_client()

    result = client.spotify("The Beatles", "Yesterday", None)

    assert result.matched and result.energy == 0.179
    assert clock.waits() == [7.0]
    assert client.network_calls == 5 and len(calls_to(spotify_api, SEARCH_URL)) == 2


def test_spotify_retry_after_above_the_maximum_gives_up_without_waiting(
    make_client: Callable[..., MetadataClient], spotify_api: responses.RequestsMock, clock: FakeTime
) -> None:
    add_token(spotify_api)
    add_search(spotify_api, status=429, headers={"Retry-After": "86400"})
    client = make_client()

    with pytest.raises(ServiceUnavailable, match="asked to wait 86400 s"):
        client.spotify("The Beatles", "Yesterday", None)
    assert clock.waits() == []
    assert client.network_calls == 2


def test_spotify_500_then_success_backs_off(
    make_client: Callable[..., MetadataClient], spotify_api: responses.RequestsMock, clock: FakeTime
) -> None:
    add_token(spotify_api, status=503, body="upstream connect error")
    add_token(spotify_api)
    add_search(spotify_api, status=500, json={"error": {"status": 500, "message": "Server error."}})
    add_search(spotify_api, status=502, body="<html>Bad Gateway</html>")
    add_search(spotify_api)
    add_features(spotify_api)
    add_analysis(spotify_api)
    client = make_client()

    result = client.spotify("The Beatles", "Yesterday", None)

    assert result.matched and result.sections
    assert clock.waits() == [1.0, 1.0, 2.0]  # backoff restarts for each request: token, then search twice
    assert client.network_calls == 7


def test_spotify_timeout_then_success(
    make_client: Callable[..., MetadataClient], spotify_api: responses.RequestsMock, clock: FakeTime
) -> None:
    add_token(spotify_api)
    add_search(spotify_api, body=requests.exceptions.ReadTimeout("Read timed out. (read timeout=7.5)"))
    add_search(spotify_api)
    add_features(spotify_api)
    add_analysis(spotify_api)
    client = make_client()

    result = client.spotify("The Beatles", "Yesterday", None)

    assert result.matched
    assert clock.waits() == [1.0]
    assert client.network_calls == 5


def test_spotify_retries_exhausted_raise_and_later_songs_fail_fast(
    make_client: Callable[..., MetadataClient], spotify_api: responses.RequestsMock, clock: FakeTime, tmp_path: Path
) -> None:
    add_token(spotify_api)
    add_search(spotify_api, status=503, body="Service Unavailable")
    client = make_client()

    with pytest.raises(ServiceUnavailable, match=r"HTTP 503 \(after 4 attempts\)") as info:
        client.spotify("The Beatles", "Yesterday", None)
    assert isinstance(info.value, ItemError)
    assert clock.waits() == [1.0, 2.0, 4.0]
    assert client.network_calls == 5  # token + 4 search attempts

    with pytest.raises(ServiceUnavailable):
        client.spotify("The Beatles", "Let It Be", None)
    assert client.network_calls == 5  # down: no new attempts this run
    assert len([n for n in client.notes if n.startswith("Spotify unavailable")]) == 1
    assert not list((tmp_path / "cache").rglob("*.json"))


def test_spotify_malformed_json_is_retried_then_left_unmatched(
    make_client: Callable[..., MetadataClient], spotify_api: responses.RequestsMock, tmp_path: Path
) -> None:
    add_token(spotify_api)
    add_search(spotify_api, body='{"tracks": {"items": [', content_type="application/json")
    client = make_client()

    result = client.spotify("The Beatles", "Yesterday", None)

    assert not result.matched and result.source == "spotify"
    assert "not JSON" in (result.reason or "")
    assert client.network_calls == 5
    assert len(client.notes) == 1 and "search gave an unreadable answer" in client.notes[0]
    assert not list((tmp_path / "cache").rglob("*.json"))  # a glitch, not an answer


def test_spotify_malformed_once_then_good(
    make_client: Callable[..., MetadataClient], spotify_api: responses.RequestsMock
) -> None:
    add_token(spotify_api)
    add_search(spotify_api, body="<html>oops</html>", content_type="text/html")
    add_search(spotify_api)
    add_features(spotify_api)
    add_analysis(spotify_api)
    client = make_client()

    assert client.spotify("The Beatles", "Yesterday", None).matched
    assert client.notes == []


def test_spotify_rate_limit_spaces_requests(
    make_client: Callable[..., MetadataClient], spotify_api: responses.RequestsMock, clock: FakeTime
) -> None:
    add_token(spotify_api)
    add_search(spotify_api)
    add_features(spotify_api)
    add_analysis(spotify_api)
    params = settings().model_copy(update={"rate_limit_per_s": 2.0})
    client = make_client(params)

    client.spotify("The Beatles", "Yesterday", None)

    assert clock.sleeps == [0.5, 0.5, 0.5]  # four requests, half a second apart


# -- Last.fm --------------------------------------------------------------------------------


def test_lastfm_tags_are_filtered(make_client: Callable[..., MetadataClient], lastfm_api: LastfmReplay) -> None:
    lastfm_api.add(fixture_text("lastfm_toptags_yesterday.xml"))
    client = make_client()

    result = client.lastfm("The Beatles", "Yesterday")

    assert result == LastfmResult(
        matched=True,
        tags=[("60s", 100), ("classic rock", 71), ("acoustic", 52), ("ballad", 52), ("melancholic", 10)],
    )
    assert lastfm_api.requests == [
        {
            "artist": "The Beatles",
            "track": "Yesterday",
            "api_key": LASTFM_KEY["LASTFM_API_KEY"],
            "method": "track.getTopTags",
        }
    ]
    assert lastfm_api.timeouts == [{"connect": 7.5, "read": 7.5, "write": 7.5, "pool": 7.5}]
    assert client.network_calls == 1 and client.notes == []


def test_lastfm_max_tags_and_threshold_come_from_params(
    make_client: Callable[..., MetadataClient], lastfm_api: LastfmReplay
) -> None:
    lastfm_api.add(fixture_text("lastfm_toptags_yesterday.xml"))
    params = settings().model_copy(update={"lastfm": LastfmParams(min_tag_weight=50, max_tags=2, junk_tags=["60S"])})
    client = make_client(params)

    assert client.lastfm("The Beatles", "Yesterday").tags == [("classic rock", 71), ("acoustic", 52)]


def test_lastfm_track_not_found(make_client: Callable[..., MetadataClient], lastfm_api: LastfmReplay) -> None:
    lastfm_api.add(fixture_text("lastfm_error_6.xml"))  # Last.fm says so with HTTP 200
    client = make_client()

    result = client.lastfm("Nobody", "No Such Song")

    assert result == LastfmResult(matched=False, tags=[], source="lastfm", reason="Last.fm error 6: Track not found")
    assert client.notes == [
        "Last.fm: error 6 (Track not found) for some songs (first: Nobody - No Such Song); they get no tags"
    ]
    rerun = make_client()
    assert rerun.lastfm("Nobody", "No Such Song") == result and rerun.network_calls == 0


def test_lastfm_invalid_api_key(make_client: Callable[..., MetadataClient], lastfm_api: LastfmReplay) -> None:
    lastfm_api.add(fixture_text("lastfm_error_10.xml"), status=403)
    client = make_client()

    first = client.lastfm("The Beatles", "Yesterday")
    second = client.lastfm("The Beatles", "Let It Be")

    assert first.source == second.source == "none" and not first.matched
    assert client.network_calls == 1
    assert client.notes == [
        "Last.fm: the API key was refused (error 10: Invalid API key - You must be granted a valid key by last.fm); "
        "songs get source none"
    ]
    assert LASTFM_KEY["LASTFM_API_KEY"] not in " ".join(client.notes)


def test_lastfm_transient_errors_are_retried(
    make_client: Callable[..., MetadataClient], lastfm_api: LastfmReplay, clock: FakeTime
) -> None:
    lastfm_api.add("<html>502 Bad Gateway</html>", status=502)
    lastfm_api.add_error(httpx2.ReadTimeout("timed out"))
    lastfm_api.add(fixture_text("lastfm_error_29.xml"), status=429, headers={"Retry-After": "3"})
    lastfm_api.add(fixture_text("lastfm_error_29.xml"))  # rate limit reported inside a 200
    lastfm_api.add(fixture_text("lastfm_toptags_yesterday.xml"))
    params = settings().model_copy(update={"retries": 4})
    client = make_client(params)

    result = client.lastfm("The Beatles", "Yesterday")

    assert result.matched and result.tags[0] == ("60s", 100)
    assert clock.waits() == [1.0, 2.0, 3.0, 8.0]
    assert client.network_calls == 5


def test_lastfm_retries_exhausted(
    make_client: Callable[..., MetadataClient], lastfm_api: LastfmReplay, clock: FakeTime
) -> None:
    lastfm_api.add_error(httpx2.ConnectTimeout("timed out"))
    client = make_client()

    with pytest.raises(ServiceUnavailable, match=r"Last.fm unavailable: .*ConnectTimeout"):
        client.lastfm("The Beatles", "Yesterday")
    with pytest.raises(ServiceUnavailable):
        client.lastfm("The Beatles", "Let It Be")
    assert client.network_calls == 4 and clock.waits() == [1.0, 2.0, 4.0]


def test_lastfm_malformed_xml(
    make_client: Callable[..., MetadataClient], lastfm_api: LastfmReplay, tmp_path: Path
) -> None:
    lastfm_api.add("<lfm status='ok'><toptags><tag><name>rock")
    client = make_client()

    result = client.lastfm("The Beatles", "Yesterday")

    assert not result.matched and result.source == "lastfm" and result.tags == []
    assert client.network_calls == 4 and len(client.notes) == 1
    assert not list((tmp_path / "cache").rglob("*.json"))


# -- Both -----------------------------------------------------------------------------------


def test_no_credentials_gives_source_none_without_network(
    make_client: Callable[..., MetadataClient], spotify_api: responses.RequestsMock, lastfm_api: LastfmReplay
) -> None:
    client = make_client(env={})

    for title in ("Yesterday", "Let It Be"):
        assert client.spotify("The Beatles", title, 120.0).source == "none"
        assert client.lastfm("The Beatles", title) == LastfmResult(
            matched=False, tags=[], source="none", reason=client.notes[1]
        )
    assert client.notes == [
        "Spotify: no credentials (set SPOTIPY_CLIENT_ID and SPOTIPY_CLIENT_SECRET); songs get source none",
        "Last.fm: no API key (set LASTFM_API_KEY); songs get source none",
    ]
    assert client.network_calls == 0 and client.cache_hits == 0
    assert not spotify_api.calls and not lastfm_api.requests


def test_half_the_spotify_credentials_count_as_none(make_client: Callable[..., MetadataClient]) -> None:
    client = make_client(env={"SPOTIPY_CLIENT_ID": "cid", **LASTFM_KEY})
    assert client.spotify("The Beatles", "Yesterday", None).source == "none"
    assert client.notes[0].startswith("Spotify: no credentials")


def test_second_run_over_the_same_cache_makes_no_network_calls(
    make_client: Callable[..., MetadataClient],
    spotify_api: responses.RequestsMock,
    lastfm_api: LastfmReplay,
    tmp_path: Path,
) -> None:
    add_token(spotify_api)
    add_search(spotify_api)
    add_search(spotify_api, q="track:Let It Be artist:The Beatles", json=fixture_json("spotify_search_let_it_be.json"))
    add_features(spotify_api)
    add_analysis(spotify_api)
    add_features(spotify_api, track_id=LET_IT_BE_ID, **spotify_error(403, "Forbidden"))
    add_analysis(spotify_api, track_id=LET_IT_BE_ID, **spotify_error(403, "Forbidden"))
    lastfm_api.add(fixture_text("lastfm_toptags_yesterday.xml"))
    lastfm_api.add(fixture_text("lastfm_error_6.xml"))
    songs = [("The Beatles", "Yesterday", 125.0), ("The Beatles", "Let It Be", 243.0)]

    def run(client: MetadataClient) -> list[tuple[SpotifyResult, LastfmResult]]:
        return [(client.spotify(a, t, d), client.lastfm(a, t)) for a, t, d in songs]

    first = make_client()
    first_results = run(first)
    assert first.network_calls == 1 + 2 + 2 + 2 + 2  # token, searches, features, analyses, Last.fm
    assert first_results[0][0].energy == 0.179 and first_results[1][0].energy is None

    spotify_api.reset()  # from here on any request fails the test
    lastfm_api.queue.clear()
    before = {p: p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file()}
    second = make_client()
    assert run(second) == first_results
    assert {p: p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file()} == before  # read-only
    assert second.network_calls == 0
    assert second.cache_hits == 2 + 2 + 2 + 2  # searches, features (song 2's 403 too), analyses, Last.fm
    assert second.notes == first.notes


def test_a_corrupt_cache_file_is_a_miss(
    make_client: Callable[..., MetadataClient], lastfm_api: LastfmReplay, tmp_path: Path
) -> None:
    lastfm_api.add(fixture_text("lastfm_toptags_yesterday.xml"))
    make_client().lastfm("The Beatles", "Yesterday")
    (path,) = (tmp_path / "cache").rglob("*.json")
    path.write_text('{"service": "lastfm", "resp')

    client = make_client()
    assert client.lastfm("The Beatles", "Yesterday").matched
    assert client.network_calls == 1 and json.loads(path.read_text())["response"]["status"] == "ok"


# -- Pieces ---------------------------------------------------------------------------------


def test_cache_key_normalises_whitespace_and_ignores_nothing_else(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    a = cache.path("lastfm", "track.getTopTags", {"artist": " The  Beatles", "track": "Yesterday"})
    b = cache.path("lastfm", "track.getTopTags", {"track": "Yesterday", "artist": "The Beatles "})
    c = cache.path("spotify", "track.getTopTags", {"track": "Yesterday", "artist": "The Beatles"})
    assert a == b != c


def test_normalise_strips_decorations() -> None:
    assert normalise("Yesterday - Remastered 2009") == "yesterday"
    assert normalise("Don't Stop Me Now (feat. Nobody) [Live]") == "dont stop me now"
    assert normalise("Crazy in Love ft. JAY-Z") == "crazy in love"
    assert normalise("Beyoncé & Friends") == "beyonce and friends"
    assert normalise("Hey Jude - 2015 Mix") == "hey jude"


def test_pick_best_prefers_score_then_duration() -> None:
    a = Candidate("a", "Yesterday", ("The Beatles",), 240_000)
    b = Candidate("b", "Yesterday - Remastered", ("Beatles",), 125_000)
    c = Candidate("c", "Yesterday", ("Boyz II Men",), 125_000)
    best = pick_best("Yesterday", "The Beatles", 126.0, [c, a, b])
    assert best is not None and best[0] is b and best[1] == 1.0
    assert score("Yesterday", "The Beatles", c) < 0.8
    assert pick_best("Yesterday", "The Beatles", None, []) is None


def test_clean_tags_orders_and_dedupes() -> None:
    raw = [("Rock", "80"), ("rock ", 90), ("Metallica", 99), ("metal", "x"), ("Heavy  Metal", 80)]
    assert clean_tags(raw, "Metallica", LastfmParams()) == [("rock", 90), ("heavy metal", 80)]


def test_retry_after_forms() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = datetime.now(UTC) + timedelta(seconds=120)
    assert 100 < (parse_retry_after(format_datetime(later, usegmt=True)) or 0) <= 120

"""The HTTP layer under spotipy (requests) and pylast (httpx2).

Each library keeps building and parsing its own requests; these hooks sit where the
bytes leave, so every real attempt is rate-limited, counted, timed out after
timeout_s and retried by one `Retrier`. After the last try they raise our own
exceptions, which neither library catches.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import httpx2
import requests
from requests.adapters import HTTPAdapter

from pipeline.metadata.retry import ACCEPT, Retrier, Verdict, parse_retry_after

# Last.fm error codes that say "try again later" (operation failed, offline, temporary, rate limit).
LASTFM_TRANSIENT = frozenset({8, 11, 16, 29})
LASTFM_HOSTS = "https://ws.audioscrobbler.com"

_INVALID_XML_CHARS = re.compile(r"[^\u0009\u000A\u000D\u0020-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]+")


def _transient_status(status: int, headers: Any) -> Verdict | None:
    if status == 429 or status >= 500:
        return Verdict("retry", f"HTTP {status}", parse_retry_after(headers.get("Retry-After")))
    return None


def judge_spotify(response: requests.Response) -> Verdict:
    """429/5xx retry; a 2xx must be JSON; other 4xx go to spotipy, which raises for them."""
    transient = _transient_status(response.status_code, response.headers)
    if transient is not None:
        return transient
    if 200 <= response.status_code < 300:
        try:
            json.loads(response.content)
        except ValueError:
            return Verdict("malformed", f"HTTP {response.status_code} answer is not JSON")
    return ACCEPT


class SpotifyAdapter(HTTPAdapter):
    """Mounted on the requests.Session that spotipy and its token manager share."""

    def __init__(self, retrier: Retrier, timeout_s: float):
        super().__init__(max_retries=0)
        self._retrier = retrier
        self._timeout_s = timeout_s

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        def once() -> requests.Response:
            response = HTTPAdapter.send(
                self, request, stream=False, timeout=self._timeout_s, verify=verify, cert=cert, proxies=proxies
            )
            _ = response.content  # read now, so a retry never leaves a half-read connection
            return response

        return self._retrier.call(once, judge_spotify)


SPOTIFY_NETWORK_ERRORS = (requests.exceptions.Timeout, requests.exceptions.ConnectionError)
LASTFM_NETWORK_ERRORS = (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)


@dataclass(frozen=True)
class Fetched:
    response: httpx2.Response
    body: bytes


def _parse_lfm(body: bytes) -> ET.Element | None:
    for text in (body, _INVALID_XML_CHARS.sub("", body.decode("utf-8", "replace")).encode("utf-8")):
        try:
            return ET.fromstring(text)
        except ET.ParseError:
            continue
    return None


def judge_lastfm(fetched: Fetched) -> Verdict:
    """429/5xx and transient Last.fm error codes retry; the body must be an <lfm> document
    (Last.fm reports most errors inside it, often with HTTP 200)."""
    status = fetched.response.status_code
    transient = _transient_status(status, fetched.response.headers)
    if transient is not None:
        return transient
    root = _parse_lfm(fetched.body)
    if root is None or root.tag != "lfm":
        return Verdict("malformed", f"HTTP {status} answer is not a Last.fm XML document")
    if root.get("status") == "ok":
        return ACCEPT
    error = root.find("error")
    try:
        code = int(error.get("code", "")) if error is not None else None
    except ValueError:
        code = None
    if error is None or code is None:
        return Verdict("malformed", f"HTTP {status} Last.fm failure without an error code")
    if code in LASTFM_TRANSIENT:
        message = (error.text or "").strip()
        retry_after = parse_retry_after(fetched.response.headers.get("Retry-After"))
        return Verdict("retry", f"Last.fm error {code}: {message}", retry_after)
    return ACCEPT


_DROPPED_HEADERS = {"content-encoding", "content-length", "transfer-encoding"}


class LastfmTransport(httpx2.BaseTransport):
    """Mounted for ws.audioscrobbler.com in the httpx2.Client that pylast opens per request.

    pylast closes its client (and so its mounts) after every request; `close` is a
    no-op so that the connection pool survives, and `shutdown` really closes it.
    """

    def __init__(self, retrier: Retrier, timeout_s: float, inner: httpx2.BaseTransport | None = None):
        self._retrier = retrier
        self._timeout = httpx2.Timeout(timeout_s).as_dict()
        self._inner = inner if inner is not None else httpx2.HTTPTransport()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        request.extensions = {**request.extensions, "timeout": self._timeout}  # pylast hard-codes 5 s / 20 s

        def once() -> Fetched:
            response = self._inner.handle_request(request)
            try:
                body = response.read()
            finally:
                response.close()
            return Fetched(response, body)

        fetched = self._retrier.call(once, judge_lastfm)
        r = fetched.response
        headers = [(k, v) for k, v in r.headers.multi_items() if k.lower() not in _DROPPED_HEADERS]
        extensions = {k: r.extensions[k] for k in ("http_version", "reason_phrase") if k in r.extensions}
        return httpx2.Response(
            r.status_code, headers=headers, content=fetched.body, request=request, extensions=extensions
        )

    def close(self) -> None:
        """Kept open across pylast's per-request clients; see `shutdown`."""

    def shutdown(self) -> None:
        self._inner.close()

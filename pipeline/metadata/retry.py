"""Rate limiting, retries and call counting, applied per HTTP attempt.

This is the only retry layer: spotipy's urllib3 retries are left out (it gets a
session without them) and pylast retries nothing for track.getTopTags. Waiting
goes through an injected `sleep` and `clock`, so tests neither wait nor guess.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal, TypeVar

from pipeline.metadata.errors import MalformedResponse, RetriesExhausted
from pipeline.params import MetadataParams

R = TypeVar("R")
Sleep = Callable[[float], None]
Clock = Callable[[], float]


@dataclass
class CallStats:
    """Requests that really went out (every retry counts) and answers served from the cache."""

    network_calls: int = 0
    cache_hits: int = 0


@dataclass(frozen=True)
class Verdict:
    """How one attempt went: keep the answer, retry it, or retry because the body is unreadable."""

    action: Literal["accept", "retry", "malformed"]
    reason: str = ""
    retry_after: float | None = None


ACCEPT = Verdict("accept")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class RateLimiter:
    """At most `per_s` requests per second: each request waits for its slot."""

    def __init__(self, per_s: float, sleep: Sleep, clock: Clock = time.monotonic):
        self.interval = 1.0 / per_s
        self._sleep, self._clock = sleep, clock
        self._next: float | None = None

    def wait(self) -> None:
        now = self._clock()
        if self._next is not None and now < self._next:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


class Retrier:
    """Sends one request with up to `retries` retries on network errors, 429, 5xx and
    unreadable bodies; waits Retry-After (when given, up to max_retry_after_s) or
    backoff_s * 2**n. Raises RetriesExhausted / MalformedResponse when out of tries."""

    def __init__(
        self,
        service: str,
        settings: MetadataParams,
        stats: CallStats,
        sleep: Sleep,
        clock: Clock,
        network_errors: tuple[type[BaseException], ...],
    ):
        self.service = service
        self.settings = settings
        self.stats = stats
        self.limiter = RateLimiter(settings.rate_limit_per_s, sleep, clock)
        self._sleep = sleep
        self._network_errors = network_errors

    def call(self, send: Callable[[], R], judge: Callable[[R], Verdict]) -> R:
        s = self.settings
        tries = s.retries + 1
        for attempt in range(tries):
            self.limiter.wait()
            self.stats.network_calls += 1
            try:
                result = send()
            except self._network_errors as exc:
                verdict = Verdict("retry", f"{type(exc).__name__}: {exc}")
                cause: BaseException | None = exc
            else:
                verdict, cause = judge(result), None
                if verdict.action == "accept":
                    return result
            if verdict.retry_after is not None and verdict.retry_after > s.max_retry_after_s:
                raise RetriesExhausted(
                    f"{verdict.reason}, asked to wait {verdict.retry_after:g} s "
                    f"(more than max_retry_after_s = {s.max_retry_after_s:g})"
                ) from cause
            if attempt + 1 < tries:
                delay = verdict.retry_after if verdict.retry_after is not None else s.backoff_s * 2**attempt
                self._sleep(delay)
        if verdict.action == "malformed":
            raise MalformedResponse(f"{verdict.reason} (after {tries} attempts)") from cause
        raise RetriesExhausted(f"{verdict.reason} (after {tries} attempts)") from cause

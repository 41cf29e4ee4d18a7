"""Exceptions of the metadata clients.

The transports raise their own exception types (not ValueError, not a requests or
httpx2 exception) so that neither spotipy nor pylast can swallow or reinterpret
them on the way up.
"""

from __future__ import annotations

from pipeline.errors import ItemError


class ServiceUnavailable(ItemError):
    """A service stayed down (timeouts, 429 or 5xx) through every retry; nothing was cached."""


class RetriesExhausted(Exception):
    """Raised by a transport when the last allowed attempt still failed transiently."""


class MalformedResponse(Exception):
    """Raised by a transport when the body stayed unparseable through every retry."""

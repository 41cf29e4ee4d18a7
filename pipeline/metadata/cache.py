"""Persistent cache of (trimmed) API answers, so a re-run makes no network calls.

One JSON file per request, named by a hash of (service, endpoint, normalised params)
and written atomically. Keys and files hold only the query, never a credential.
A file that cannot be read or does not match its key counts as a miss.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from pathlib import Path
from typing import Any

from pipeline.io.atomic import dumps, write_json

FORMAT = 1  # bump when the stored shape of an answer changes

Params = dict[str, str | int | float | bool | None]


def normalise_params(params: Params) -> Params:
    """Strings in NFC with whitespace collapsed; keys sorted. The same normalised
    params are sent to the service, so a key always names exactly one request."""
    out: Params = {}
    for k in sorted(params):
        v = params[k]
        out[k] = " ".join(unicodedata.normalize("NFC", v).split()) if isinstance(v, str) else v
    return out


def cache_key(service: str, endpoint: str, params: Params) -> str:
    ident = {"format": FORMAT, "service": service, "endpoint": endpoint, "params": normalise_params(params)}
    return hashlib.sha256(dumps(ident).encode("utf-8")).hexdigest()


class ResponseCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, service: str, endpoint: str, params: Params) -> Path:
        key = cache_key(service, endpoint, params)
        return self.root / service / key[:2] / f"{key}.json"

    def get(self, service: str, endpoint: str, params: Params) -> dict[str, Any] | None:
        try:
            stored = json.loads(self.path(service, endpoint, params).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        expected = {"service": service, "endpoint": endpoint, "params": normalise_params(params)}
        if not isinstance(stored, dict) or any(stored.get(k) != v for k, v in expected.items()):
            return None
        response = stored.get("response")
        return response if isinstance(response, dict) else None

    def put(self, service: str, endpoint: str, params: Params, response: dict[str, Any]) -> None:
        record = {
            "format": FORMAT,
            "service": service,
            "endpoint": endpoint,
            "params": normalise_params(params),
            "response": response,
        }
        write_json(self.path(service, endpoint, params), record)

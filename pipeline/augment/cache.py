"""Content-addressed cache of rendered variants: re-runs reuse every variant whose inputs did not change.

The key hashes what determines the audio: the source's content (MIDI or audio bytes),
the recorded transforms, the patches and render settings a re-render uses, the mix
settings, the target loudness and CACHE_VERSION (bump it when the code that makes
variants changes what it makes). An entry is `<key>.wav` plus `<key>.json`
(measurements) and, for note-level variants, `<key>.mid`, written atomically.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.io.atomic import write_bytes, write_json

CACHE_VERSION = 2


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    wav: Path
    meta: dict[str, Any]
    mid: Path | None


class VariantCache:
    def __init__(self, root: Path):
        self.root = root

    def _base(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str) -> CacheEntry | None:
        base = self._base(key)
        wav, meta = base.with_suffix(".wav"), base.with_suffix(".json")
        if not (wav.is_file() and meta.is_file()):
            return None
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        mid = base.with_suffix(".mid")
        if data.get("has_midi") and not mid.is_file():
            return None
        return CacheEntry(wav, data, mid if data.get("has_midi") else None)

    def put(self, key: str, wav: bytes, meta: dict[str, Any], mid: bytes | None) -> CacheEntry:
        base = self._base(key)
        if mid is not None:
            write_bytes(base.with_suffix(".mid"), mid)
        write_bytes(base.with_suffix(".wav"), wav)
        write_json(base.with_suffix(".json"), {**meta, "has_midi": mid is not None})  # last: marks it complete
        entry = self.get(key)
        assert entry is not None
        return entry

"""Persistent cache of finished prompts, so a re-run asks no LLM anything.

One JSON file per clip prompt under params.prompts.cache_dir (kept across runs, not
a DVC output), named by a hash of everything the text depends on: the clip's id and
facts, the style, the seed and stage (every random choice derives from them), the
prompt params that shape the text, the backend and model, the examples file, and the
source of the modules that write and check text. The same key therefore always
holds the same bytes, and a cached run writes what an uncached run would. A file
that cannot be read or does not match its key is a miss.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipeline.io.atomic import dumps, write_json
from pipeline.records import Prompt

FORMAT = 1  # bump when the stored shape changes
# Modules whose code decides the text: a change to any of them invalidates the cache.
TEXT_MODULES = ("attributes.py", "vocab.py", "template.py", "validate.py", "chat.py", "writer.py")


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in TEXT_MODULES:
        h.update(name.encode() + b"\0" + (here / name).read_bytes() + b"\0")
    return h.hexdigest()


def cache_key(material: dict[str, Any]) -> str:
    return hashlib.sha256(dumps({"format": FORMAT, "code": code_fingerprint(), **material}).encode()).hexdigest()


class PromptCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str, clip_id: str) -> Prompt | None:
        try:
            stored = json.loads(self._path(key).read_text(encoding="utf-8"))
            if stored.get("key") != key:
                return None
            prompt = Prompt.model_validate(stored["prompt"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError, ValidationError):
            return None
        return prompt if prompt.id == clip_id else None

    def put(self, key: str, prompt: Prompt) -> None:
        write_json(self._path(key), {"format": FORMAT, "key": key, "prompt": prompt.model_dump(mode="json")})

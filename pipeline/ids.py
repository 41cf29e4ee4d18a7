"""Stable, readable ids and per-item seeds."""

from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def slug(text: str, max_len: int = 48) -> str:
    """Lower-case ASCII slug; never empty."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    s = _NON_ALNUM.sub("-", ascii_text.lower()).strip("-")
    return s[:max_len].rstrip("-") or "unknown"


def song_id(artist: str, title: str, sha256: str) -> str:
    """`artist__title__hash6`: readable, and distinct for different files of one title."""
    return f"{slug(artist)}__{slug(title)}__{sha256[:6]}"


def track_id(song: str, index: int) -> str:
    return f"{song}/t{index:02d}"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def item_seed(seed: int, stage: str, item: str) -> int:
    """A 64-bit seed derived from (global seed, stage, item id): order-independent."""
    digest = hashlib.sha256(f"{seed}:{stage}:{item}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def item_rng(seed: int, stage: str, item: str) -> np.random.Generator:
    return np.random.default_rng(item_seed(seed, stage, item))

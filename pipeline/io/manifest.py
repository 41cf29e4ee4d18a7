"""JSONL manifests of typed records: the data contract between stages.

One record per line, sorted by id, written atomically. Reading validates every
line against the record model and rejects unknown keys instead of dropping them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from pipeline.io.atomic import atomic_open
from pipeline.params import ConfigError
from pipeline.records import Failure, Record

R = TypeVar("R", bound=Record)


class ManifestError(ValueError):
    """A manifest line that does not match its record schema."""


class MissingManifest(ConfigError, FileNotFoundError):
    """An upstream stage has not run yet."""


def write_manifest(path: Path, records: Iterable[Record]) -> int:
    """Write records sorted by id; returns how many were written."""
    items = sorted(records, key=lambda r: r.id)
    dupes = sorted(i for i, n in Counter(r.id for r in items).items() if n > 1)
    if dupes:
        raise ManifestError(f"{path}: duplicate ids {dupes[:5]}")
    with atomic_open(path, "w") as fh:
        for rec in items:
            fh.write(rec.model_dump_json() + "\n")
    return len(items)


def read_manifest(path: Path, model: type[R]) -> Iterator[R]:
    """Yield validated records lazily; a bad line raises with its line number."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: manifest not found; run the upstream stage first (dvc repro)")
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield model.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValidationError) as exc:
                raise ManifestError(f"{path}:{lineno}: not a valid {model.__name__}: {exc}") from exc


def write_failures(path: Path, failures: Iterable[Failure]) -> int:
    """Failures are sorted by item id so reruns give identical files."""
    items = sorted(failures, key=lambda f: (f.id, f.reason))
    with atomic_open(path, "w") as fh:
        for f in items:
            fh.write(f.model_dump_json() + "\n")
    return len(items)

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

from pipeline.errors import ConfigError
from pipeline.io.atomic import atomic_open
from pipeline.records import Failure, Record

R = TypeVar("R", bound=Record)


class ManifestError(ValueError):
    """A manifest line that does not match its record schema."""


class MissingManifest(ConfigError, FileNotFoundError):
    """An upstream stage has not run yet."""


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err.get("loc", ())) or "record"
        return f"{where}: {err.get('msg', 'invalid')}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def check_manifest(path: Path, model: type[Record]) -> int:
    """Cheap whole-file check before a stage removes anything: every line is JSON
    (a truncated write shows here) and the first and last lines are valid records.
    Returns the number of records; raises MissingManifest or ManifestError (one line)."""
    path = Path(path)
    if not path.is_file():
        raise MissingManifest(f"{path}: manifest not found")
    ends: dict[int, str] = {}
    count = 0
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                json.loads(line)
            except json.JSONDecodeError as exc:
                raise ManifestError(f"{path}:{lineno}: not JSON ({exc.msg})") from None
            count += 1
            if count == 1:
                ends[lineno] = line
            last = (lineno, line)
    if count:
        ends[last[0]] = last[1]
    for lineno, line in ends.items():
        try:
            model.model_validate_json(line)
        except ValidationError as exc:
            raise ManifestError(f"{path}:{lineno}: not a valid {model.__name__} ({_first_error(exc)})") from None
    return count


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
        raise MissingManifest(f"{path}: manifest not found; run the upstream stage first (dvc repro)")
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

"""What every stage does around its own work: validate params, clear stale
outputs, write manifest/failures/summary atomically, print a short summary."""

from __future__ import annotations

import logging
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.io.atomic import write_json
from pipeline.io.manifest import write_failures, write_manifest
from pipeline.layout import EXTRA_OUTS, StageDir
from pipeline.params import ConfigError, Params, ParamsError, load_params
from pipeline.records import Failure, Record

log = logging.getLogger("stages")


@dataclass
class StageResult:
    records: Sequence[Record]
    failures: Sequence[Failure]
    summary: dict[str, Any]
    highlights: list[str] = field(default_factory=list)
    inputs: int = 0  # items the stage was given; 0 with no records means "nothing to do"


def _clear_outputs(out: StageDir) -> None:
    """Remove this stage's previous outputs so a manual run equals a `dvc repro` run."""
    for name in EXTRA_OUTS.get(out.name, ()):
        path = out.out(name)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for path in (out.manifest, out.failures, out.summary):
        path.unlink(missing_ok=True)


def run_stage(name: str, body: Callable[[Params, StageDir], StageResult], root: Path | None = None) -> int:
    """Run one stage; returns the exit code (0 ok, 1 nothing succeeded, 2 bad configuration)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    root = Path.cwd() if root is None else root
    try:
        params = load_params(root / "params.yaml")
    except ParamsError as exc:
        log.error("%s: stopped before any work.\n%s", name, exc)
        return 2
    out = StageDir(name, root)
    _clear_outputs(out)
    out.dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        result = body(params, out)
    except ConfigError as exc:
        log.error("%s: stopped: %s", name, exc)
        return 2
    write_manifest(out.manifest, result.records)
    write_failures(out.failures, result.failures)
    summary = {"stage": name, **result.summary, "failures": len(result.failures)}
    write_json(out.summary, summary)
    elapsed = time.perf_counter() - started
    log.info(
        "%s: %d written, %d failed in %.1f s -> %s",
        name,
        len(result.records),
        len(result.failures),
        elapsed,
        out.dir.relative_to(root),
    )
    for line in result.highlights:
        log.info("  %s", line)
    if result.failures:
        log.info(
            "  failures: %s (first: %s: %s)",
            out.failures.relative_to(root),
            result.failures[0].id,
            result.failures[0].reason,
        )
    if not result.records and result.inputs:
        log.error("%s: nothing succeeded; see %s", name, out.failures.relative_to(root))
        return 1
    return 0

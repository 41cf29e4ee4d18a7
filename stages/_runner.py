"""What every stage does around its own work: validate params and upstream
manifests before touching anything, clear stale outputs, remove what killed
workers left half-written, write manifest/failures/summary atomically, print a
short summary."""

from __future__ import annotations

import logging
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.io.atomic import sweep_temp, write_json
from pipeline.io.manifest import ManifestError, MissingManifest, check_manifest, write_failures, write_manifest
from pipeline.layout import EXTRA_OUTS, MODEL_OUTS, UPSTREAM, StageDir
from pipeline.params import Params, ParamsError, load_params
from pipeline.records import (
    Clip,
    Failure,
    MetadataSong,
    MixSong,
    Prompt,
    Record,
    RenderSong,
    Song,
    SplitSong,
    TagSong,
    Variant,
)

log = logging.getLogger("stages")


@dataclass
class StageResult:
    records: Sequence[Record]
    failures: Sequence[Failure]
    summary: dict[str, Any]
    highlights: list[str] = field(default_factory=list)
    inputs: int = 0  # items the stage was given; 0 with no records means "nothing to do"


# The record type of each manifest that another stage reads.
RECORDS: dict[str, type[Record]] = {
    "ingest": Song,
    "split": SplitSong,
    "render": RenderSong,
    "mix": MixSong,
    "tag": TagSong,
    "metadata": MetadataSong,
    "clip": Clip,
    "prompts": Prompt,
    "augment": Variant,
}


def _check_upstream(name: str, root: Path) -> None:
    """Every manifest this stage reads exists and is whole; raises ConfigError naming
    the stage to run first."""
    for up in UPSTREAM[name]:
        path = StageDir(up, root).manifest
        rel = path.relative_to(root)
        try:
            check_manifest(path, RECORDS[up])
        except MissingManifest:
            raise ConfigError(f"{rel} not found: run the {up} stage first (dvc repro {up})") from None
        except ManifestError as exc:
            detail = str(exc).replace(str(path), str(rel), 1)
            raise ConfigError(f"{detail}: re-run the {up} stage (dvc repro -f {up})") from None


def _sweep(out: StageDir) -> list[Path]:
    """Temp files that workers killed mid-write left (never part of an output)."""
    found = sweep_temp(out.dir)
    for name in MODEL_OUTS.get(out.name, ()):
        found += sweep_temp(out.model_out(name))
    return found


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


def run_stage(
    name: str,
    body: Callable[[Params, StageDir], StageResult],
    root: Path | None = None,
    check: Callable[[Params, Path], None] | None = None,
) -> int:
    """Run one stage; returns the exit code (0 ok, 1 nothing succeeded, 2 bad configuration).

    Params, upstream manifests and `check` (the stage's own input checks, raising
    ConfigError) all pass before this stage's previous outputs are removed, so a
    mistake costs nothing already produced.
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    root = Path.cwd() if root is None else root
    try:
        params = load_params(root / "params.yaml")
    except ParamsError as exc:
        log.error("%s: stopped before any work.\n%s", name, exc)
        return 2
    try:
        _check_upstream(name, root)
        if check is not None:
            check(params, root)
    except ConfigError as exc:
        log.error("%s: stopped before any work: %s", name, exc)
        return 2
    out = StageDir(name, root)
    _clear_outputs(out)
    out.dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        result = body(params, out)
    except (ConfigError, ManifestError) as exc:
        log.error("%s: stopped: %s", name, exc)
        return 2
    finally:
        leftovers = _sweep(out)
    if leftovers:
        log.warning(
            "%s: removed %d temp file(s) left by killed workers (e.g. %s)",
            name,
            len(leftovers),
            leftovers[0].relative_to(root),
        )
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

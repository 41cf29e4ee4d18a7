"""Augment benchmark: writes benchmarks/results/augment.json (a measurement, not a test).

Figures, on the clips of the default pipeline (data/clip and data/prompts must exist: `dvc repro prompts`):
- variants per second for each axis alone (cold cache, originals left out);
- the stage's cold run with the default params, and a re-run after changing one FX param
  (augment.fx.effects.reverb.levels.high.wet_level): its wall time relative to the cold run,
  with how many variants came from the cache.

Usage: python -m benchmarks.augment [--clips N] [--workers W]   (from the repository root)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import yaml

from pipeline.io.manifest import read_manifest, write_manifest
from pipeline.records import Clip, Prompt

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "augment.json"
AXES = ("key", "bpm", "fx", "timbre")


def _project(root: Path, clips: int | None) -> None:
    """A scratch root that sees the repository's clips (a subset) and their prompts."""
    for sub in ("audio", "midi"):
        (root / "data/clip").mkdir(parents=True, exist_ok=True)
        (root / "data/clip" / sub).symlink_to(REPO / "data/clip" / sub)
    chosen = list(read_manifest(REPO / "data/clip/manifest.jsonl", Clip))[:clips]
    ids = {c.id for c in chosen}
    write_manifest(root / "data/clip/manifest.jsonl", chosen)
    write_manifest(root / "data/prompts/manifest.jsonl",
                   [p for p in read_manifest(REPO / "data/prompts/manifest.jsonl", Prompt) if p.id in ids])  # fmt: skip


def _params(root: Path, workers: int, augment: dict) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["run"]["workers"] = workers
    for key, value in augment.items():
        node = params["augment"]
        *path, last = key.split(".")
        for part in path:
            node = node[part]
        node[last] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _run(root: Path) -> tuple[float, dict]:
    from stages.augment import main as augment_main

    start = time.perf_counter()
    assert augment_main(root=root) == 0
    return time.perf_counter() - start, json.loads((root / "data/augment/summary.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=None, help="first N clips of data/clip (default: all)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    results: dict = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                     "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
                     "workers": args.workers, "clips": args.clips or "all", "per_axis": {}}  # fmt: skip
    for axis in AXES:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            _project(root, args.clips)
            only = {f"{a}.enabled": a == axis for a in AXES}
            _params(root, args.workers, {**only, "include_originals": False})
            seconds, summary = _run(root)
            results["per_axis"][axis] = {
                "variants": summary["variants"], "seconds": round(seconds, 2),
                "variants_per_s": round(summary["variants"] / seconds, 3), "by_method": summary["by_method"],
            }  # fmt: skip
            print(axis, results["per_axis"][axis])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _project(root, args.clips)
        _params(root, args.workers, {})
        cold, cold_summary = _run(root)
        _params(root, args.workers, {"fx.effects.reverb.levels.high.wet_level": 0.5})
        warm, warm_summary = _run(root)
        results["default_run"] = {
            "cold_s": round(cold, 2), "items": cold_summary["items"], "variants": cold_summary["variants"],
            "hours": cold_summary["hours"], "rerun_after_fx_change_s": round(warm, 2),
            "rerun_relative_cost": round(warm / cold, 3), "rerun_cache_hits": warm_summary["cache_hits"],
            "rerun_recomputed": warm_summary["variants"] - warm_summary["cache_hits"],
        }  # fmt: skip
        print(results["default_run"])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()

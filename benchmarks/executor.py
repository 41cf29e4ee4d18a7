"""Executor benchmark: writes benchmarks/results/executor.json (a measurement, not a test).

One stage (render by default) on the embedded sample, run alternately with
`run.executor: local` and `run.executor: ray` (a local Ray instance started and shut
down by the stage, as under `dvc repro`), the same worker count; wall seconds of each
run, their medians, the ratio ray/local, and whether both wrote the same bytes.

Usage: python -m benchmarks.executor [--stage render] [--songs 8] [--workers 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.results_io import write_result
from stages._runner import run_stage

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "executor.json"
UPSTREAM = ("ingest", "split", "render", "mix", "tag", "metadata", "clip", "prompts", "augment")


def _params(root: Path, songs: int, workers: int, executor: str) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["ingest"]["sample"]["songs"] = songs
    params["run"].update(workers=workers, executor=executor, ray={"address": ""})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _stage(name: str, root: Path) -> float:
    module = __import__(f"stages.{name}", fromlist=[name])
    start = time.perf_counter()
    assert run_stage(name, getattr(module, name), root=root) == 0, name
    return time.perf_counter() - start


def _outputs(root: Path, stage: str) -> dict[str, bytes]:
    data = root / "data" / stage
    return {p.relative_to(data).as_posix(): p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stage", default="render", choices=UPSTREAM)
    ap.add_argument("--songs", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-executor-"))
    try:
        _params(root, args.songs, args.workers, "local")
        for name in UPSTREAM[: UPSTREAM.index(args.stage)]:
            _stage(name, root)
        seconds: dict[str, list[float]] = {"local": [], "ray": []}
        outputs: dict[str, dict[str, bytes]] = {}
        for _ in range(args.repeats):
            for executor in ("local", "ray"):
                _params(root, args.songs, args.workers, executor)
                seconds[executor].append(round(_stage(args.stage, root), 2))
                outputs[executor] = _outputs(root, args.stage)
        median = {k: round(statistics.median(v), 2) for k, v in seconds.items()}
        result = {
            "stage": args.stage,
            "songs": args.songs,
            "workers": args.workers,
            "items": sum(1 for k in outputs["local"] if k.endswith((".flac", ".wav"))),
            "seconds": seconds,
            "median_s": median,
            "ray_over_local": round(median["ray"] / median["local"], 3),
            "identical_outputs": outputs["local"] == outputs["ray"],
            "machine": {
                "cores": os.cpu_count(),
                "load_average_1min": round(os.getloadavg()[0], 2),
                "processor": platform.processor() or platform.machine(),
                "python": platform.python_version(),
            },
        }
        write_result(OUT, result)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

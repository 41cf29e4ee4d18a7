"""Whole-pipeline benchmark: writes benchmarks/results/pipeline.json (a measurement, not a test).

Copies the repository's tracked files into a scratch git repository (so every cache
is cold: DVC's, the metadata and prompt caches, augment's variant cache), then runs
the default pipeline one stage at a time with `dvc repro --single-item <stage>`, in
dvc.yaml's order, and records each stage's wall time, the total, and the machine's
cores. Environments must already be installed (`make setup` and the extra
environments): install time is excluded.

Usage: PATH=.venv/bin:$PATH python -m benchmarks.pipeline [--keep DIR]   (from the repository root)
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.results_io import write_result

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "pipeline.json"
ENVS = (".venv", ".venv-llm", ".venv-train")  # linked, not copied: installs are not part of the run


def _copy(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, check=True, capture_output=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for rel in filter(None, files):
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    for env in ENVS:
        if (REPO / env).exists():
            (dest / env).symlink_to(REPO / env)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    (dest / ".dvc" / "tmp").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["dvc", "config", "--local", "core.site_cache_dir", str(dest / ".dvc" / "tmp" / "site-cache")],
        cwd=dest, check=True,
    )  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="run in this folder and keep it (default: a temporary folder)")
    args = ap.parse_args()
    stages = list(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])
    root = args.keep or Path(tempfile.mkdtemp(prefix="m2f-pipeline-"))
    root.mkdir(parents=True, exist_ok=True)
    _copy(root)
    env = {**os.environ, "PATH": f"{root / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    times: dict[str, float] = {}
    started = time.perf_counter()
    for stage in stages:
        t0 = time.perf_counter()
        run = subprocess.run(["dvc", "repro", "--single-item", stage], cwd=root, env=env)
        times[stage] = round(time.perf_counter() - t0, 2)
        print(f"{stage}: {times[stage]:.1f} s", file=sys.stderr)
        if run.returncode != 0:
            print(f"{stage} failed (exit {run.returncode}); see {root}", file=sys.stderr)
            return run.returncode
    total = round(time.perf_counter() - started, 2)
    result = {
        "what": "wall time of each stage of the default `dvc repro` on the embedded sample (cold caches)",
        "stages_s": times,
        "total_s": total,
        "total_min": round(total / 60, 2),
        "target_min": 15,
        "cores": os.cpu_count(),
        "machine": platform.platform(),
        "python": platform.python_version(),
    }
    write_result(OUT, result)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

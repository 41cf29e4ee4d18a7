"""What every benchmark does with its figures and its stages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def write_result(path: Path, result: dict[str, Any]) -> None:
    """Write the figures as indented JSON (the file the README cites) and print them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def stage_seconds(name: str, root: Path) -> float:
    """Wall seconds of `python -m stages.<name>` in project `root`: its own process, as dvc repro runs
    it (in the benchmark's process, a plugin or SoundFont loaded by an earlier run would be reused)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", f"stages.{name}"], cwd=root, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{root}: stage {name} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start

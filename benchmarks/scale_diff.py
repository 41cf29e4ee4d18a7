"""Compare two scale benchmark runs (before and after a change) on the same corpus: writes JSON.

Both runs come from benchmarks/scale.py with the same --sizes and seed (the same generated
songs), each with its code on PYTHONPATH. Per stage: CPU seconds per audio-hour (user +
system of the stage's processes, which hold when other work shares the machine), the
ratio after/before, mix against render, and the Lakh clean_midi projection on one 16-core
machine from CPU seconds (scale.py's efficiency: 0.85 unless a run measured one).

Usage: python -m benchmarks.scale_diff BEFORE.json AFTER.json [--out benchmarks/results/scale_diff.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.scale import LAKH

REPO = Path(__file__).resolve().parents[1]
EFFICIENCY = 0.85


def per_stage(run: dict[str, Any]) -> dict[str, float]:
    """CPU seconds per audio-hour of each stage, at the run's largest size."""
    largest = run["sizes"][-1]
    return {
        s: f["cpu_seconds_per_audio_hour"] for s, f in largest["stages"].items() if f.get("cpu_seconds_per_audio_hour")
    }


def lakh_hours(cpu: dict[str, float], cores: int = 16) -> dict[str, Any]:
    by_stage = {s: round(c * LAKH["hours"] / (cores * EFFICIENCY) / 3600, 2) for s, c in cpu.items()}
    return {
        "by_stage": by_stage,
        "total": round(sum(by_stage.values()), 1),
        "dominant": max(by_stage, key=by_stage.get),
    }


def compare(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    b, a = per_stage(before), per_stage(after)
    both = [s for s in a if s in b]
    return {
        "what": "CPU seconds per audio-hour per stage, before and after, on the same generated Lakh-like songs",
        "songs": after["sizes"][-1]["songs"],
        "audio_hours": after["sizes"][-1]["audio_hours"],
        "cpu_s_per_audio_hour": {s: {"before": b[s], "after": a[s], "ratio": round(a[s] / b[s], 3)} for s in both},
        "mix_over_render": {"before": round(b["mix"] / b["render"], 3), "after": round(a["mix"] / a["render"], 3)}
        if {"mix", "render"} <= set(both)
        else None,
        "render_plus_mix": {"before": round(b["render"] + b["mix"], 1), "after": round(a["render"] + a["mix"], 1)}
        if {"mix", "render"} <= set(both)
        else None,
        "disk_gb_per_audio_hour": {
            s: {
                "before": before["sizes"][-1]["stages"][s]["disk_gb_per_audio_hour"],
                "after": after["sizes"][-1]["stages"][s]["disk_gb_per_audio_hour"],
            }
            for s in both
        },
        "lakh_16_cores_hours_from_cpu": {
            "before": lakh_hours({s: b[s] for s in both}),
            "after": lakh_hours({s: a[s] for s in both}),
        },
        "basis": f"{LAKH['hours']:g} audio-hours; parallel efficiency {EFFICIENCY}",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "scale_diff.json")
    args = ap.parse_args()
    result = compare(json.loads(args.before.read_text()), json.loads(args.after.read_text()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Recordings benchmark: writes benchmarks/results/recordings.json (a measurement, not a test).

The `recordings` stage on a folder of produced music no one here made, unlabelled: how many files
decode, the seconds it spends per audio hour, and how often the estimators are sure enough to state
a key or a BPM at the default thresholds (with the spread of their confidences). There is no truth
here: the figures say how much a person will have to label, not whether the estimates are right.

Usage:
  PATH=.venv/bin:$PATH python -m benchmarks.recordings --audio DIR [DIR ...] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

import numpy as np
import yaml

from benchmarks.results_io import stage_seconds, write_result
from pipeline.io.manifest import read_manifest
from pipeline.records import RecordingSong

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "recordings.json"
AUDIO = (".wav", ".flac", ".ogg", ".opus", ".mp3")


def _quantiles(values: list[float]) -> list[float] | None:
    return [round(float(q), 3) for q in np.quantile(values, [0.1, 0.5, 0.9])] if values else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--audio", nargs="+", required=True, help="folders of produced music")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "rec"
        for d in args.audio:
            for p in sorted(Path(d).rglob("*")):
                if p.suffix.lower() in AUDIO and p.is_file():
                    dest = folder / Path(d).name / p.relative_to(d)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(p, dest)
        params = yaml.safe_load((REPO / "params.yaml").read_text())
        params["run"]["workers"] = args.workers
        params["recordings"]["path"] = "rec"
        params["recordings"]["extensions"] = list(AUDIO)
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        seconds = stage_seconds("recordings", root)
        songs = list(read_manifest(root / "data/recordings/manifest.jsonl", RecordingSong))
        summary = json.loads((root / "data/recordings/summary.json").read_text())
        files = sum(1 for p in folder.rglob("*") if p.is_file())
    hours = sum(s.duration_s for s in songs) / 3600
    write_result(OUT, {
        "what": "benchmarks.recordings: the recordings stage on unlabelled produced music (default thresholds)",
        "audio": [str(Path(d)) for d in args.audio],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {args.workers} workers",
        "files": files,
        "recordings": len(songs),
        "failures": summary["failures"],
        "by_format": summary["by_format"],
        "audio_hours": round(hours, 3),
        "seconds": round(seconds, 1),
        "seconds_per_audio_hour": round(seconds / hours, 1) if hours else None,
        "key_stated": sum(s.key is not None for s in songs),
        "bpm_stated": sum(s.bpm is not None for s in songs),
        "key_strength_p10_p50_p90": _quantiles([s.estimates.key_strength for s in songs
                                                 if s.estimates.key_strength is not None]),
        "beat_confidence_p10_p50_p90": _quantiles([s.estimates.bpm_confidence for s in songs
                                                    if s.estimates.bpm_confidence is not None]),
    })  # fmt: skip


if __name__ == "__main__":
    main()

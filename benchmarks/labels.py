"""Label audit on several corpora: writes benchmarks/results/labels.json (a measurement, not a test).

Runs ingest -> clip in a scratch project per corpus, with the repository's params
(only the source changed), and records the clip stage's label counts and, where
the corpus has ground truth, its scores against it:
- clean: the embedded sample (written by this project: it agrees with itself);
- messy: the generated set of real MIDI's flaws (`ingest.sample.set: messy`), with truth per span;
- bach: music21's Bach chorales, keys known from the scores' own key and mode;
- real: third-party General MIDI songs nobody here wrote, e.g. Debian's `openttd-openmsx`
  and `planetblupi-music-midi` (`apt-get install openttd-openmsx planetblupi-music-midi`); no truth,
  so agreement between independent estimates is reported.

Usage: PATH=.venv/bin:$PATH python -m benchmarks.labels [--corpus clean messy bach real]
       [--real-dir DIR ...] [--songs N] [--limit N] [--keep DIR [--from-stage clip]]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "labels.json"
STAGES = ("ingest", "split", "render", "mix", "tag", "metadata", "clip")
REAL_DIRS = ("/usr/share/games/openttd/baseset/openmsx", "/usr/share/planetblupi/music")


def _params(root: Path, ingest: dict[str, Any]) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["ingest"].update(ingest)
    params["metadata"]["cache_dir"] = str(root / "cache")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _real_folder(root: Path, dirs: list[str]) -> Path:
    """The real MIDI files as <Artist>/<Title>.mid under one folder (the `dir` source's layout)."""
    folder = root / "real"
    for d in dirs:
        src = Path(d)
        files = sorted(p for p in src.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
        for p in files:
            dest = folder / src.name / p.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, dest)
    if not folder.is_dir():
        raise SystemExit(f"no MIDI files under {dirs}: apt-get install openttd-openmsx planetblupi-music-midi")
    return folder


def run_corpus(name: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:

    root.mkdir(parents=True, exist_ok=True)
    if name == "clean":
        _params(root, {"source": "sample", "sample": {"songs": args.songs}})
    elif name == "messy":
        _params(root, {"source": "sample", "sample": {"songs": args.songs, "set": "messy"}})
    elif name == "bach":
        _params(root, {"source": "music21", "music21": {"composer": "bach", "works": [], "limit": args.songs,
                                                          "programs": [40, 40, 41, 42]}})  # fmt: skip
    else:
        _params(root, {"source": "dir", "path": str(_real_folder(root, args.real_dir)), "limit": args.limit})
    started = time.monotonic()
    for stage in STAGES[STAGES.index(args.from_stage) :]:
        module = __import__(f"stages.{stage}", fromlist=[stage])
        code = module.main(root=root)
        if code != 0:
            return {"failed_stage": stage, "exit": code}
    clip = json.loads((root / "data" / "clip" / "summary.json").read_text())
    tag = json.loads((root / "data" / "tag" / "summary.json").read_text())
    ingest = json.loads((root / "data" / "ingest" / "summary.json").read_text())
    return {
        "songs": ingest["songs"],
        "minutes_of_midi": round(ingest["total_duration_s"] / 60, 1),
        "clips": clip["clips"],
        "labels": clip["labels"],
        "labels_vs_truth": clip["labels_vs_truth"],
        "song_level": {k: tag[k] for k in ("key_accuracy", "key_relations", "key_signatures", "tempo_acc1")},
        "wall_s": round(time.monotonic() - started, 1),
        "stages_run": list(STAGES[STAGES.index(args.from_stage) :]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", nargs="+", default=["clean", "messy", "bach", "real"])
    ap.add_argument("--real-dir", nargs="+", default=list(REAL_DIRS))
    ap.add_argument("--songs", type=int, default=24, help="songs of the generated sets and Bach chorales")
    ap.add_argument("--limit", type=int, default=None, help="at most this many real files (first by path)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the scratch projects here")
    ap.add_argument("--from-stage", choices=STAGES, default="ingest",
                    help="re-run from this stage in the --keep projects (earlier outputs reused)")  # fmt: skip
    args = ap.parse_args()
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    base = args.keep or Path(tempfile.mkdtemp(prefix="labels-bench-"))
    try:
        for name in args.corpus:
            results[name] = run_corpus(name, base / name, args)
            results[name]["cores"] = os.cpu_count()
            OUT.parent.mkdir(parents=True, exist_ok=True)
            OUT.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
            print(name, json.dumps(results[name], indent=2))
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Stereo placement benchmark: writes benchmarks/results/placement.json (a measurement, not a test).

The same third-party MIDI rendered and mixed twice by the `render` and `mix` stages, with
`render.placement.mode: midi` (MIDI pan only: a song without pan renders every part in the centre)
and `auto` (the default: such songs get family positions). Per song group: how many songs pan their
parts themselves, and the median channel correlation and side share of the mixes (the timbre
descriptors' image measures, pipeline/analysis/timbre.py) under each mode. Songs the authors placed
are the same under both modes: their image is what produced MIDI arrangements do, next to ours.

Usage:
  PATH=.venv/bin:$PATH python -m benchmarks.placement --midi DIR [DIR ...] [--workers 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

from benchmarks.results_io import stage_seconds, write_result
from benchmarks.sound import _midi_folder
from pipeline.analysis.timbre import timbre_features
from pipeline.io.manifest import read_manifest
from pipeline.records import MixSong

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "placement.json"


def _mixes(root: Path, midi: Path, mode: str, workers: int) -> dict[str, dict]:
    """ingest -> split -> render -> mix with the given placement mode; per song: its stems' pan sources
    and its mix's image."""
    root.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["run"]["workers"] = workers
    params["ingest"]["source"], params["ingest"]["path"] = "dir", str(midi)
    params["render"]["placement"]["mode"] = mode
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for name in ("ingest", "split", "render", "mix"):
        stage_seconds(name, root)
    out = {}
    for song in read_manifest(root / "data/mix/manifest.jsonl", MixSong):
        x, sr = sf.read(str(root / song.mix), dtype="float32")
        f = timbre_features(x, sr)
        out[song.id] = {
            "sources": sorted({s.pan_source for s in song.stems}),
            "parts": len(song.stems),
            "correlation": f.channel_correlation,
            "side_share": f.side_share,
        }
    return out


def _median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 4) if values else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--midi", nargs="+", required=True, help="folders of third-party MIDI files")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="scratch folder to keep (default: a temporary one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = args.keep or Path(tmp)
        midi = _midi_folder(scratch, args.midi, None)
        runs = {mode: _mixes(scratch / f"run-{mode}", midi, mode, args.workers) for mode in ("midi", "auto")}
    both = sorted(set(runs["midi"]) & set(runs["auto"]))
    placed = [s for s in both if runs["auto"][s]["sources"] == ["midi"]]
    unplaced = [s for s in both if "family" in runs["auto"][s]["sources"]]

    def group(ids: list[str]) -> dict:
        return {
            "songs": len(ids),
            "parts": sum(runs["auto"][s]["parts"] for s in ids),
            **{
                f"{measure}_median_{mode}": _median([runs[mode][s][measure] for s in ids])
                for measure in ("correlation", "side_share")
                for mode in ("midi", "auto")
            },
        }

    write_result(OUT, {
        "what": "benchmarks.placement: mixes of the same MIDI with render.placement.mode midi vs auto; "
                "image = timbre descriptors' channel_correlation and side_share of each mix",
        "midi": [str(Path(d)) for d in args.midi],
        "machine": f"{platform.machine()}, {args.workers} workers",
        "songs_the_midi_places": group(placed),
        "songs_placed_by_family": group(unplaced),
    })  # fmt: skip


if __name__ == "__main__":
    main()

"""Render benchmark: writes benchmarks/results/render.json (a measurement, not a test).

Figures, on the embedded sample:
- real-time factor of each backend with one worker (audio seconds per wall second);
- the stage's per-track overhead over the bare synth call on the same tracks (a ratio);
- the render stage's throughput with 1 and 2 workers.

Usage: python -m benchmarks.render [--songs N] [--vst3 PATH_TO_INSTRUMENT.vst3]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from benchmarks.results_io import write_result
from pipeline.io.manifest import read_manifest
from pipeline.params import PatchSpec, load_params
from pipeline.records import RenderSong, SplitSong
from pipeline.render.events import instrument_events
from pipeline.render.job import DRUM_CHANNEL, RenderJob, load_instrument, make_backend, render_track
from pipeline.render.patches import choose_patch

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "render.json"


def _project(tmp: Path, songs: int, workers: int) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["ingest"]["sample"]["songs"] = songs
    params["run"]["workers"] = workers
    (tmp / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp


def _stage(name: str, root: Path) -> float:
    module = __import__(f"stages.{name}", fromlist=[name])
    start = time.perf_counter()
    assert module.main(root=root) == 0, name
    return time.perf_counter() - start


def _bare_seconds(root: Path, tracks, params) -> float:
    """The synth alone: events in, float samples out, nothing written."""
    start = time.perf_counter()
    for t in tracks:
        choice = choose_patch(params.render, t, params.run.seed)
        backend = make_backend(params.render, choice.patch, choice.rule, t.program, t.is_drum)
        events = instrument_events(load_instrument(root / t.midi), DRUM_CHANNEL if t.is_drum else 0)
        end = max(e.time_s for e in events) + params.render.tail_s
        for _ in backend.render(events, end, params.render.sample_rate, round(params.render.chunk_s * 44100)):
            pass
    return time.perf_counter() - start


def _pretty_midi_seconds(root: Path, tracks) -> float:
    """pretty_midi's own FluidSynth call (16-bit, one synth per call), for comparison."""
    start = time.perf_counter()
    for t in tracks:
        load_instrument(root / t.midi).fluidsynth(fs=44100)
    return time.perf_counter() - start


def _vst3_rtf(plugin: str, root: Path, tracks, params) -> dict:
    spec = PatchSpec(backend="vst3", plugin=plugin)
    patches = {**params.render.patches, "bench-vst3": spec}
    rules = [r.model_copy(update={"patches": ["bench-vst3"]}) for r in params.render.rules]
    rp = params.render.model_copy(update={"patches": patches, "rules": rules})
    out = root / "vst3-bench"
    start = time.perf_counter()
    seconds = sum(render_track(RenderJob(t, root, out, rp, params.run.seed)).duration_s for t in tracks)
    wall = time.perf_counter() - start
    return {
        "plugin": plugin,
        "audio_seconds": round(seconds, 2),
        "wall_s": round(wall, 3),
        "rtf": round(seconds / wall, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--songs", type=int, default=24, help="embedded sample songs for the throughput figures")
    ap.add_argument("--rtf-songs", type=int, default=4, help="songs whose tracks measure RTF and overhead")
    ap.add_argument("--vst3", help="a VST3 instrument to measure (none is packaged for Debian)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="render-bench-"))
    try:
        root = _project(tmp, args.songs, 1)
        _stage("ingest", root)
        _stage("split", root)
        params = load_params(root / "params.yaml")
        songs = list(read_manifest(root / "data/split/manifest.jsonl", SplitSong))
        tracks = [t for s in songs[: args.rtf_songs] for t in s.tracks]

        # Per-track stage work (patch choice, MIDI load, events, render, FLAC write, trim) vs the bare synth.
        out = root / "rtf-bench"
        start = time.perf_counter()
        rendered = [render_track(RenderJob(t, root, out, params.render, params.run.seed)) for t in tracks]
        stage_s = time.perf_counter() - start
        audio_s = sum(r.duration_s for r in rendered)
        bare_s = _bare_seconds(root, tracks, params)
        pm_s = _pretty_midi_seconds(root, tracks)

        throughput = {}
        for workers in (1, 2):
            _project(root, args.songs, workers)
            wall = _stage("render", root)
            seconds = sum(
                t.duration_s for s in read_manifest(root / "data/render/manifest.jsonl", RenderSong) for t in s.tracks
            )
            throughput[f"workers_{workers}"] = {"wall_s": round(wall, 2), "audio_seconds": round(seconds, 1),
                                                "audio_s_per_wall_s": round(seconds / wall, 1)}  # fmt: skip
        result = {
            "machine": {
                "cores": os.cpu_count(),
                "processor": platform.processor() or platform.machine(),
                "python": platform.python_version(),
            },
            "sample": {"songs": args.songs, "rtf_tracks": len(tracks), "rtf_audio_seconds": round(audio_s, 1)},
            "rtf_one_worker": {
                "soundfont": round(audio_s / stage_s, 1),
                "vst3": _vst3_rtf(args.vst3, root, tracks, params)
                if args.vst3
                else "not measured: no VST3 instrument is installed (pass --vst3 PATH)",
            },
            "overhead_vs_bare_synth": {
                "ratio": round(stage_s / bare_s, 3),
                "stage_s": round(stage_s, 3),
                "bare_synth_s": round(bare_s, 3),
                "note": "stage = patch choice + MIDI load + render + 24-bit FLAC write + tail trim, per track; "
                "bare = the same FluidSynth float render into memory",
            },
            "pretty_midi_fluidsynth_s": round(pm_s, 3),
            "throughput": throughput,
            "speedup_2_workers": round(throughput["workers_1"]["wall_s"] / throughput["workers_2"]["wall_s"], 2),
        }
        write_result(OUT, result)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()

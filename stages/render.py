"""Stage `render`: every split track through its instrument patch to a stereo FLAC stem.

Reads params `run`, `render` and data/split/manifest.jsonl; writes
data/render/{manifest,failures}.jsonl, audio/<song_id>/tNN.flac and summary.json.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from pipeline.io.manifest import read_manifest
from pipeline.layout import StageDir
from pipeline.parallel import map_items
from pipeline.params import Params
from pipeline.records import Failure, RenderedTrack, RenderSong, SplitSong
from pipeline.render.job import RenderJob, check_patches, render_track
from pipeline.render.patches import sounds_per_family
from pipeline.render.placement import place_song
from pipeline.render.soundfonts import soundfont_licences
from stages._runner import StageResult, run_stage


def render(params: Params, out: StageDir) -> StageResult:
    songs = list(read_manifest(StageDir("split", out.root).manifest, SplitSong))
    unreproducible = check_patches(params.render, checks_dir(out.root))  # checked before clearing: cached
    jobs = [
        (t.id, RenderJob(t, out.root, out.out("audio"), params.render, params.run.seed, unreproducible, spots[t.id]))
        for s in songs
        for spots in [place_song(params.render.placement, s.tracks, params.run.seed)]
        for t in s.tracks
    ]
    # Plugins are native code: render in worker processes even with one worker, so a crash fails one track.
    outcomes = map_items(render_track, jobs, params.run, desc="render: tracks", unit="track", isolate=True)
    done: dict[str, RenderedTrack] = {o.item_id: o.value for o in outcomes if o.value is not None}
    failures = [Failure(id=o.item_id, stage="render", reason=o.error or "") for o in outcomes if not o.ok]

    records = []
    for s in songs:
        tracks = [done[t.id] for t in s.tracks if t.id in done]
        if not tracks:
            failures.append(Failure(id=s.id, stage="render", reason=f"all {len(s.tracks)} tracks failed to render"))
            continue
        records.append(RenderSong(id=s.id, artist=s.artist, title=s.title, duration_s=s.duration_s,
                                  sample_rate=params.render.sample_rate, tracks=tracks))  # fmt: skip
    rendered = [t for r in records for t in r.tracks]
    summary = {
        "songs": len(records),
        "tracks_rendered": len(rendered),
        "track_failures": sum(1 for f in failures if "/" in f.id),
        "audio_seconds": round(sum(t.duration_s for t in rendered), 3),
        "by_backend": dict(sorted(Counter(t.backend for t in rendered).items())),
        "by_patch": dict(sorted(Counter(t.patch for t in rendered).items())),
        "render_gain_adjusted": sum(t.render_gain_db != 0 for t in rendered),
        "preset_fallbacks": sum(t.fallback is not None for t in rendered),
        "placement": dict(sorted(Counter(t.pan_source for t in rendered).items())),
        "soundfonts": soundfont_licences(params.render, rendered),
        "sounds_per_family": sounds_per_family(params.render),
    }
    highlights = [f"{len(rendered)} stems, {summary['audio_seconds'] / 60:.1f} min of audio from {len(records)} songs"]
    varying = sum(t.patch in unreproducible for t in rendered)
    if unreproducible:  # absent when every patch is reproducible, so the default summary keeps its bytes
        summary["not_reproducible"] = {"patches": sorted(unreproducible), "tracks": varying}
        highlights.append(
            f"{varying} stems from plugins whose output varies between runs ({', '.join(sorted(unreproducible))}): "
            "these stems are not byte-reproducible"
        )
    return StageResult(records, failures, summary, highlights, inputs=len(jobs))


def checks_dir(root: Path) -> Path:
    """Where passed VST3 patch checks are recorded (ignored by git, outside DVC's outputs)."""
    return root / ".cache" / "vst3-checks"


def check(params: Params, root: Path) -> None:
    """The instrument map, before the previous outputs are removed: a wrong map costs nothing."""
    check_patches(params.render, checks_dir(root))


def main(root: Path | None = None) -> int:
    return run_stage("render", render, root=root, check=check)


if __name__ == "__main__":
    sys.exit(main())

"""Stage `split`: one MIDI file per instrument track, described for later stages.

Reads params `run`, `split` and data/ingest/manifest.jsonl; writes
data/split/{manifest,failures}.jsonl, midi/<song_id>/tNN.mid and summary.json.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from pipeline.io.manifest import read_manifest
from pipeline.layout import StageDir
from pipeline.midi.humanize import Humanize
from pipeline.midi.load import MidiLimits
from pipeline.midi.split import SplitOptions, split_job
from pipeline.parallel import map_items
from pipeline.params import Params
from pipeline.records import Failure, Song, SplitSong
from stages._runner import StageResult, run_stage


def split(params: Params, out: StageDir) -> StageResult:
    p = params.split
    songs = list(read_manifest(StageDir("ingest", out.root).manifest, Song))
    opts = SplitOptions(
        limits=MidiLimits(p.min_tempo_bpm, p.max_tempo_bpm, p.max_duration_s),
        min_notes_per_track=p.min_notes_per_track,
        legato_overlap_s=p.legato_overlap_s,
        humanize=Humanize(p.humanize.timing_ms, p.humanize.velocity, p.humanize.length),
        seed=params.run.seed,
    )
    jobs = [(s.id, (s, out.root, out.out("midi"), opts)) for s in songs]
    outcomes = map_items(split_job, jobs, params.run, desc="split: tracks", unit="song")
    origin = {s.id: s.origin for s in songs}
    failures = [
        Failure(id=o.item_id, stage="split", reason=o.error or "", origin=origin[o.item_id])
        for o in outcomes
        if not o.ok
    ]
    done: list[SplitSong] = [o.value for o in outcomes if o.value is not None]

    tracks = [t for s in done for t in s.tracks]
    families = Counter(t.family for t in tracks)
    summary = {
        "songs": len(done),
        "tracks": len(tracks),
        "drum_tracks": sum(t.is_drum for t in tracks),
        "monophonic_tracks": sum(t.polyphony == "monophonic" for t in tracks),
        "tracks_by_family": dict(sorted(families.items())),
        "dropped_empty_tracks": sum(s.dropped_empty_tracks for s in done),
        "dropped_zero_length_notes": sum(s.dropped_zero_length_notes for s in done),
        "songs_with_tempo_changes": sum(len(s.tempo_map) > 1 for s in done),
        "total_duration_s": round(sum(s.duration_s for s in done), 3),
    }
    if opts.humanize.active:  # absent when off, so the default summary keeps its bytes
        summary["humanize"] = p.humanize.model_dump()
    highlights = [
        f"{len(tracks)} tracks from {len(done)} songs ({summary['drum_tracks']} drum, "
        f"{summary['monophonic_tracks']} monophonic)",
        "families: " + ", ".join(f"{k} {v}" for k, v in sorted(families.items())),
    ]
    return StageResult(done, failures, summary, highlights, inputs=len(songs))


def main(root: Path | None = None) -> int:
    return run_stage("split", split, root=root)


if __name__ == "__main__":
    sys.exit(main())

"""Stage `ingest`: find the source MIDI files, drop duplicates, copy the rest in.

Reads params `run`, `ingest`; writes data/ingest/{manifest,failures,duplicates}.jsonl,
midi/<song_id>.mid, truth/<song_id>.json (embedded sample only) and summary.json.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from pipeline.ingest.dedupe import dedupe, probe
from pipeline.ingest.sources import check_source, discover
from pipeline.io.atomic import write_bytes, write_json
from pipeline.io.manifest import write_manifest
from pipeline.layout import StageDir
from pipeline.parallel import map_items
from pipeline.params import Params
from pipeline.records import Failure, Song
from stages._runner import StageResult, run_stage


def ingest(params: Params, out: StageDir) -> StageResult:
    p = params.ingest
    candidates = discover(p, params.run.seed, out.root)
    jobs = [(c.origin, (c, p.music21.programs)) for c in candidates]
    outcomes = map_items(probe, jobs, params.run, desc="ingest: reading MIDI", unit="file")
    failures = [
        Failure(id=o.item_id, stage="ingest", reason=o.error or "", origin=o.item_id) for o in outcomes if not o.ok
    ]
    kept, duplicates = dedupe([o.value for o in outcomes if o.value], p.dedupe.lakh_versions, p.dedupe.same_notes)

    songs = []
    for pr in kept:
        c = pr.candidate
        midi = out.out("midi") / f"{pr.id}.mid"
        write_bytes(midi, pr.read_bytes())
        truth = None
        if c.truth is not None:
            truth_path = out.out("truth") / f"{pr.id}.json"
            write_json(truth_path, {"song_id": pr.id, **c.truth})
            truth = out.rel(truth_path)
        songs.append(
            Song(
                id=pr.id,
                artist=c.artist,
                title=c.title,
                source=c.source,
                origin=c.origin,
                midi=out.rel(midi),
                sha256=pr.sha256,
                n_instruments=pr.n_instruments,
                n_notes=pr.n_notes,
                duration_s=pr.duration_s,
                truth=truth,
            )
        )
    write_manifest(out.out("duplicates.jsonl"), duplicates)

    reasons = Counter(d.reason for d in duplicates)
    summary = {
        "source": p.source,
        "candidates": len(candidates),
        "songs": len(songs),
        "duplicates_dropped": len(duplicates),
        "duplicates_by_reason": dict(sorted(reasons.items())),
        "total_duration_s": round(sum(s.duration_s for s in songs), 3),
        "instruments_per_song_mean": round(sum(s.n_instruments for s in songs) / max(1, len(songs)), 3),
    }
    highlights = [f"source {p.source}: {len(candidates)} files, {len(songs)} songs kept"]
    highlights += [f"dropped {d.id}: {d.reason} ({d.detail})" for d in duplicates[:10]]
    if len(duplicates) > 10:
        highlights.append(f"... and {len(duplicates) - 10} more in {out.rel(out.out('duplicates.jsonl'))}")
    return StageResult(songs, failures, summary, highlights, inputs=len(candidates))


def main(root: Path | None = None) -> int:
    return run_stage("ingest", ingest, check=lambda params, root: check_source(params.ingest, root), root=root)


if __name__ == "__main__":
    sys.exit(main())

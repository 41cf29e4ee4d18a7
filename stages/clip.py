"""Stage `clip`: cut every song's mix (and solo stems) into bar-aligned training clips.

Reads params `run`, `clip`, `tag.timbre` and the split, render, mix, tag and
metadata manifests; writes data/clip/audio/<song>/cNNN[-tNN].{wav,json},
data/clip/midi/<song>/cNNN.mid, manifest, failures and summary.json.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from pipeline.analysis.timbre import TimbreThresholds
from pipeline.clips.audit import label_counts, truth_scores, write_audit
from pipeline.clips.cut import ClipJob, cut_song
from pipeline.clips.splits import SPLITS, assign_splits
from pipeline.clips.truth import truth_of_clips
from pipeline.io.manifest import read_manifest
from pipeline.layout import StageDir
from pipeline.parallel import map_items
from pipeline.params import ConfigError, Params
from pipeline.records import Clip, Failure, MetadataSong, MixSong, RenderSong, Song, SplitSong, TagSong
from stages._runner import StageResult, run_stage


def clip(params: Params, out: StageDir) -> StageResult:
    p = params.clip
    stages = ("ingest", "split", "render", "mix", "tag", "metadata")
    upstream = {name: StageDir(name, out.root).manifest for name in stages}
    tags = list(read_manifest(upstream["tag"], TagSong))
    mixes = {m.id: m for m in read_manifest(upstream["mix"], MixSong)}
    splits = {s.id: s for s in read_manifest(upstream["split"], SplitSong)}
    metadata = {m.id: m for m in read_manifest(upstream["metadata"], MetadataSong)}
    alternatives = {t.id: t.alternatives for r in read_manifest(upstream["render"], RenderSong) for t in r.tracks}
    try:
        thresholds = TimbreThresholds(**params.tag.timbre.model_dump())
    except ValueError as exc:
        raise ConfigError(f"params tag.timbre: {exc}") from None
    split_of = assign_splits([t.id for t in tags], p.splits.model_dump(), params.run.seed)
    jobs = [
        (t.id, ClipJob(mixes[t.id], splits[t.id], t, metadata.get(t.id), split_of[t.id], out.root,
                       out.out("audio"), out.out("midi"), p, thresholds))
        for t in tags
    ]  # fmt: skip
    # The corpus-wide alternatives table goes to each worker once (context), not into every job.
    outcomes = map_items(cut_song, jobs, params.run, desc="clip: songs", unit="song", context=alternatives)
    failures = [Failure(id=o.item_id, stage="clip", reason=o.error or "") for o in outcomes if not o.ok]
    songs = [o.value for o in outcomes if o.value is not None]
    clips: list[Clip] = [c for s in songs for c in s.clips]
    dropped = Counter(reason.split(":")[0] for s in songs for _, reason in s.dropped)
    summary = {
        "songs": len(songs),
        "clips": len(clips),
        "hours": round(sum(c.seconds_total for c in clips) / 3600, 4),
        "splits": {s: sum(c.split == s for c in clips) for s in SPLITS},
        "songs_per_split": {s: sum(v == s for k, v in split_of.items() if k in mixes) for s in SPLITS},
        "kinds": dict(sorted(Counter(c.kind for c in clips).items())),
        "bars": dict(sorted(Counter(str(c.bars) for c in clips).items(), key=lambda kv: int(kv[0]))),
        "loopable": sum(c.loopable for c in clips),
        "padded": sum(c.padded_s > 0 for c in clips),
        "section_sources": dict(sorted(Counter(s.section_source for s in songs).items())),
        "sections": sum(s.sections for s in songs),
        "dropped": sum(dropped.values()),
        "dropped_reasons": dict(sorted(dropped.items())),
        "labels": label_counts(clips),
        "labels_vs_truth": truth_scores(clips, truth_of_clips(read_manifest(upstream["ingest"], Song), out.root)),
    }
    write_audit(out.out("audit"), clips)
    highlights = [
        f"{summary['clips']} clips ({summary['hours'] * 60:.1f} min) from {len(songs)} songs; "
        f"splits {summary['splits']}; {summary['dropped']} dropped {summary['dropped_reasons']}",
        f"labels: key on {summary['labels']['key_stated']}, BPM on {summary['labels']['bpm_stated']}, meter on "
        f"{summary['labels']['meter_stated']} of {len(clips)} clips; withheld keys {summary['labels']['key_withheld']}",
    ]
    if summary["labels_vs_truth"]:
        highlights.append(f"against the sample's truth: {summary['labels_vs_truth']}")
    return StageResult(clips, failures, summary, highlights, inputs=len(jobs))


def main(root: Path | None = None) -> int:
    return run_stage("clip", clip, root=root)


if __name__ == "__main__":
    sys.exit(main())

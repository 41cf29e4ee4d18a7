"""Stage `clip`: cut every song's mix (and solo stems) into bar-aligned training clips, and every
recording (stage `recordings`) into clips on its beat grid, or by time where the grid is unsure.

Reads params `run`, `clip`, `tag.timbre`, `mix`, `recordings` and the split, render, mix, tag,
metadata and recordings manifests; writes data/clip/audio/<song>/cNNN[-tNN].{wav,json},
data/clip/midi/<song>/cNNN.mid, manifest, failures and summary.json. Recordings are
optional: with no recordings manifest and no audio in recordings.path there are none.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from pipeline.clips.audit import label_counts, truth_scores, write_audit
from pipeline.clips.cut import ClipJob, cut_song
from pipeline.clips.splits import SPLITS, assign_splits
from pipeline.clips.truth import truth_of_clips
from pipeline.errors import ConfigError
from pipeline.io.manifest import ManifestError, MissingManifest, check_manifest, read_manifest
from pipeline.layout import StageDir
from pipeline.parallel import map_items
from pipeline.params import Params
from pipeline.recordings.clips import RecordingClipJob, cut_recording, recordings_summary
from pipeline.recordings.folder import audio_files
from pipeline.records import (
    Clip,
    Failure,
    MetadataSong,
    MixSong,
    RecordingSong,
    RenderSong,
    Song,
    SplitSong,
    TagSong,
    hours_by_source,
)
from stages._runner import StageResult, run_stage


def check(params: Params, root: Path) -> None:
    """The recordings manifest is whole, or absent with no recordings to cut (before anything is removed)."""
    path = StageDir("recordings", root).manifest
    rel = path.relative_to(root)
    try:
        check_manifest(path, RecordingSong)
    except MissingManifest:
        if audio_files(params.recordings, root):
            raise ConfigError(f"{rel} not found but {params.recordings.path} holds recordings: run the "
                              "recordings stage first (dvc repro recordings)") from None  # fmt: skip
    except ManifestError as exc:
        detail = str(exc).replace(str(path), str(rel), 1)
        raise ConfigError(f"{detail}: re-run the recordings stage (dvc repro -f recordings)") from None


def clip(params: Params, out: StageDir) -> StageResult:
    p = params.clip
    stages = ("ingest", "split", "render", "mix", "tag", "metadata")
    upstream = {name: StageDir(name, out.root).manifest for name in stages}
    tags = list(read_manifest(upstream["tag"], TagSong))
    mixes = {m.id: m for m in read_manifest(upstream["mix"], MixSong)}
    splits = {s.id: s for s in read_manifest(upstream["split"], SplitSong)}
    metadata = {m.id: m for m in read_manifest(upstream["metadata"], MetadataSong)}
    alternatives = {t.id: t.alternatives for r in read_manifest(upstream["render"], RenderSong) for t in r.tracks}
    thresholds = params.tag.timbre  # validated with params (opposites never both hold)
    split_of = assign_splits([t.id for t in tags], p.splits.model_dump(), params.run.seed)
    jobs = [
        (t.id, ClipJob(mixes[t.id], splits[t.id], t, metadata.get(t.id), split_of[t.id], out.root,
                       out.out("audio"), out.out("midi"), p, thresholds))
        for t in tags
    ]  # fmt: skip
    # The corpus-wide alternatives table goes to each worker once (context), not into every job.
    outcomes = map_items(cut_song, jobs, params.run, desc="clip: songs", unit="song", context=alternatives)
    rec_path = StageDir("recordings", out.root).manifest
    recorded = list(read_manifest(rec_path, RecordingSong)) if rec_path.exists() else []
    if recorded:  # split by recording, apart from the MIDI songs (whose splits stay as they were)
        rec_split = assign_splits([r.id for r in recorded], p.splits.model_dump(), params.run.seed)
        rec_jobs = [(r.id, RecordingClipJob(r, rec_split[r.id], out.root, out.out("audio"), p, params.recordings,
                                            params.mix, thresholds)) for r in recorded]  # fmt: skip
        outcomes += map_items(cut_recording, rec_jobs, params.run, desc="clip: recordings", unit="recording")
        split_of.update(rec_split)
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
        "hours_by_source": hours_by_source(clips),
        "recordings": recordings_summary(len(recorded), songs, clips),
        "kinds": dict(sorted(Counter(c.kind for c in clips).items())),
        "bars": dict(
            sorted(Counter(str(c.bars) for c in clips).items(), key=lambda kv: int(kv[0]) if kv[0] != "None" else 0)
        ),
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
    if recorded:
        r = summary["recordings"]
        lab = r["labels"]
        stated = f"bars on {r['bars_stated']}, key on {lab['key_stated']}, BPM on {lab['bpm_stated']}"
        highlights.append(f"recordings: {r['clips']} clips of {len(recorded)} recordings, cut {r['cut']}; {stated}")
    if summary["labels_vs_truth"]:
        highlights.append(f"against the sample's truth: {summary['labels_vs_truth']}")
    return StageResult(clips, failures, summary, highlights, inputs=len(jobs) + len(recorded))


def main(root: Path | None = None) -> int:
    return run_stage("clip", clip, root=root, check=check)


if __name__ == "__main__":
    sys.exit(main())

"""Stage `tag`: tempo, key, timbre and notation for every song, and how right they are.

Reads params `run`, `tag` and data/mix and data/split manifests; writes
data/tag/{manifest,failures}.jsonl and summary.json (accuracy per backend).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from pipeline.analysis.tag import TagJob, tag_song
from pipeline.analysis.tempo import plan_tempo
from pipeline.io.manifest import read_manifest
from pipeline.io.table import write_csv
from pipeline.layout import StageDir
from pipeline.parallel import map_items
from pipeline.params import Params
from pipeline.records import Failure, MixSong, SplitSong, TagSong
from stages._runner import StageResult, run_stage


def _share(values: list[bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def tag(params: Params, out: StageDir) -> StageResult:
    p = params.tag
    plan = plan_tempo(p)
    mixes = list(read_manifest(StageDir("mix", out.root).manifest, MixSong))
    splits = {s.id: s for s in read_manifest(StageDir("split", out.root).manifest, SplitSong)}
    thresholds = p.timbre  # validated with params (opposites never both hold)
    jobs = [(m.id, TagJob(m, splits[m.id], out.root, p, plan, thresholds)) for m in mixes]
    outcomes = map_items(tag_song, jobs, params.run, desc="tag: songs", unit="song")
    failures = [Failure(id=o.item_id, stage="tag", reason=o.error or "") for o in outcomes if not o.ok]
    done: list[TagSong] = [o.value for o in outcomes if o.value is not None]

    key_backend = f"essentia:{p.key.profile}"
    summary = {
        "songs": len(done),
        "label_policy": p.label_policy,
        "tempo_backend": plan.primary,
        "tempo_backends_measured": list(plan.measured),
        "tempo_fallback": plan.note,
        "tempo_acc1": {b: _share([s.tempo.acc1[b] for s in done]) for b in plan.measured},
        "tempo_acc2": {b: _share([s.tempo.acc2[b] for s in done]) for b in plan.measured},
        "key_accuracy": {key_backend: _share([s.key.relation == "exact" for s in done if s.key.relation])},
        "key_relations": {key_backend: dict(sorted(Counter(s.key.relation or "no-midi-key" for s in done).items()))},
        "midi_key_sources": dict(sorted(Counter(s.key.midi_source or "none" for s in done).items())),
        "key_signatures": dict(sorted(Counter(s.key.signature_relation or "none" for s in done).items())),
        "agreeing_songs": sum(s.agrees for s in done),
        "flagged": sum(s.flagged for s in done),
        "timbre_tags": dict(sorted(Counter(t for s in done for st in s.stems for t in st.timbre.tags).items())),
        "roles": dict(sorted(Counter(st.notation.role or "none" for s in done for st in s.stems).items())),
    }
    audit = out.out("audit")
    write_csv(audit / "keys.csv", [
        {"id": s.id, "notes": s.key.midi or "none", "audio": s.key.audio, "signature": s.key.signature or "none",
         "stated": s.key.label} for s in done
    ], ("id", "notes", "audio", "signature", "stated"))  # fmt: skip
    write_csv(audit / "tempo.csv", [
        {"id": s.id, "beat_bpm": s.tempo.midi_beat_bpm, "audio_bpm": s.tempo.audio_bpm[plan.primary],
         "backend": plan.primary} for s in done
    ], ("id", "beat_bpm", "audio_bpm", "backend"))  # fmt: skip
    highlights = [
        f"tempo ({plan.primary}) Acc1 {summary['tempo_acc1'][plan.primary]}, "
        f"Acc2 {summary['tempo_acc2'][plan.primary]}; key exact {summary['key_accuracy'][key_backend]} "
        f"({key_backend}); policy {p.label_policy}",
    ]
    if plan.note:
        highlights.append(plan.note)
    return StageResult(done, failures, summary, highlights, inputs=len(jobs))


def main(root: Path | None = None) -> int:
    return run_stage("tag", tag, root=root)


if __name__ == "__main__":
    sys.exit(main())

"""Stage `recordings`: audio files a person labels, as songs beside the rendered MIDI.

Reads params `run`, `recordings` and the folder recordings.path (audio files and the
labels file); writes data/recordings/{manifest,failures}.jsonl, audio/<song_id>/mix.flac
and summary.json. With no audio in the folder it writes empty outputs.

`python -m stages.recordings --draft-labels [PATH]` writes the labels file to edit
instead (default: recordings.labels): every audio file, the person's labels as they
are, empty key and bpm filled with estimates and marked `estimated`.
"""

from __future__ import annotations

import logging
import shutil
import sys
from collections import Counter
from pathlib import Path

from pipeline.layout import StageDir
from pipeline.parallel import map_items
from pipeline.params import ConfigError, Params, ParamsError, load_params
from pipeline.recordings.labels import LabelRow, read_labels, write_labels
from pipeline.recordings.song import Made, RecordingJob, draft_row, make_recording
from pipeline.records import ESTIMABLE_FIELDS, LABEL_FIELDS, Failure, RecordingSong
from stages._runner import StageResult, run_stage

log = logging.getLogger("stages")


def folder_of(params: Params, root: Path) -> Path:
    return root / params.recordings.path


def labels_path(params: Params, root: Path) -> Path:
    labels = Path(params.recordings.labels)
    return labels if labels.is_absolute() else folder_of(params, root) / labels


def audio_files(params: Params, root: Path) -> list[str]:
    """The folder's audio files, relative and '/'-separated, sorted; hidden files are skipped."""
    folder = folder_of(params, root)
    exts = set(params.recordings.extensions)
    found = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in exts]
    rel = [p.relative_to(folder).as_posix() for p in found]
    return sorted(r for r in rel if not any(part.startswith(".") for part in r.split("/")))


def check(params: Params, root: Path) -> None:
    """The folder exists and the labels file has a format this stage reads (before anything is removed)."""
    folder = folder_of(params, root)
    if not folder.is_dir():
        raise ConfigError(f"recordings.path: {params.recordings.path} is not a folder")
    if labels_path(params, root).suffix.lower() not in (".csv", ".jsonl"):
        raise ConfigError(f"recordings.labels must end in .csv or .jsonl: {params.recordings.labels}")


def _jobs(params: Params, root: Path, out_dir: Path, files: list[str], rows: dict[str, LabelRow]):
    folder = folder_of(params, root)
    return [(f, RecordingJob(f, folder, root, out_dir, rows.get(f), params.recordings)) for f in files]


def recordings(params: Params, out: StageDir) -> StageResult:
    root = out.root
    files = audio_files(params, root)
    labels_file = labels_path(params, root)
    labels = read_labels(labels_file)
    failures = [Failure(id=where, stage="recordings", reason=why) for where, why in labels.errors]
    on_disk = set(files)
    for name in sorted(set(labels.rows) - on_disk):
        failures.append(Failure(id=name, stage="recordings", reason=f"{labels_file.name} labels a file the folder "
                                f"does not hold ({params.recordings.path}/{name})"))  # fmt: skip
    unlabelled = [f for f in files if f not in labels.rows]
    outcomes = map_items(make_recording, _jobs(params, root, out.out("audio"), files, labels.rows), params.run,
                         desc="recordings: files", unit="file")  # fmt: skip
    records: list[RecordingSong] = []
    warnings = [{"id": f, "reason": f"no row in {labels_file.name}: estimates only"} for f in unlabelled]
    seen: dict[str, str] = {}
    for o in outcomes:
        if not o.ok or o.value is None:
            failures.append(Failure(id=o.item_id, stage="recordings", reason=o.error or ""))
            continue
        made: Made = o.value
        song = made.song
        if song.id in seen:
            failures.append(
                Failure(id=o.item_id, stage="recordings", reason=f"the same audio and labels as {seen[song.id]}")
            )
            continue
        seen[song.id] = o.item_id
        records.append(song)
        warnings += [{"id": o.item_id, "reason": w} for w in made.warnings]
    summary = {
        "recordings": len(records),
        "audio_hours": round(sum(r.duration_s for r in records) / 3600, 4),
        "by_format": dict(sorted(Counter(r.source_format for r in records).items())),
        "source_sample_rates": dict(sorted(Counter(str(r.source_sample_rate) for r in records).items())),
        "hand_labelled": {f: sum(f in r.hand for r in records) for f in LABEL_FIELDS},
        "estimated": {f: sum(f in r.estimated for r in records) for f in ESTIMABLE_FIELDS},
        "withheld": {f: sum(f in r.withheld for r in records) for f in ESTIMABLE_FIELDS},
        "unlabelled": len(unlabelled),
        "warnings": warnings,
    }
    highlights = []
    if records or files:
        keys, bpms = sum(r.key is not None for r in records), sum(r.bpm is not None for r in records)
        est = summary["estimated"]
        highlights.append(f"{len(records)} recordings, {summary['audio_hours'] * 60:.1f} min; key stated on {keys} "
                          f"({est['key']} estimated), BPM on {bpms} ({est['bpm']} estimated)")  # fmt: skip
    for w in warnings[:5]:
        highlights.append(f"warning: {w['id']}: {w['reason']}")
    return StageResult(records, failures, summary, highlights, inputs=len(files))


def draft_labels(root: Path, dest: Path | None = None) -> int:
    """Write the labels file to edit (see the module docstring); the previous one is kept as .bak."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        params = load_params(root / "params.yaml")
        check(params, root)
    except (ParamsError, ConfigError) as exc:
        log.error("recordings --draft-labels: %s", exc)
        return 2
    dest = dest or labels_path(params, root)
    if dest.suffix.lower() not in (".csv", ".jsonl"):
        log.error("recordings --draft-labels: the labels file must end in .csv or .jsonl: %s", dest)
        return 2
    files = audio_files(params, root)
    labels = read_labels(labels_path(params, root))
    for where, why in labels.errors:
        log.warning("  %s: %s (kept out of the draft; fix the row)", where, why)
    outcomes = map_items(draft_row, _jobs(params, root, root, files, labels.rows), params.run,
                         desc="recordings: estimating", unit="file")  # fmt: skip
    rows = [o.value for o in outcomes if o.ok and o.value is not None]
    for o in outcomes:
        if not o.ok:
            log.warning("  %s: %s (left out of the draft)", o.item_id, o.error)
    if dest.exists():
        shutil.copy2(dest, dest.with_name(dest.name + ".bak"))
    write_labels(dest, rows)
    estimated = sum(bool(r["estimated"]) for r in rows)
    log.info("recordings: draft labels for %d of %d files -> %s (%d with estimates to confirm)",
             len(rows), len(files), dest, estimated)  # fmt: skip
    return 0


def main(root: Path | None = None, argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path.cwd() if root is None else root
    if args and args[0] == "--draft-labels":
        return draft_labels(root, Path(args[1]) if len(args) > 1 else None)
    if args:
        print("usage: python -m stages.recordings [--draft-labels [PATH]]", file=sys.stderr)
        return 2
    return run_stage("recordings", recordings, root=root, check=check)


if __name__ == "__main__":
    sys.exit(main())

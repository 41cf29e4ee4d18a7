"""Stage `recordings`: audio files a person labels, as songs beside the rendered MIDI.

Reads params `run`, `recordings` and the folder recordings.path (audio files and the
labels file; a recording's parts in `<name>.stems/<instrument>.<ext>` beside it); writes
data/recordings/{manifest,failures}.jsonl, audio/<song_id>/mix.flac (and stems/<name>.flac)
and summary.json. With no audio in the folder it writes empty outputs.

`python -m stages.recordings --draft-labels [PATH]` writes the labels file to edit
instead (default: recordings.labels): every audio file, the person's labels as they
are, empty key and bpm filled with estimates, and empty genre and mood with the audio
tagger's drafts (recordings.tagger), all marked `estimated`.
`--labelstudio-export TASKS.json` / `--labelstudio-import EXPORT.json` carry the labels
file to and from Label Studio.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from collections import Counter
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.layout import StageDir
from pipeline.parallel import map_items
from pipeline.params import Params, ParamsError, load_params
from pipeline.recordings import folder as rec_folder
from pipeline.recordings.labels import LabelRow, read_labels, write_labels
from pipeline.recordings.labelstudio import export_tasks, import_tasks, label_config, write_tasks
from pipeline.recordings.song import Made, RecordingJob, draft_row, make_recording
from pipeline.recordings.tagger import TaggerError, run_tagger, with_tag_draft
from pipeline.records import ESTIMABLE_FIELDS, LABEL_FIELDS, Failure, RecordingSong
from stages._runner import StageResult, run_stage

log = logging.getLogger("stages")


def folder_of(params: Params, root: Path) -> Path:
    return rec_folder.folder_of(params.recordings, root)


def labels_path(params: Params, root: Path) -> Path:
    return rec_folder.labels_path(params.recordings, root)


def audio_files(params: Params, root: Path) -> list[str]:
    return rec_folder.audio_files(params.recordings, root)


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
    orphans = rec_folder.orphan_stem_folders(params.recordings, root)
    out.out("audio").mkdir(parents=True, exist_ok=True)  # a DVC output, even with no recordings
    outcomes = map_items(make_recording, _jobs(params, root, out.out("audio"), files, labels.rows), params.run,
                         desc="recordings: files", unit="file")  # fmt: skip
    records: list[RecordingSong] = []
    warnings = [{"id": f, "reason": f"no row in {labels_file.name}: estimates only"} for f in unlabelled]
    warnings += [{"id": d, "reason": "a stems folder with no recording beside it: left out"} for d in orphans]
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
        "with_stems": sum(bool(r.stems) for r in records),
        "stems": sum(len(r.stems) for r in records),
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
    found = _labels_cli(root)
    if found is None:
        return 2
    params, labels_file = found
    dest = dest or labels_file
    if dest.suffix.lower() not in (".csv", ".jsonl"):
        log.error("recordings --draft-labels: the labels file must end in .csv or .jsonl: %s", dest)
        return 2
    files = audio_files(params, root)
    labels = read_labels(labels_file)
    for where, why in labels.errors:
        log.warning("  %s: %s (kept out of the draft; fix the row)", where, why)
    outcomes = map_items(draft_row, _jobs(params, root, root, files, labels.rows), params.run,
                         desc="recordings: estimating", unit="file")  # fmt: skip
    rows = [o.value for o in outcomes if o.ok and o.value is not None]
    for o in outcomes:
        if not o.ok:
            log.warning("  %s: %s (left out of the draft)", o.item_id, o.error)
    rows = _tagged(params, root, rows)
    if dest.exists():
        shutil.copy2(dest, dest.with_name(dest.name + ".bak"))
    write_labels(dest, rows)
    estimated = sum(bool(r["estimated"]) for r in rows)
    log.info("recordings: draft labels for %d of %d files -> %s (%d with estimates to confirm)",
             len(rows), len(files), dest, estimated)  # fmt: skip
    return 0


def _tagged(params: Params, root: Path, rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Rows with the audio tagger's genre and mood drafts, when the tagger is on and can run."""
    p = params.recordings.tagger
    if not p.enabled or not rows:
        return rows
    paths = [folder_of(params, root) / str(r["file"]) for r in rows]
    log.info("recordings: tagging %d files (genre and mood drafts, %s)", len(rows), p.python)
    try:
        drafts = run_tagger(paths, p, root)
    except TaggerError as exc:
        log.warning("recordings: no genre or mood drafts: %s", exc)
        return rows
    for r, path in zip(rows, paths, strict=True):
        if isinstance(drafts[path], str):
            log.warning("recordings: no genre or mood draft for %s: %s", r["file"], drafts[path])
    return [with_tag_draft(r, drafts[path]) for r, path in zip(rows, paths, strict=True)]


def _labels_cli(root: Path) -> tuple[Params, Path] | None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        params = load_params(root / "params.yaml")
        check(params, root)
    except (ParamsError, ConfigError) as exc:
        log.error("recordings: %s", exc)
        return None
    return params, labels_path(params, root)


def labelstudio_export(root: Path, dest: Path, audio_url: str) -> int:
    """The labels file as Label Studio tasks (`dest`) and the labeling interface beside it (.xml)."""
    found = _labels_cli(root)
    if found is None:
        return 2
    params, labels_file = found
    labels = read_labels(labels_file)
    for where, why in labels.errors:
        log.warning("  %s: %s (not exported; fix the row)", where, why)
    base = Path(params.recordings.path).as_posix().strip("/")
    tasks = export_tasks(list(labels.rows.values()), lambda f: f"{audio_url}{base}/{f}")
    write_tasks(dest, tasks)
    dest.with_suffix(".xml").write_text(label_config())
    log.info("recordings: %d tasks -> %s; labeling interface -> %s", len(tasks), dest, dest.with_suffix(".xml"))
    return 0


def labelstudio_import(root: Path, source: Path) -> int:
    """Label Studio's JSON export -> the labels file (the old one: .bak); annotations are hand labels."""
    found = _labels_cli(root)
    if found is None:
        return 2
    _, labels_file = found
    try:
        tasks = json.loads(source.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        log.error("recordings: cannot read %s: %s", source, exc)
        return 2
    rows, errors = import_tasks(tasks if isinstance(tasks, list) else [])
    for where, why in errors:
        log.warning("  %s: %s (left out)", where, why)
    if labels_file.exists():
        shutil.copy2(labels_file, labels_file.with_name(labels_file.name + ".bak"))
    write_labels(labels_file, [r.model_dump() for r in rows])
    log.info("recordings: %d rows from %s -> %s", len(rows), source, labels_file)
    return 0


def main(root: Path | None = None, argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m stages.recordings", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--draft-labels",
        nargs="?",
        const="",
        metavar="PATH",
        help="write the labels file to edit (default: recordings.labels) instead of running",
    )
    ap.add_argument("--labelstudio-export", metavar="TASKS.json", help="labels as Label Studio tasks (+ .xml)")
    ap.add_argument(
        "--audio-url",
        default="/data/local-files/?d=",
        help="prefix of the tasks' audio URLs (default: Label Studio's local files)",
    )
    ap.add_argument("--labelstudio-import", metavar="EXPORT.json", help="Label Studio's JSON export -> labels")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)  # fmt: skip
    root = Path.cwd() if root is None else root
    if args.draft_labels is not None:
        return draft_labels(root, Path(args.draft_labels) if args.draft_labels else None)
    if args.labelstudio_export:
        return labelstudio_export(root, Path(args.labelstudio_export), args.audio_url)
    if args.labelstudio_import:
        return labelstudio_import(root, Path(args.labelstudio_import))
    return run_stage("recordings", recordings, root=root, check=check)


if __name__ == "__main__":
    sys.exit(main())

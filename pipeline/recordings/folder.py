"""Where a project's recordings and their labels file lie (recordings.path, recordings.labels)."""

from __future__ import annotations

from pathlib import Path

from pipeline.params import RecordingsParams


def folder_of(p: RecordingsParams, root: Path) -> Path:
    return root / p.path


def labels_path(p: RecordingsParams, root: Path) -> Path:
    labels = Path(p.labels)
    return labels if labels.is_absolute() else folder_of(p, root) / labels


def audio_files(p: RecordingsParams, root: Path) -> list[str]:
    """The folder's audio files, relative and '/'-separated, sorted; hidden files are skipped."""
    folder = folder_of(p, root)
    if not folder.is_dir():
        return []
    exts = set(p.extensions)
    found = [f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in exts]
    rel = [f.relative_to(folder).as_posix() for f in found]
    return sorted(r for r in rel if not any(part.startswith(".") for part in r.split("/")))

"""Where a project's recordings, their stems and their labels file lie (recordings.path, recordings.labels).

A recording may come with its parts: `<dir>/<name>.stems/<instrument>.<ext>` beside
`<dir>/<name>.<ext>` (e.g. `song.flac` and `song.stems/bass.wav`, `song.stems/drums.flac`).
Files in a stems folder are parts, never recordings of their own.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from pipeline.params import RecordingsParams

STEMS_SUFFIX = ".stems"


def folder_of(p: RecordingsParams, root: Path) -> Path:
    return root / p.path


def labels_path(p: RecordingsParams, root: Path) -> Path:
    labels = Path(p.labels)
    return labels if labels.is_absolute() else folder_of(p, root) / labels


def _audio_under(folder: Path, exts: set[str]) -> list[str]:
    """Audio files under `folder`, relative and '/'-separated, sorted; hidden files are skipped."""
    found = [f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in exts]
    rel = [f.relative_to(folder).as_posix() for f in found]
    return sorted(r for r in rel if not any(part.startswith(".") for part in r.split("/")))


def audio_files(p: RecordingsParams, root: Path) -> list[str]:
    """The folder's recordings (files in a stems folder are parts, not recordings)."""
    folder = folder_of(p, root)
    if not folder.is_dir():
        return []
    every = _audio_under(folder, set(p.extensions))
    return [r for r in every if not any(part.endswith(STEMS_SUFFIX) for part in r.split("/")[:-1])]


def stems_folder(file: str) -> str:
    """The stems folder of a recording, relative like `file`: `a/song.flac` -> `a/song.stems`."""
    path = PurePosixPath(file)
    return path.with_name(path.stem + STEMS_SUFFIX).as_posix()


def stem_files(p: RecordingsParams, folder: Path, file: str) -> list[str]:
    """A recording's stem files, relative to `folder` (none: no stems folder)."""
    stems = folder / stems_folder(file)
    if not stems.is_dir():
        return []
    return [f"{stems_folder(file)}/{r}" for r in _audio_under(stems, set(p.extensions)) if "/" not in r]


def orphan_stem_folders(p: RecordingsParams, root: Path) -> list[str]:
    """Stems folders with no recording beside them (their parts cannot be used)."""
    folder = folder_of(p, root)
    if not folder.is_dir():
        return []
    owners = {stems_folder(f) for f in audio_files(p, root)}
    found = sorted(d.relative_to(folder).as_posix() for d in folder.rglob(f"*{STEMS_SUFFIX}") if d.is_dir())
    return [d for d in found if d not in owners and not any(part.startswith(".") for part in d.split("/"))]

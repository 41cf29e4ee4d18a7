"""The training dataset's layout (stable-audio-tools `audio_dir`), sidecars and WebDataset shards.

    data/augment/dataset/<split>/<song_id>/<clip>[__<suffix>].wav   16-bit stereo WAV
                                                         .json  the Variant record (prompt included)
                                                         .mid   the variant's notes (note-level variants)

Shards (optional) are plain tar files in WebDataset's naming: `<split>-NNNNNN.tar`,
members `<song_id>/<clip>[__<suffix>].{wav,json}` (no dots in the key, so the key
is everything before the extension), sorted, with fixed owner and mtime so the
same dataset gives byte-identical shards.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Sequence
from pathlib import Path

from pipeline.io.atomic import atomic_open, dumps, write_text
from pipeline.records import Clip, Variant

SHARD_MTIME = 0  # deterministic shards


def item_name(clip: Clip, suffix: str, original: str) -> str:
    """`c003` for the clip itself, `c003__k+2_bpm120` for a variant (dots would split WebDataset keys)."""
    local = clip.id[len(clip.song_id) + 1 :]
    name = local if suffix == original else f"{local}__{suffix}"
    return name.replace("/", "_").replace(".", "p")


def item_base(dataset: Path, clip: Clip, suffix: str, original: str) -> Path:
    """Path without extension of a dataset item: its split and song folders, then its name."""
    return dataset / clip.split / clip.song_id / item_name(clip, suffix, original)


def write_sidecar(root: Path, variant: Variant) -> None:
    """The item's JSON: the whole record (prompt, seconds_start, seconds_total, id, split, labels)."""
    write_text(root / variant.sidecar, dumps(variant.model_dump(mode="json")))


def remove_item(root: Path, variant: Variant, dataset: Path) -> None:
    """Delete an item's files from the dataset (never its source clip's files)."""
    for rel in (variant.audio, variant.sidecar, variant.midi):
        path = root / rel
        if path.is_relative_to(dataset):
            path.unlink(missing_ok=True)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), SHARD_MTIME, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def write_shards(root: Path, out_dir: Path, variants: Sequence[Variant], max_items: int) -> list[dict[str, object]]:
    """Tar shards per split, `max_items` items each; returns an index entry per shard."""
    index: list[dict[str, object]] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    by_split: dict[str, list[Variant]] = {}
    for v in sorted(variants, key=lambda v: v.id):
        by_split.setdefault(v.split, []).append(v)
    for split, items in sorted(by_split.items()):
        for n, start in enumerate(range(0, len(items), max_items)):
            chunk = items[start : start + max_items]
            path = out_dir / f"{split}-{n:06d}.tar"
            with atomic_open(path, "wb") as fh, tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for v in chunk:
                    key = Path(v.audio).with_suffix("").relative_to(Path(v.audio).parents[2]).as_posix()
                    _add(tar, f"{key}.wav", (root / v.audio).read_bytes())
                    _add(tar, f"{key}.json", (root / v.sidecar).read_bytes())
            index.append({"shard": path.name, "split": split, "items": len(chunk)})
    return index

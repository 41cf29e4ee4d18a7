"""Tiny training datasets in the augment stage's layout: WAVs + JSON sidecars, each
listed in the augment manifest (data/augment/manifest.jsonl) as a `Variant`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.io.manifest import read_manifest, write_manifest
from pipeline.layout import StageDir
from pipeline.records import Variant
from tests.clip_factory import make_clip

SR = 44100
NOTES_HZ = (220.0, 261.63, 329.63, 392.0, 440.0)


def item_id(song: str, name: str) -> str:
    """`<song>/<name>` (a clip id is `<song>/c...`: other names become `<song>/c-<name>`)."""
    return f"{song}/{name}" if name.startswith("c") else f"{song}/c-{name}"


def _add_to_manifest(root: Path, variant: Variant) -> None:
    """List the item in the augment manifest (replacing an item of the same id)."""
    path = StageDir("augment", root).manifest
    items = {v.id: v for v in read_manifest(path, Variant)} if path.exists() else {}
    items[variant.id] = variant
    write_manifest(path, items.values())


def write_clip(
    root: Path, split: str, song: str, name: str, seconds: float, hz: float, recording: bool = False, **meta: object
) -> tuple[Path, Path]:
    """One 16-bit stereo tone clip with its sidecar, listed in the augment manifest (as cut from a
    recording, without MIDI, when `recording`); `meta` overrides sidecar fields (None removes one),
    never the manifest's record."""
    folder = root / "data/augment/dataset" / split / song
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    tone = 0.3 * np.sin(2 * np.pi * hz * t) * np.exp(-((t % 0.5) * 4))
    audio = np.stack([tone, np.roll(tone, 50)], axis=1).astype(np.float32)
    wav = folder / f"{name}.wav"
    sf.write(wav, audio, SR, subtype="PCM_16")
    iid = item_id(song, name)
    sidecar = {
        "id": iid,
        "split": split,
        "prompt": f"soft tone at {hz:.0f} Hz, pulsing, {120 + int(hz) % 40} BPM",
        "seconds_start": 4.0,
        "seconds_total": seconds,
        "bpm": 120,
    }
    sidecar.update(meta)
    sidecar = {k: v for k, v in sidecar.items() if v is not None}
    (folder / f"{name}.json").write_text(json.dumps(sidecar))
    source, suffix = iid.rsplit("/", 1)
    clip = make_clip(
        id=iid,
        song_id=song,
        split=split,
        audio=wav.relative_to(root).as_posix(),
        sidecar=wav.with_suffix(".json").relative_to(root).as_posix(),
        midi=None if recording else wav.with_suffix(".mid").relative_to(root).as_posix(),
        seconds_start=4.0,
        seconds_total=seconds,
        bpm=120.0,
    )
    prompt = sidecar.get("prompt")
    variant = Variant(
        **clip.model_dump(exclude={"schema_version"}),
        source_clip=source,
        suffix=suffix,
        method="identity",
        transforms=[],
        phrase=f"phrase-{iid}",
        cache_key=None,
        prompt=prompt if isinstance(prompt, str) and prompt else None,
    )
    _add_to_manifest(root, variant)
    return wav, folder / f"{name}.json"


def make_dataset(root: Path, train: int = 4, validation: int = 2, seconds: float = 1.5) -> None:
    for i in range(train):
        write_clip(root, "train", f"band__song-{i % 2}__abc12{i % 2}", f"c{i:03d}", seconds, NOTES_HZ[i % 5])
    for i in range(validation):
        write_clip(root, "validation", "band__val__def456", f"c{i:03d}", seconds, NOTES_HZ[(i + 2) % 5])

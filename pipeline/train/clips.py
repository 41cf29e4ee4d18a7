"""The training clips: the train and validation items of the augment stage's
manifest (never a glob of its folders), each WAV checked with its JSON sidecar
before any training so a bad clip is a failure record, never a crash mid-run.

Runs in .venv (soundfile, no torch) and imports nothing heavier, so .venv-train
imports it too. The training process reads the accepted list (written by the
stage) instead of the raw folders.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import soundfile as sf
from pydantic import Field

from pipeline.errors import ConfigError
from pipeline.io.manifest import ManifestError, read_manifest
from pipeline.layout import StageDir
from pipeline.records import Failure, Record, Variant

SPLITS = ("train", "validation")
SAMPLE_RATE = 44100
WINDOW_TOLERANCE_S = 0.05


class TrainClip(Record):
    """One clip the fine-tune reads: its audio, the prompt and timing conditioning."""

    split: str
    audio: str = Field(description="relative path of the WAV")
    prompt: str = Field(min_length=1)
    seconds_start: float = Field(ge=0)
    seconds_total: float = Field(gt=0)
    duration_s: float = Field(gt=0)


def _number(meta: dict, key: str) -> float:
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"sidecar '{key}' must be a number, got {value!r}")
    return float(value)


def manifest_items(root: Path) -> list[tuple[str, str, Path]]:
    """(id, split, WAV path) of every train and validation item of the augment manifest."""
    path = StageDir("augment", root).manifest
    if not path.is_file():
        rel = path.relative_to(root) if path.is_relative_to(root) else path
        raise ConfigError(f"{rel}: no augment manifest (run the augment stage first)")
    try:
        return [(v.id, v.split, root / v.audio) for v in read_manifest(path, Variant) if v.split in SPLITS]
    except ManifestError as exc:
        raise ConfigError(f"{exc} (rerun the augment stage)") from exc


def manifest_sources(root: Path) -> dict[str, str]:
    """Source (midi | recording) of every train and validation item of the augment manifest."""
    return {v.id: v.source for v in read_manifest(StageDir("augment", root).manifest, Variant) if v.split in SPLITS}


def check_clip(item_id: str, split: str, wav: Path, root: Path, window_s: float) -> TrainClip:
    """The clip's record, or ValueError saying what is wrong with it (its sidecar lies beside the WAV)."""
    sidecar = wav.with_suffix(".json")
    if not sidecar.is_file():
        raise ValueError(f"no JSON sidecar {sidecar.name}")
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"sidecar is not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise ValueError("sidecar is not a JSON object")
    prompt = meta.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"sidecar 'prompt' must be a non-empty string, got {prompt!r}")
    if meta.get("split", split) != split:
        raise ValueError(f"sidecar says split {meta.get('split')!r} but the manifest says {split!r}")
    if meta.get("id", item_id) != item_id:
        raise ValueError(f"sidecar says id {meta.get('id')!r} but the manifest says {item_id!r}")
    start, total = _number(meta, "seconds_start"), _number(meta, "seconds_total")
    try:
        info = sf.info(str(wav))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise ValueError(f"audio unreadable: {exc}") from None
    if info.samplerate != SAMPLE_RATE:
        raise ValueError(f"sample rate {info.samplerate} Hz, expected {SAMPLE_RATE}")
    if info.channels not in (1, 2) or info.frames == 0:
        raise ValueError(f"{info.channels} channels, {info.frames} frames: expected mono or stereo audio")
    duration = info.frames / info.samplerate
    if duration > window_s + WINDOW_TOLERANCE_S:
        raise ValueError(f"{duration:.2f} s is longer than the {window_s:g} s training window")
    return TrainClip(
        id=item_id,
        split=split,
        audio=_relative(wav, root).as_posix(),
        prompt=prompt.strip(),
        seconds_start=start,
        seconds_total=total,
        duration_s=round(duration, 6),
    )


def _relative(wav: Path, root: Path) -> Path:
    try:
        return wav.relative_to(root)
    except ValueError:
        raise ValueError(f"audio {wav} lies outside the repository") from None


def _file_id(wav: Path, root: Path) -> str:
    """The failure id: the WAV's repo-relative path without extension (its files, whatever its sidecar says)."""
    return (wav.relative_to(root) if wav.is_relative_to(root) else wav).with_suffix("").as_posix()


def scan(items: Iterable[tuple[str, str, Path]], root: Path, window_s: float) -> tuple[list[TrainClip], list[Failure]]:
    """Accepted clips of the train and validation splits (by split, then path), and failures.

    `items` are (id, split, WAV path), e.g. from `manifest_items`; items of other splits are left out.
    A failure's id is the WAV's path without extension and its origin the item's id.
    """
    clips: list[TrainClip] = []
    failures: list[Failure] = []
    chosen = sorted(
        ((i, s, root / w) for i, s, w in items if s in SPLITS), key=lambda t: (SPLITS.index(t[1]), t[2], t[0])
    )
    for item_id, split, wav in chosen:
        try:
            clips.append(check_clip(item_id, split, wav, root, window_s))
        except ValueError as exc:
            failures.append(Failure(id=_file_id(wav, root), stage="finetune", reason=str(exc), origin=item_id))
    return clips, failures

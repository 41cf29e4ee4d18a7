"""The training clips: every WAV of a split with its JSON sidecar, checked before
any training so a bad clip is a failure record, never a crash mid-run.

Runs in .venv (soundfile, no torch). The training process reads the accepted
list (written by the stage) instead of the raw folders.
"""

from __future__ import annotations

import json
from pathlib import Path

import soundfile as sf
from pydantic import Field

from pipeline.records import Failure, Record

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


def check_clip(wav: Path, split: str, root: Path, window_s: float) -> TrainClip:
    """The clip's record, or ValueError saying what is wrong with it."""
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
        raise ValueError(f"sidecar says split {meta.get('split')!r} but the clip is under {split}/")
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
        id=str(meta.get("id") or _fallback_id(wav, root)),
        split=split,
        audio=wav.relative_to(root).as_posix(),
        prompt=prompt.strip(),
        seconds_start=start,
        seconds_total=total,
        duration_s=round(duration, 6),
    )


def _fallback_id(wav: Path, root: Path) -> str:
    return wav.relative_to(root).with_suffix("").as_posix()


def scan(dataset_dir: Path, root: Path, window_s: float) -> tuple[list[TrainClip], list[Failure]]:
    """Accepted clips of the train and validation splits (sorted by path), and failures."""
    clips: list[TrainClip] = []
    failures: list[Failure] = []
    for split in SPLITS:
        for wav in sorted((dataset_dir / split).rglob("*.wav")):
            try:
                clips.append(check_clip(wav, split, root, window_s))
            except ValueError as exc:
                failures.append(Failure(id=_fallback_id(wav, root), stage="finetune", reason=str(exc), origin=wav.name))
    return clips, failures

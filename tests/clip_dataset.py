"""Tiny training datasets in the augment stage's layout: WAVs + JSON sidecars."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 44100
NOTES_HZ = (220.0, 261.63, 329.63, 392.0, 440.0)


def write_clip(
    root: Path, split: str, song: str, name: str, seconds: float, hz: float, **meta: object
) -> tuple[Path, Path]:
    """One 16-bit stereo tone clip with its sidecar; `meta` overrides sidecar fields (None removes one)."""
    folder = root / "data/augment/dataset" / split / song
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    tone = 0.3 * np.sin(2 * np.pi * hz * t) * np.exp(-((t % 0.5) * 4))
    audio = np.stack([tone, np.roll(tone, 50)], axis=1).astype(np.float32)
    wav = folder / f"{name}.wav"
    sf.write(wav, audio, SR, subtype="PCM_16")
    sidecar = {
        "id": f"{song}/{name}",
        "split": split,
        "prompt": f"soft tone at {hz:.0f} Hz, pulsing, {120 + int(hz) % 40} BPM",
        "seconds_start": 4.0,
        "seconds_total": seconds,
        "bpm": 120,
    }
    sidecar.update(meta)
    sidecar = {k: v for k, v in sidecar.items() if v is not None}
    (folder / f"{name}.json").write_text(json.dumps(sidecar))
    return wav, folder / f"{name}.json"


def make_dataset(root: Path, train: int = 4, validation: int = 2, seconds: float = 1.5) -> None:
    for i in range(train):
        write_clip(root, "train", f"band__song-{i % 2}__abc12{i % 2}", f"c{i:03d}", seconds, NOTES_HZ[i % 5])
    for i in range(validation):
        write_clip(root, "validation", "band__val__def456", f"c{i:03d}", seconds, NOTES_HZ[(i + 2) % 5])

"""stable-audio-tools dataset configs for the accepted clips, the custom metadata
function its `audio_dir` datasets call, and pre-encoding to VAE latents.

stable-audio-tools loads this file by path as its `custom_metadata_module` (in
the data loader's processes), so the module top imports only the standard
library. `get_custom_metadata` takes each clip's prompt and seconds_start /
seconds_total from the stage's accepted-clip index (built from the JSON sidecars)
and rejects any file not in it, so a clip recorded in failures.jsonl never trains.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

ENV_INDEX = "M2F_CLIP_INDEX"


@functools.cache
def _index(path: str) -> dict[str, dict]:
    clips = json.loads(Path(path).read_text(encoding="utf-8"))
    return {os.path.realpath(c["audio_abs"]): c for c in clips}


def get_custom_metadata(info: dict, audio: Any) -> dict:
    """Conditioning for one audio file (stable-audio-tools' custom metadata hook)."""
    clip = _index(os.environ[ENV_INDEX]).get(os.path.realpath(info["path"]))
    if clip is None:
        return {"__reject__": True}
    return {
        "prompt": clip["prompt"],
        "seconds_start": clip["seconds_start"],
        "seconds_total": clip["seconds_total"],
        "clip_id": clip["id"],
    }


def apply_repeats(ds: Any, clips: list[dict], latent_dir: Path | None = None) -> int:
    """Repeat, in the dataset's file list, each clip whose entry has `repeat` (the mixture of sources,
    finetune.recordings_share); order is kept, so the list is the same on every run. Returns its length."""
    if latent_dir is None:
        reps = {os.path.realpath(c["audio_abs"]): int(c.get("repeat", 1)) for c in clips}
    else:
        reps = {os.path.realpath(latent_dir / f"{_latent_name(c['id'])}.npy"): int(c.get("repeat", 1)) for c in clips}
    if any(r != 1 for r in reps.values()):
        ds.filenames[:] = [f for f in ds.filenames for _ in range(reps.get(os.path.realpath(f), 1))]
    return len(ds.filenames)


def audio_dir_config(split_dir: Path, split: str, drop_last: bool) -> dict:
    """An `audio_dir` dataset over one split folder, conditioned by this module."""
    return {
        "dataset_type": "audio_dir",
        "datasets": [{"id": split, "path": str(split_dir), "custom_metadata_module": str(Path(__file__).resolve())}],
        "random_crop": False,  # clips are at most the window: nothing to crop, and no randomness
        "drop_last": drop_last,
    }


def pre_encoded_config(latent_dir: Path, split: str, drop_last: bool) -> dict:
    """stable-audio-tools' `pre_encoded` dataset over latents written by `encode_clips`."""
    return {
        "dataset_type": "pre_encoded",
        "datasets": [{"id": split, "path": str(latent_dir)}],
        "random_crop": False,
        "drop_last": drop_last,
    }


def _latent_name(clip_id: str) -> str:
    return clip_id.replace("/", "__")


def encode_clips(model: Any, clips: list[dict], out_dir: Path, sample_size: int, device: str) -> int:
    """Write `<id>.npy` latents and `<id>.json` metadata (with the latent padding mask)
    for each clip, in the layout stable-audio-tools' PreEncodedDataset reads."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from stable_audio_tools.data.utils import PadCrop_Normalized_T

    from pipeline.io.atomic import atomic_open, write_text
    from pipeline.train.compat import read_audio

    pretransform = model.pretransform.to(device).eval()
    crop = PadCrop_Normalized_T(sample_size, model.sample_rate, randomize=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    for clip in clips:
        audio, sr = read_audio(clip["audio_abs"])
        if sr != model.sample_rate:
            from torchaudio import transforms

            audio = transforms.Resample(sr, model.sample_rate)(audio)
        if audio.shape[0] == 1:
            audio = audio.repeat(2, 1)
        audio, *_, mask = crop(audio.clamp(-1, 1))
        with torch.no_grad():
            latents = pretransform.encode(audio[None].to(device))[0]
        latents = latents * getattr(pretransform, "scale", 1.0)  # training divides by it again
        latent_mask = F.interpolate(mask[None, None], size=latents.shape[-1], mode="nearest")[0, 0]
        name = _latent_name(clip["id"])
        with atomic_open(out_dir / f"{name}.npy", "wb") as fh:  # new inode: never writes through a DVC hardlink
            np.save(fh, latents.float().cpu().numpy())
        meta = {
            "id": clip["id"],
            "prompt": clip["prompt"],
            "seconds_start": clip["seconds_start"],
            "seconds_total": clip["seconds_total"],
            "padding_mask": [int(v) for v in latent_mask.tolist()],
        }
        write_text(out_dir / f"{name}.json", json.dumps(meta, sort_keys=True) + "\n")
    return len(clips)

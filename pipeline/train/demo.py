"""Demo generations from validation prompts with stable-audio-tools' sampler,
written as 16-bit WAVs of exactly the requested length."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

DOWNSAMPLING = 2048


def generate(model: Any, prompt: str, seconds: float, steps: int, cfg_scale: float, seed: int, device: str) -> Any:
    """(channels, round(seconds * rate)) float tensor in [-1, 1]."""
    from stable_audio_tools.inference.generation import generate_diffusion_cond

    sr = model.sample_rate
    n = round(seconds * sr)
    sample_size = math.ceil(n / DOWNSAMPLING) * DOWNSAMPLING
    audio = generate_diffusion_cond(
        model,
        steps=steps,
        cfg_scale=cfg_scale,
        conditioning=[{"prompt": prompt, "seconds_start": 0, "seconds_total": seconds}],
        sample_size=sample_size,
        seed=seed,
        device=device,
    )
    return audio[0, :, :n].float().clamp(-1, 1).cpu()


def write_demos(model: Any, items: list[dict], out_dir: Path, steps: int, cfg_scale: float, seed: int, device: str):
    """One WAV per item ({id, prompt, seconds}); returns their descriptions."""
    import soundfile as sf

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i, item in enumerate(items):
        audio = generate(model, item["prompt"], item["seconds"], steps, cfg_scale, seed + i, device)
        peak = float(audio.abs().max())
        if peak > 0:
            audio = audio / peak * 0.89  # peak -1 dBFS, as stable-audio-tools' demos normalise
        name = f"demo_{i:02d}.wav"
        sf.write(out_dir / name, audio.T.numpy(), model.sample_rate, subtype="PCM_16")
        written.append({**item, "file": name, "seed": seed + i, "steps": steps, "cfg_scale": cfg_scale})
    return written

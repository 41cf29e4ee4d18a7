"""The generation process: `.venv-train/bin/python -m pipeline.evaluate.generate --spec spec.json`.

The evaluate stage (in .venv) writes the spec (paths and settings only) and reads back
the result JSON. For each model of the spec, in order, every prompt of the grid is
generated with stable-audio-tools' `generate_diffusion_cond` (on the GPU when there is
one, batched by `batch_size`), peak-normalised to -1 dBFS as the fine-tune's demos are,
and written as a 16-bit stereo WAV at `<audio_dir>/<model>/<prompt id>.wav`.

A model is either an exported bundle (a directory: `pipeline.train.unwrap.load`, as the
fine-tune's demos load it) or a Stable Audio Open 1.0 checkpoint file (the full
architecture of models/configs with its weights, checked strictly as the fine-tune
checks them). A model that does not load is reported in the result, not raised: the
other models still generate. The optional CLAP score (laion-clap) is computed here too,
where laion-clap is installed.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from pipeline.evaluate.boundary import GenerateResult, GenerateSpec, ModelOutcome, ModelToGenerate, PromptToGenerate
from pipeline.io.atomic import atomic_path
from pipeline.train import compat

DOWNSAMPLING = 2048
PEAK = 0.89  # -1 dBFS, as the fine-tune's demos


def load_model(entry: ModelToGenerate, device: str) -> Any:
    """The inference model of one spec entry (an exported bundle or a SAO 1.0 checkpoint)."""
    if entry.kind == "bundle":
        from pipeline.train import unwrap

        return unwrap.load(Path(entry.path), device)[0]
    from stable_audio_tools.models.factory import create_model_from_config

    from pipeline.train import configs, run, unwrap

    config = configs.load_base("full")
    config["sample_size"] = configs.window_samples(entry.seconds, config["sample_rate"])
    for cond in config["model"]["conditioning"]["configs"]:
        if cond["type"] == "t5":
            cond["config"]["t5_model_name"] = entry.t5_dir or "t5-base"
    model = create_model_from_config(unwrap.register_t5_dirs(config))
    run.load_pretrained(model, entry.path, None)
    return model.to(device).eval().requires_grad_(False)


def batches(prompts: list[PromptToGenerate], size: int) -> list[list[PromptToGenerate]]:
    return [prompts[i : i + size] for i in range(0, len(prompts), size)]


def generate_batch(model: Any, batch: list[PromptToGenerate], steps: int, cfg_scale: float, device: str) -> list[Any]:
    """One sampler call for a batch of prompts of one length; the batch's first prompt seeds it.
    Returns (channels, samples) float tensors, peak-normalised."""
    import math

    from stable_audio_tools.inference.generation import generate_diffusion_cond

    seconds = batch[0].seconds
    n = round(seconds * model.sample_rate)
    audio = generate_diffusion_cond(
        model,
        steps=steps,
        cfg_scale=cfg_scale,
        conditioning=[{"prompt": p.prompt, "seconds_start": 0, "seconds_total": seconds} for p in batch],
        batch_size=len(batch),
        sample_size=math.ceil(n / DOWNSAMPLING) * DOWNSAMPLING,
        seed=batch[0].seed,
        device=device,
    )
    out = []
    for i in range(len(batch)):
        a = audio[i, :, :n].float().clamp(-1, 1).cpu()
        peak = float(a.abs().max())
        out.append(a / peak * PEAK if peak > 0 else a)
    return out


def clap_score(weights: str, files: list[Path], prompts: list[str], device: str) -> float:
    """Mean cosine similarity of laion-clap's audio and text embeddings (the fusion model)."""
    import laion_clap
    import torch

    module = laion_clap.CLAP_Module(enable_fusion=True, device=device)
    module.load_ckpt(weights)
    with torch.no_grad():
        a = torch.as_tensor(module.get_audio_embedding_from_filelist([str(f) for f in files], use_tensor=False))
        t = torch.as_tensor(module.get_text_embedding(prompts, use_tensor=False))
    sims = torch.nn.functional.cosine_similarity(a, t, dim=-1)
    return round(float(sims.mean()), 4)


def run_models(spec: GenerateSpec) -> GenerateResult:
    compat.apply()
    import soundfile as sf
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.use_deterministic_algorithms(True, warn_only=True)
    audio_dir = Path(spec.audio_dir)
    outcomes: dict[str, ModelOutcome] = {}
    for entry in spec.models:
        try:
            model = load_model(entry, device)
        except Exception as exc:  # noqa: BLE001 - any load failure is reported, the other models still run
            error = f"{type(exc).__name__}: {exc}".strip()[:2000]
            outcomes[entry.name] = ModelOutcome(path=entry.path, kind=entry.kind, error=error)
            print(f"evaluate: model {entry.name} did not load: {error}", file=sys.stderr, flush=True)
            continue
        started = time.perf_counter()
        files = []
        for batch in batches(spec.prompts, spec.batch_size):
            audios = generate_batch(model, batch, spec.steps, spec.cfg_scale, device)
            for p, audio in zip(batch, audios, strict=True):
                path = audio_dir / entry.name / f"{p.id}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(path) as tmp:
                    sf.write(str(tmp), audio.T.numpy(), model.sample_rate, subtype="PCM_16", format="WAV")
                files.append(path)
        per_generation = round((time.perf_counter() - started) / max(1, len(files)), 4)
        del model
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()  # the next model (SAO 1.0: ~5 GB) gets the memory back
        clap, clap_error = None, None
        if spec.clap_weights:
            try:
                clap = clap_score(spec.clap_weights, files, [p.prompt for p in spec.prompts], device)
            except Exception as exc:  # noqa: BLE001 - the optional score never stops the evaluation
                clap_error = f"{type(exc).__name__}: {exc}".strip()[:500]
                traceback.print_exc()
        outcomes[entry.name] = ModelOutcome(
            path=entry.path,
            kind=entry.kind,
            generated=len(files),
            seconds_per_generation=per_generation,
            clap_score=clap,
            clap_error=clap_error,
        )
    return GenerateResult(device=device, models=outcomes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--spec", required=True, type=Path)
    args = ap.parse_args(argv)
    spec = GenerateSpec.read(args.spec)
    run_models(spec).write(Path(spec.result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

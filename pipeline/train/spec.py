"""What the stage hands the training process: one JSON of paths and settings
(never objects), and the keys that decide whether a run resumes.

A run directory is keyed by a hash of everything that shapes the weights (model
config, trainer settings, the accepted clips, the pretrained files), so an
interrupted run with the same inputs resumes from its last checkpoint and any
change starts fresh. Latents are keyed by what shapes them only (VAE, clips,
window, seed), so changing e.g. the learning rate re-uses them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from pipeline.layout import StageDir
from pipeline.params import Params
from pipeline.train.boundary import DemoSettings, TrainerSettings, TrainSpec
from pipeline.train.clips import TrainClip
from pipeline.train.configs import ConfigName, derive
from pipeline.train.mixture import Mixture

TINY_T5_DIR = Path("data/cache/finetune/tiny_t5-v1")  # git-ignored, rebuilt deterministically when missing
TINY_DEMO_STEPS = 8


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _file_id(root: Path, path: str | None) -> dict | None:
    if not path:
        return None
    p = Path(root, path)
    st = p.stat()
    return {"path": path, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _clip_ids(root: Path, clips: list[TrainClip]) -> list[dict]:
    return [{**c.model_dump(), "bytes": (root / c.audio).stat().st_size} for c in clips]


def prune_except(base: Path, keep: str) -> None:
    """Drop other runs' folders (another key means their inputs no longer hold)."""
    if base.is_dir():
        for d in base.iterdir():
            if d.is_dir() and d.name != keep:
                shutil.rmtree(d)


def build(
    params: Params,
    out: StageDir,
    config: ConfigName,
    clips: list[TrainClip],
    dataset_dir: Path,
    mixture: Mixture | None = None,
) -> TrainSpec:
    """The spec, with `run_dir` and `latents_dir` keyed as described above (a weighted mixture of
    sources is part of the run key only when it repeats something)."""
    p, root = params.finetune, out.root
    tiny = config == "tiny"
    seed = params.run.seed if p.seed is None else p.seed
    t5_name = TINY_T5_DIR.as_posix() if tiny else (p.t5_dir or "t5-base")
    model_config = derive(config, params.clip.window_s, p, t5_name)
    ckpt = None if tiny else p.pretrained_ckpt
    vae = None if tiny else p.pretrained_vae
    repeats = mixture.repeats if mixture is not None and any(r != 1 for r in mixture.repeats.values()) else None
    settings = TrainerSettings(
        seed=seed,
        batch_size=p.smoke.batch_size if tiny else p.batch_size,
        max_steps=p.smoke.max_steps if tiny else p.max_steps,
        max_epochs=None if tiny else p.max_epochs,
        checkpoint_every=p.smoke.checkpoint_every if tiny else p.checkpoint_every,
        accumulate_grad_batches=1 if tiny else p.accumulate_grad_batches,
        precision=p.precision,
        devices=p.devices,
        num_nodes=p.num_nodes,
        strategy=p.strategy,
        num_workers=p.num_workers,
        val_batches=p.smoke.val_batches if tiny else p.val_batches,
        source_repeats=repeats,
    )
    clip_ids = _clip_ids(root, clips)
    files = {"ckpt": _file_id(root, ckpt), "vae": _file_id(root, vae)}
    run_key = _digest({"model": model_config, "trainer": settings.key(), "clips": clip_ids, "files": files})
    latent_key = _digest(
        {
            "vae": model_config["model"]["pretransform"],
            "sample_size": model_config["sample_size"],
            "clips": clip_ids,
            "files": files,
            "seed": seed,
        }
    )
    run_dir = out.model_out("checkpoints") / run_key
    return TrainSpec(
        config=config,
        sat_config=model_config,
        tiny_t5=str(root / TINY_T5_DIR) if tiny else None,
        pretrained_ckpt=str(Path(root, ckpt)) if ckpt else None,
        pretrained_vae=str(Path(root, vae)) if vae else None,
        pre_encode=p.pre_encode,
        dataset_dir=str(dataset_dir),
        run_dir=str(run_dir),
        run_key=run_key,
        latents_dir=str(out.model_out("latents") / latent_key),
        latent_key=latent_key,
        model_dir=str(out.model_out("model")),
        demos_dir=str(out.model_out("demos")),
        clips=str(run_dir / "clips.json"),
        result=str(run_dir / "result.json"),
        trainer=settings,
        demos=DemoSettings(
            count=p.demos.count,
            steps=min(p.demos.steps, TINY_DEMO_STEPS) if tiny else p.demos.steps,
            cfg_scale=p.demos.cfg_scale,
            seconds=p.demos.seconds,
        ),
    )


def write_inputs(spec: TrainSpec, root: Path, clips: list[TrainClip], repeats: dict[str, int] | None = None) -> Path:
    """Write clips.json and spec.json into the run directory; returns the spec's path.
    `repeats`: draws per epoch of the clips repeated (finetune.recordings_share), by clip id."""
    run_dir = Path(spec.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    repeats = repeats or {}
    listing = [
        {**c.model_dump(), "audio_abs": str((root / c.audio).resolve()),
         **({"repeat": repeats[c.id]} if repeats.get(c.id, 1) != 1 else {})}
        for c in clips
    ]  # fmt: skip
    Path(spec.clips).write_text(json.dumps(listing, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    path = run_dir / "spec.json"
    spec.write(path)
    Path(spec.result).unlink(missing_ok=True)
    return path

"""Stage `finetune`: Stable Audio Open's DiT fine-tuned on the augmented clips.

Reads params `run.seed`, `clip.window_s`, `finetune` and the augment stage's
manifest, data/augment/manifest.jsonl (its train and validation items; their
audio and sidecars lie in data/augment/dataset, which is never globbed); checks
every clip, picks the config (full with a GPU and the pretrained checkpoint, else
the tiny CPU smoke config), and runs the training in the training environment
(`.venv-train/bin/python -m pipeline.train.run`), passing paths only. Writes
models/finetune/{model,demos,checkpoints,latents} and
data/finetune/{manifest,failures}.jsonl, loss.csv, val_loss.csv, summary.json.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.layout import StageDir
from pipeline.params import Params
from pipeline.records import Failure
from pipeline.train import spec as run_spec
from pipeline.train.boundary import TrainResult
from pipeline.train.clips import manifest_items, manifest_sources, scan
from pipeline.train.configs import choose
from pipeline.train.mixture import mixture, repeat_of
from stages._runner import StageResult, run_stage

log = logging.getLogger("stages")
EXIT_CONFIG = 2


def _gpus(python: Path, root: Path) -> int:
    """GPUs the training environment's torch sees."""
    probe = "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)"
    out = subprocess.run([str(python), "-c", probe], cwd=root, capture_output=True, text=True)
    if out.returncode != 0:
        tail = out.stderr.strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"finetune.python: {python} cannot import torch ({tail[0]}); rebuild it: make train-env")
    return int(out.stdout.strip().splitlines()[-1])


def check(params: Params, root: Path) -> None:
    """The dataset and the training environment exist (before any output is removed)."""
    dataset_dir = StageDir("augment", root).out("dataset")
    if not dataset_dir.is_dir():
        raise ConfigError(f"{dataset_dir.relative_to(root)}: no training dataset (run the augment stage first)")
    if not Path(root, params.finetune.python).exists():
        raise ConfigError(
            f"finetune.python: {params.finetune.python} not found (build the training environment: make train-env)"
        )


def finetune(params: Params, out: StageDir) -> StageResult:
    p, root = params.finetune, out.root  # check() has passed: run_stage calls it first
    dataset_dir = StageDir("augment", root).out("dataset")
    python = Path(root, p.python)
    clips, failures = scan(manifest_items(root), root, params.clip.window_s)
    n_train = sum(c.split == "train" for c in clips)
    if not n_train:
        log.error("finetune: no usable train clips in %s", StageDir("augment", root).manifest.relative_to(root))
        return StageResult([], failures, {"train_clips": 0}, inputs=len(clips) + len(failures) or 1)

    sources = manifest_sources(root)
    mix = mixture(clips, sources, p.recordings_share)
    repeats = {c.id: repeat_of(c, sources, mix) for c in clips}
    choice = choose(p, _gpus(python, root), root)
    log.info("finetune: %s config: %s", choice.config, choice.reason)
    spec = run_spec.build(params, out, choice.config, clips, dataset_dir, mix)
    run_spec.prune_except(out.model_out("checkpoints"), spec.run_key)
    run_spec.prune_except(out.model_out("latents"), spec.latent_key)
    for d in (spec.model_dir, spec.demos_dir):
        shutil.rmtree(d, ignore_errors=True)
    out.model_out("latents").mkdir(parents=True, exist_ok=True)  # a declared out, even when unused
    spec_path = run_spec.write_inputs(spec, root, clips, repeats)
    proc = subprocess.run([str(python), "-m", "pipeline.train.run", "--spec", str(spec_path)], cwd=root)
    if proc.returncode == EXIT_CONFIG:
        raise ConfigError("the training process rejected the configuration (message above); no step was trained")
    if proc.returncode != 0:
        reason = f"training process exited with {proc.returncode}; rerun resumes from {spec.run_dir}"
        return StageResult([], [*failures, Failure(id="training", stage="finetune", reason=reason)], {}, inputs=1)

    result = TrainResult.read(Path(spec.result))
    run_dir = Path(spec.run_dir)
    for name in ("loss.csv", "val_loss.csv"):
        shutil.copyfile(run_dir / name, out.out(name))
    summary = {
        "config": choice.config,
        "config_reason": choice.reason,
        "pre_encoded": p.pre_encode,
        "steps": result.steps,
        "resumed_from": result.resumed_from,
        "first_loss": result.first_loss,
        "final_loss": result.final_loss,
        "final_val_loss": result.final_val_loss,
        "samples_per_second": result.samples_per_second,
        "seconds_per_step": result.seconds_per_step,
        "device": result.device,
        "world_size": result.world_size,
        "parameters": result.parameters,
        "sample_size": spec.sat_config["sample_size"],
        "window_s": params.clip.window_s,
        "train_clips": result.train_clips,
        "train_draws_per_epoch": result.train_draws_per_epoch,
        "validation_clips": result.validation_clips,
        "demos": len(result.demos),
        **mix.as_dict(),
        "run_key": spec.run_key,
    }
    highlights = [
        f"{choice.config} config, {result.steps} steps"
        + (f" (resumed from {result.resumed_from})" if result.resumed_from else "")
        + f", loss {result.first_loss} -> {result.final_loss}, {result.samples_per_second} samples/s",
        f"model: {Path(spec.model_dir).relative_to(root)}, demos: {Path(spec.demos_dir).relative_to(root)}",
        f"train hours by source {mix.hours}, repeats {mix.repeats}: recorded share {mix.share}"
        + (f" (target {mix.target_share})" if mix.target_share is not None else ""),
    ]
    return StageResult(clips, failures, summary, highlights, inputs=len(clips) + len(failures))


def main(root: Path | None = None) -> int:
    return run_stage("finetune", finetune, check=check, root=root)


if __name__ == "__main__":
    sys.exit(main())

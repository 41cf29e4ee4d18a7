"""The training process: `.venv-train/bin/python -m pipeline.train.run --spec spec.json`.

The finetune stage (in .venv) writes the spec (paths and settings only) and reads
back `result.json`. Everything here uses stable-audio-tools' public factories
(`create_model_from_config`, `create_dataloader_from_config`,
`create_training_wrapper_from_config`) and its DiffusionCondTrainingWrapper
under a PyTorch Lightning Trainer (CPU for the smoke config, all local GPUs or
several nodes for real runs). Exit code 2: the run is misconfigured (e.g. a
checkpoint that does not fit), reported before any training step.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from pipeline.io.atomic import atomic_path, write_text
from pipeline.train import compat
from pipeline.train.boundary import TrainResult, TrainSpec

EXIT_CONFIG = 2
EXIT_INTERRUPTED = 75  # --stop-after: a simulated kill, for resume tests
LAST = "last.ckpt"
LAST_STEP = "last.json"  # the checkpoint's step, without loading GBs of checkpoint to read it
THROUGHPUT = "throughput.json"  # speed of the steps this run trained, for a re-run that trains none
ENV_STOP_AFTER = "M2F_FINETUNE_STOP_AFTER"


class CheckpointMismatch(ValueError):
    """A pretrained checkpoint whose weights do not fit the model config."""


def check_state_dict(model: Any, state: dict, what: str) -> None:
    """Every weight present with the right shape, and nothing else (before any training)."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {', '.join(keys[:3])})")
        raise CheckpointMismatch(f"{what} does not fit the model config: {'; '.join(parts)}")


def load_pretrained(model: Any, ckpt: str | None, vae: str | None) -> None:
    from stable_audio_tools.models.utils import load_ckpt_state_dict

    for path in (ckpt, vae):
        if path and not Path(path).is_file():
            raise CheckpointMismatch(f"checkpoint {path} not found")
    if ckpt:
        try:
            state = load_ckpt_state_dict(ckpt)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
            raise CheckpointMismatch(f"checkpoint {ckpt} cannot be read: {exc}") from None
        check_state_dict(model, state, f"checkpoint {ckpt}")
        model.load_state_dict(state, strict=True)
    if vae:
        state = load_ckpt_state_dict(vae)
        for target in (model.pretransform, model.pretransform.model):
            try:
                check_state_dict(target, state, f"VAE checkpoint {vae}")
            except CheckpointMismatch as exc:
                error = exc
                continue
            target.load_state_dict(state, strict=True)
            break
        else:
            raise error


def _read_rows(path: Path, max_step: int) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return [r for r in csv.DictReader(fh) if int(r["step"]) <= max_step]


def _write_rows(path: Path, rows: list[dict], fields: list[str]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def make_recorder(run_dir: Path, every: int, stop_after: int | None) -> Any:
    """A Lightning callback: loss per optimizer step, validation loss, atomic resumable checkpoints."""
    import pytorch_lightning as pl

    class Recorder(pl.Callback):
        def __init__(self) -> None:
            self.loss_rows: list[dict] = []
            self.val_rows: list[dict] = []
            self.pending: list[float] = []
            self.samples = 0
            self.t0: float | None = None
            self.t1: float | None = None
            self.start_step = 0

        def on_train_start(self, trainer: Any, module: Any) -> None:
            self.start_step = trainer.global_step
            self.loss_rows = _read_rows(run_dir / "loss.csv", self.start_step)
            self.val_rows = _read_rows(run_dir / "val_loss.csv", self.start_step)

        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
            if self.t0 is None:
                self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self.pending.append(float(loss.detach()))
            self.samples += len(batch[0]) * trainer.world_size
            step = trainer.global_step
            if (self.loss_rows and int(self.loss_rows[-1]["step"]) == step) or step == self.start_step:
                return  # still accumulating gradients for this step
            lr = trainer.optimizers[0].param_groups[0]["lr"]
            mean = sum(self.pending) / len(self.pending)
            self.loss_rows.append({"step": step, "loss": f"{mean:.6f}", "lr": f"{lr:.6g}"})
            self.pending = []
            self.t1 = time.perf_counter()
            if step % every == 0:
                self.save(trainer)
            if stop_after is not None and step >= stop_after:
                self.save(trainer)
                print(f"finetune: simulated interruption at step {step}", file=sys.stderr, flush=True)
                os._exit(EXIT_INTERRUPTED)

        def on_validation_epoch_end(self, trainer: Any, module: Any) -> None:
            values = [v for vs in module.validation_step_outputs.values() for v in vs]
            if values and not trainer.sanity_checking:
                mean = sum(values) / len(values)
                self.val_rows.append({"step": trainer.global_step, "val_loss": f"{mean:.6f}"})

        def on_train_end(self, trainer: Any, module: Any) -> None:
            self.save(trainer)

        def save(self, trainer: Any) -> None:
            trainer.save_checkpoint(str(run_dir / "last.tmp.ckpt"))
            if trainer.is_global_zero:
                os.replace(run_dir / "last.tmp.ckpt", run_dir / LAST)
                write_text(run_dir / LAST_STEP, json.dumps({"step": trainer.global_step}) + "\n")
                _write_rows(run_dir / "loss.csv", self.loss_rows, ["step", "loss", "lr"])
                _write_rows(run_dir / "val_loss.csv", self.val_rows, ["step", "val_loss"])

    return Recorder()


def _clip_lists(spec: TrainSpec) -> dict[str, list[dict]]:
    clips = json.loads(Path(spec.clips).read_text(encoding="utf-8"))
    return {s: [c for c in clips if c["split"] == s] for s in ("train", "validation")}


def train(spec: TrainSpec, stop_after: int | None = None) -> TrainResult:
    """One fine-tune run (or its resumption); returns the result the stage records. The steps
    run in this order on purpose: the seed, then the model, the loaders and the wrapper, each
    drawing from the generators the previous ones left (a reordering changes the weights)."""
    compat.apply()
    import pytorch_lightning as pl
    import torch
    from stable_audio_tools.models.factory import create_model_from_config
    from stable_audio_tools.training.factory import create_training_wrapper_from_config

    from pipeline.train import tiny_t5, unwrap

    run_dir = Path(spec.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if spec.tiny_t5:
        tiny_t5.build(Path(spec.tiny_t5))
    config = unwrap.register_t5_dirs(spec.sat_config)
    pl.seed_everything(spec.trainer.seed, workers=True)
    model = create_model_from_config(config)
    load_pretrained(model, spec.pretrained_ckpt, spec.pretrained_vae)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    splits = _clip_lists(spec)
    loaders, train_draws = _loaders(spec, config, model, splits, device)
    wrapper = create_training_wrapper_from_config(config, model)
    recorder = make_recorder(run_dir, spec.trainer.checkpoint_every, stop_after)
    val = loaders.get("validation")
    trainer = _trainer(spec, recorder, has_validation=val is not None, cuda=device == "cuda")
    resumed_from = _fit(trainer, wrapper, loaders["train"], val, recorder, run_dir)
    speed = _speed(recorder, trainer.global_step, resumed_from, run_dir)
    losses = [float(r["loss"]) for r in recorder.loss_rows]
    demos: list[dict[str, Any]] = []
    if trainer.is_global_zero:
        demos = _export(spec, wrapper, splits, config["sample_size"] / config["sample_rate"], device)
    result = TrainResult(
        steps=trainer.global_step,
        resumed_from=resumed_from,
        device=device,
        world_size=trainer.world_size,
        train_clips=len(splits["train"]),
        train_draws_per_epoch=train_draws,
        validation_clips=len(splits["validation"]),
        samples_trained=recorder.samples,
        train_seconds=_train_seconds(recorder),
        parameters=sum(p.numel() for p in model.model.parameters()),
        first_loss=losses[0] if losses else None,
        final_loss=losses[-1] if losses else None,
        final_val_loss=float(recorder.val_rows[-1]["val_loss"]) if recorder.val_rows else None,
        demos=demos,
        **speed,
    )
    if trainer.local_rank == 0:  # one result per node: the stage on every node reads it
        result.write(Path(spec.result))
    return result


def _loaders(
    spec: TrainSpec, config: dict[str, Any], model: Any, splits: dict[str, list[dict]], device: str
) -> tuple[dict[str, Any], int]:
    """A dataloader per split that has clips (from latents encoded once, with spec.pre_encode, or
    from the audio), and the train split's draws per epoch (its clips with their repeats)."""
    from pipeline.train import dataset

    t = spec.trainer
    os.environ[dataset.ENV_INDEX] = spec.clips
    sample_size, sr = config["sample_size"], config["sample_rate"]
    loaders: dict[str, Any] = {}
    train_draws = 0
    for split, clips in splits.items():
        if not clips:
            continue
        drop_last = split == "train" and len(clips) >= t.batch_size
        if spec.pre_encode:
            latent_dir = Path(spec.latents_dir) / split
            done = latent_dir / "done.json"
            if not done.exists():
                print(f"finetune: encoding {len(clips)} {split} clips to latents", file=sys.stderr, flush=True)
                dataset.encode_clips(model, clips, latent_dir, sample_size, device)
                write_text(done, json.dumps({"clips": len(clips)}) + "\n")
            ds_config = dataset.pre_encoded_config(latent_dir, split, drop_last)
        else:
            ds_config = dataset.audio_dir_config(Path(spec.dataset_dir) / split, split, drop_last)
        loaders[split] = compat.make_dataloader(
            ds_config,
            batch_size=t.batch_size,
            sample_size=sample_size,
            sample_rate=sr,
            audio_channels=config["audio_channels"],
            num_workers=t.num_workers,
            shuffle=split == "train",
        )
        if split == "train":
            latents = Path(spec.latents_dir) / split if spec.pre_encode else None
            train_draws = dataset.apply_repeats(loaders[split].dataset, clips, latents)
            if train_draws != len(clips):
                print(f"finetune: {train_draws} train draws per epoch from {len(clips)} clips", file=sys.stderr)
    return loaders, train_draws


def _trainer(spec: TrainSpec, recorder: Any, has_validation: bool, cuda: bool) -> Any:
    """Lightning's Trainer as spec.trainer sets it (CPU: one device, full precision)."""
    import pytorch_lightning as pl

    t = spec.trainer
    return pl.Trainer(
        accelerator="gpu" if cuda else "cpu",
        devices=t.devices if cuda else 1,
        num_nodes=t.num_nodes,
        strategy=t.strategy if cuda else "auto",
        precision=t.precision if cuda else "32-true",
        max_steps=t.max_steps,
        max_epochs=t.max_epochs or -1,
        accumulate_grad_batches=t.accumulate_grad_batches,
        val_check_interval=t.checkpoint_every if has_validation else None,
        check_val_every_n_epoch=None,
        limit_val_batches=t.val_batches if has_validation else 0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[recorder],
        default_root_dir=str(Path(spec.run_dir)),
        log_every_n_steps=1,
    )


def _fit(trainer: Any, wrapper: Any, train: Any, val: Any, recorder: Any, run_dir: Path) -> int | None:
    """Train from the run's last checkpoint when there is one; validate at the final step.
    Returns the step it resumed from (None: a fresh run)."""
    last = run_dir / LAST
    resumed_from = None
    if last.exists():
        resumed_from = int(json.loads((run_dir / LAST_STEP).read_text())["step"])
        print(f"finetune: resuming from step {resumed_from} ({last})", file=sys.stderr, flush=True)
    trainer.fit(wrapper, train, val, ckpt_path=str(last) if last.exists() else None)
    if not recorder.loss_rows:  # the run was complete: nothing trained now, its history is on disk
        recorder.loss_rows = _read_rows(run_dir / "loss.csv", trainer.global_step)
        recorder.val_rows = _read_rows(run_dir / "val_loss.csv", trainer.global_step)
    if val is not None and (not recorder.val_rows or int(recorder.val_rows[-1]["step"]) != trainer.global_step):
        trainer.validate(wrapper, val, verbose=False)  # validation loss at the final step
        recorder.save(trainer)
    return resumed_from


def _train_seconds(recorder: Any) -> float:
    return round((recorder.t1 or 0) - (recorder.t0 or 0), 3)


def _speed(recorder: Any, global_step: int, resumed_from: int | None, run_dir: Path) -> dict[str, float | None]:
    """Samples per second and seconds per step of the steps trained now, or, when none were,
    of the run that trained them (kept beside its checkpoint)."""
    seconds = _train_seconds(recorder)
    if seconds > 0:
        speed: dict[str, float | None] = {
            "samples_per_second": round(recorder.samples / seconds, 4),
            "seconds_per_step": round(seconds / max(1, global_step - (resumed_from or 0)), 4),
        }
        write_text(run_dir / THROUGHPUT, json.dumps(speed) + "\n")
        return speed
    if (run_dir / THROUGHPUT).exists():
        return json.loads((run_dir / THROUGHPUT).read_text())
    return {"samples_per_second": None, "seconds_per_step": None}


def _export(spec: TrainSpec, wrapper: Any, splits: dict[str, list[dict]], window_s: float, device: str) -> list[dict]:
    """Write the inference model and render the demo prompts with it; returns the demos' records."""
    from pipeline.train import demo, unwrap

    model_dir = Path(spec.model_dir)
    unwrap.export(wrapper, spec.sat_config, model_dir, Path(spec.tiny_t5) if spec.tiny_t5 else None)
    d = spec.demos
    items = [
        {"id": c["id"], "prompt": c["prompt"], "seconds": d.seconds or min(c["seconds_total"], window_s)}
        for c in (splits["validation"] or splits["train"])[: d.count]
    ]
    if not items:
        return []
    inference, _ = unwrap.load(model_dir, device)
    demos = demo.write_demos(inference, items, Path(spec.demos_dir), d.steps, d.cfg_scale, spec.trainer.seed, device)
    write_text(Path(spec.demos_dir) / "demos.json", json.dumps(demos, indent=2, sort_keys=True) + "\n")
    return demos


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--spec", required=True, type=Path)
    stop = os.environ.get(ENV_STOP_AFTER)  # lets a test interrupt the stage's training process
    ap.add_argument(
        "--stop-after", type=int, default=int(stop) if stop else None, help="exit after this step (simulated kill)"
    )
    args = ap.parse_args(argv)
    spec = TrainSpec.read(args.spec)
    try:
        train(spec, args.stop_after)
    except CheckpointMismatch as exc:
        print(f"finetune: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The typed hand-off between the finetune stage and its training process (another Python
environment): `TrainSpec` goes in as spec.json, `TrainResult` comes back as result.json. Both
sides import only this module, pydantic and pipeline.io.atomic (standard library only), so the
contract is checked where it is read. The evaluate stage's hand-off (pipeline/evaluate/boundary.py)
is built on the same `HandOff`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict

from pipeline.io.atomic import write_text


class HandOff(BaseModel):
    """A record that crosses a process boundary as JSON, checked where it is read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def write(self, path: Path) -> None:
        """Atomically: a reader never sees half a file, even from a killed writer."""
        write_text(Path(path), json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, path: Path) -> Self:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))


class TrainerSettings(HandOff):
    """What Lightning's Trainer and the loaders get; all of it is part of the run key."""

    seed: int
    batch_size: int
    max_steps: int
    max_epochs: int | None
    checkpoint_every: int
    accumulate_grad_batches: int
    precision: str
    devices: int | Literal["auto"]
    num_nodes: int
    strategy: str
    num_workers: int
    val_batches: int
    source_repeats: dict[str, int] | None = None  # draws per epoch by source, when any is not 1

    def key(self) -> dict[str, Any]:
        """The run key's view: `source_repeats` only when it repeats something (so runs without
        recordings keep the key they had before the field existed)."""
        return self.model_dump(exclude_defaults=True)


class DemoSettings(HandOff):
    count: int
    steps: int
    cfg_scale: float
    seconds: float | None


class TrainSpec(HandOff):
    """Paths and settings, never objects: the training process rebuilds everything from these."""

    config: Literal["tiny", "full"]
    sat_config: dict[str, Any]  # the stable-audio-tools model config
    tiny_t5: str | None
    pretrained_ckpt: str | None
    pretrained_vae: str | None
    pre_encode: bool
    dataset_dir: str
    run_dir: str
    run_key: str
    latents_dir: str
    latent_key: str
    model_dir: str
    demos_dir: str
    clips: str  # clips.json: the accepted clips, with split, prompt and repeat
    result: str  # where the process writes its TrainResult
    trainer: TrainerSettings
    demos: DemoSettings


class TrainResult(HandOff):
    steps: int
    resumed_from: int | None
    device: str
    world_size: int
    train_clips: int
    train_draws_per_epoch: int
    validation_clips: int
    samples_trained: int
    train_seconds: float
    parameters: int
    samples_per_second: float | None
    seconds_per_step: float | None
    first_loss: float | None
    final_loss: float | None
    final_val_loss: float | None
    demos: list[dict[str, Any]] = []

"""The typed hand-off between the evaluate stage and its generation process (.venv-train):
`GenerateSpec` goes in as spec.json, `GenerateResult` comes back. Paths and settings only; both
sides check the contract where they read it (pipeline/train/boundary.py's `HandOff`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.train.boundary import HandOff


class ModelToGenerate(HandOff):
    """One model to generate with: an exported bundle (a directory) or a SAO 1.0 checkpoint file."""

    name: str = Field(min_length=1)
    kind: Literal["bundle", "ckpt"]
    path: str
    t5_dir: str | None
    seconds: float = Field(gt=0)


class PromptToGenerate(HandOff):
    """What generation needs of an evaluation prompt (pipeline/evaluate/grid.py's EvalPrompt)."""

    id: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    seconds: float = Field(gt=0)
    seed: int = Field(ge=0)


class GenerateSpec(HandOff):
    models: list[ModelToGenerate]
    prompts: list[PromptToGenerate]
    audio_dir: str  # <audio_dir>/<model>/<prompt id>.wav
    steps: int = Field(gt=0)
    cfg_scale: float
    batch_size: int = Field(gt=0)
    clap_weights: str | None
    result: str  # where the process writes its GenerateResult


class ModelOutcome(HandOff):
    """One model's generation: its count and speed, or why it did not load; its CLAP score or why not."""

    path: str
    kind: Literal["bundle", "ckpt"]
    error: str | None = None
    generated: int | None = None
    seconds_per_generation: float | None = None
    clap_score: float | None = None
    clap_error: str | None = None


class GenerateResult(HandOff):
    device: str
    models: dict[str, ModelOutcome]

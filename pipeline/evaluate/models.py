"""Which models the evaluation generates with, and the spec the generation process reads.

The first model is always the fine-tune's export (models/finetune/model). The second,
`evaluate.compare_ckpt`, is optional: a Stable Audio Open 1.0 checkpoint file (the
default path is the one the fine-tune starts from) or an exported bundle directory.
When it is absent the evaluation runs on the fine-tune alone and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.evaluate.boundary import GenerateSpec, ModelToGenerate, PromptToGenerate
from pipeline.evaluate.grid import EvalPrompt
from pipeline.params import EvaluateParams

FINETUNE = "finetune"
BUNDLE_CONFIG = "model_config.json"
CLAP_FILE = "laion-clap 630k-audioset-fusion-best.pt"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: Literal["bundle", "ckpt"]
    path: Path


def comparison(p: EvaluateParams, root: Path) -> tuple[ModelEntry | None, str | None]:
    """The comparison model, or None and the note that says why there is none."""
    if not p.compare_ckpt:
        return None, "no comparison model (evaluate.compare_ckpt is null)"
    path = Path(root, p.compare_ckpt)
    if path.is_dir() and (path / BUNDLE_CONFIG).is_file():
        return ModelEntry(p.compare_name, "bundle", path), None
    if path.is_file():
        return ModelEntry(p.compare_name, "ckpt", path), None
    return None, f"comparison model not present: {p.compare_ckpt}"


def clap_weights(p: EvaluateParams, root: Path) -> tuple[Path | None, str | None]:
    """The CLAP weights to score with, or None and the note that says why the score is skipped."""
    if not p.clap_weights:
        return None, f"CLAP score skipped: evaluate.clap_weights is not set ({CLAP_FILE})"
    path = Path(root, p.clap_weights)
    if not path.is_file():
        return None, f"CLAP score skipped: no weights at {p.clap_weights} ({CLAP_FILE})"
    return path, None


def spec(
    p: EvaluateParams,
    models: list[ModelEntry],
    prompts: list[EvalPrompt],
    audio_dir: Path,
    result: Path,
    root: Path,
    clap: Path | None = None,
) -> GenerateSpec:
    t5_dir = str(Path(root, p.t5_dir).resolve()) if p.t5_dir else None
    entries = [
        ModelToGenerate(name=m.name, kind=m.kind, path=str(m.path.resolve()), t5_dir=t5_dir, seconds=p.seconds)
        for m in models
    ]
    return GenerateSpec(
        models=entries,
        prompts=[PromptToGenerate(id=pr.id, prompt=pr.prompt, seconds=pr.seconds, seed=pr.seed) for pr in prompts],
        audio_dir=str(audio_dir.resolve()),
        steps=p.steps,
        cfg_scale=p.cfg_scale,
        batch_size=p.batch_size,
        clap_weights=str(clap.resolve()) if clap is not None else None,
        result=str(result.resolve()),
    )

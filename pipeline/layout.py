"""Where each stage's outputs live: the one place in code that names them.

`dvc.yaml` declares the same paths; tests/test_dvc_yaml.py keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DATA_DIR = "data"
MANIFEST = "manifest.jsonl"
SUMMARY = "summary.json"
FAILURES = "failures.jsonl"

# Stage-specific outputs beside the three every stage writes.
EXTRA_OUTS: dict[str, tuple[str, ...]] = {
    "ingest": ("midi", "truth", "duplicates.jsonl"),
    "recordings": ("audio",),
    "split": ("midi",),
    "render": ("audio",),
    "mix": ("audio",),
    "tag": ("audit",),
    "metadata": (),
    "clip": ("audio", "midi", "audit"),
    "prompts": (),
    "augment": ("dataset", "coverage", "shards"),
    "finetune": ("loss.csv", "val_loss.csv"),
    "evaluate": ("audio", "plots"),
}
STAGES: tuple[str, ...] = tuple(EXTRA_OUTS)
# The upstream manifests each stage reads (dvc.yaml lists the same as deps): a stage
# checks them all before it removes any output of its own.
UPSTREAM: dict[str, tuple[str, ...]] = {
    "ingest": (),
    "recordings": (),
    "split": ("ingest",),
    "render": ("split",),
    "mix": ("render",),
    "tag": ("mix", "split"),
    "metadata": ("tag", "mix"),
    "clip": ("ingest", "split", "render", "mix", "tag", "metadata"),
    "prompts": ("clip",),
    "augment": ("clip", "prompts"),
    "finetune": ("augment",),
    "evaluate": ("clip",),
}
# Outputs under models/<stage>/ (trained models and what training keeps between runs).
MODELS_DIR = "models"
MODEL_OUTS: dict[str, tuple[str, ...]] = {
    "finetune": ("model", "demos", "latents", "checkpoints"),
}


@dataclass(frozen=True)
class StageDir:
    """Paths of one stage's outputs under a repository root."""

    name: str
    root: Path = Path(".")

    @property
    def dir(self) -> Path:
        return self.root / DATA_DIR / self.name

    @property
    def manifest(self) -> Path:
        return self.dir / MANIFEST

    @property
    def summary(self) -> Path:
        return self.dir / SUMMARY

    @property
    def failures(self) -> Path:
        return self.dir / FAILURES

    def out(self, name: str) -> Path:
        """A declared extra output (see EXTRA_OUTS)."""
        if name not in EXTRA_OUTS.get(self.name, ()):
            raise KeyError(f"stage {self.name!r} declares no output {name!r}")
        return self.dir / name

    def model_out(self, name: str) -> Path:
        """A declared output under models/<stage>/ (see MODEL_OUTS)."""
        if name not in MODEL_OUTS.get(self.name, ()):
            raise KeyError(f"stage {self.name!r} declares no model output {name!r}")
        return self.root / MODELS_DIR / self.name / name

    def rel(self, path: Path) -> str:
        """Path relative to the repository root, as manifests store it."""
        return Path(path).relative_to(self.root).as_posix()

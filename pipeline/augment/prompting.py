"""Prompts for dataset items: the prompts stage's text for clips, the same writer for variants.

Variants are Clip-shaped, so the prompts stage's writer (same backends, same
validation against the metadata) writes theirs; no prompt states what a variant's
own labels do not hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.records import Clip, Failure, Prompt, Variant

WriteFn = Callable[[Sequence[Clip]], Any]  # PromptWriter.write: -> PromptBatch(prompts, failures, stats)


@dataclass(frozen=True)
class Prompted:
    items: list[Variant]
    failures: list[Failure]
    stats: dict[str, Any]


def as_clip(v: Variant) -> Clip:
    """The variant's Clip-shaped metadata (what the prompt writer reads)."""
    return Clip.model_validate(v.model_dump(include=set(Clip.model_fields)))


def attach_prompts(
    items: Sequence[Variant], originals: Mapping[str, Prompt], write: WriteFn | None, stage: str = "augment"
) -> Prompted:
    """Originals take their prompt from data/prompts; variants get one from `write`. Items without one fail."""
    failures: list[Failure] = []
    out: list[Variant] = []
    variants = [v for v in items if v.method != "identity"]
    stats: dict[str, Any] = {}
    written: dict[str, Prompt] = {}
    if variants:
        if write is None:
            raise ValueError("variants need a prompt writer")
        batch = write([as_clip(v) for v in variants])
        written = {p.id: p for p in batch.prompts}
        failures += [Failure(id=f.id, stage=stage, reason=f"prompt: {f.reason}") for f in batch.failures]
        stats = batch.stats.as_dict()
    failed = {f.id for f in failures}
    for v in items:
        p = originals.get(v.source_clip) if v.method == "identity" else written.get(v.id)
        if p is None:
            if v.id not in failed:
                where = "data/prompts has none for its clip" if v.method == "identity" else "the writer returned none"
                failures.append(Failure(id=v.id, stage=stage, reason=f"no prompt: {where}"))
            continue
        out.append(v.model_copy(update={"prompt": p.prompt, "prompt_style": p.style}))
    return Prompted(out, failures, stats)

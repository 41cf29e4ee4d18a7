"""Stage `prompts`: one validated text prompt per clip (natural language, tag list or metadata subset).

Reads params `run.seed` and `prompts` and data/clip/manifest.jsonl; writes
data/prompts/{manifest,failures}.jsonl (Prompt records, id = clip id) and
summary.json. With prompts.backend `vllm` or `openai` the natural-style prompts
are written by an LLM (pipeline/prompts/backends.py opens it); re-runs read them
from prompts.cache_dir.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.io.manifest import read_manifest
from pipeline.layout import StageDir
from pipeline.params import Params
from pipeline.prompts.backends import open_backend
from pipeline.prompts.writer import PromptWriter
from pipeline.records import Clip
from stages._runner import StageResult, run_stage


def prompts(params: Params, out: StageDir) -> StageResult:
    p = params.prompts
    clips = list(read_manifest(StageDir("clip", out.root).manifest, Clip))
    try:
        backend = open_backend(p)
    except NotImplementedError as exc:
        raise ConfigError(f"prompts.backend: {exc}") from None
    try:
        writer = PromptWriter(p, params.run.seed, out.root, backend, stage="prompts")
        batch = writer.write(clips)
    finally:
        if backend is not None:
            backend.close()
    s = batch.stats
    summary = {
        "prompts": len(batch.prompts),
        "clips": len(clips),
        "backend": p.backend,
        "model": backend.model if backend is not None else None,
        **s.as_dict(),
    }
    highlights = [
        f"{len(batch.prompts)} prompts ({', '.join(f'{k} {v}' for k, v in s.styles.items()) or 'none'}); "
        f"backend {p.backend}: {s.llm_written} LLM-written, {s.retries} retries, {s.fallbacks} fallbacks; "
        f"{s.cache_hits} from the cache",
    ]
    return StageResult(batch.prompts, batch.failures, summary, highlights, inputs=len(clips))


def main(root: Path | None = None) -> int:
    return run_stage("prompts", prompts, root=root)


if __name__ == "__main__":
    sys.exit(main())

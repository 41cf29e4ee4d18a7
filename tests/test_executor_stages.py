"""The same stages on both engines: local worker processes and Ray tasks (a local Ray
instance with 2 CPUs) write the same manifests and files, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Project
from tests.midi_factory import band, write

STAGES = ("ingest", "split", "render", "mix")


def _run(root: Path, run: dict) -> dict[str, bytes]:
    project = Project(root)
    root.mkdir()
    write(root / "in" / "Band" / "One.mid", band(bars=4))
    write(root / "in" / "Band" / "Two.mid", band(bars=3, tempos=[(0, 400_000), (4 * 480, 600_000)], key="E"))
    project.params(run=run, ingest={"source": "dir", "path": "in"})
    for stage in STAGES:
        assert project.run(stage) == 0, stage
    data = root / "data"
    return {p.relative_to(data).as_posix(): p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_local_and_ray_write_identical_bytes(tmp_path):
    local = _run(tmp_path / "local", {"workers": 2, "executor": "local"})
    ray = _run(tmp_path / "ray", {"workers": 2, "executor": "ray", "ray": {"address": ""}, "item_timeout_s": 600})
    assert sorted(ray) == sorted(local)
    assert [k for k in local if ray[k] != local[k]] == []
    assert {f"{s}/manifest.jsonl" for s in STAGES} <= set(local)
    assert any(k.startswith("render/audio/") for k in local) and any(k.endswith("mix.flac") for k in local)

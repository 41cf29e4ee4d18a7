"""A stage never loses what is already produced: inputs are checked before any
output is removed, and files that killed workers left half-written never stay in
a stage's outputs."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import pytest

from pipeline.io.atomic import atomic_open
from pipeline.layout import StageDir
from pipeline.parallel import map_items
from pipeline.params import Params
from pipeline.records import Failure
from stages._runner import StageResult, run_stage


def _previous_outputs(out: StageDir) -> list[Path]:
    """Outputs of an earlier run: a manifest and a big audio file."""
    files = [out.manifest, out.dir / "audio" / "s1" / "mix.flac"]
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"earlier run's output")
    return files


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_missing_upstream_manifest_keeps_outputs_and_names_the_stage(project, caplog):
    kept = _previous_outputs(project.out("mix"))
    assert project.run("mix") == 2
    assert all(f.read_bytes() == b"earlier run's output" for f in kept)
    (message,) = _errors(caplog)
    assert "\n" not in message
    assert "data/render/manifest.jsonl not found" in message and "run the render stage first" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"id": "s1", "tracks": [', "manifest.jsonl:1: not JSON"),  # a truncated write
        ('{"id": "s1", "colour": "red"}\n', "manifest.jsonl:1: not a valid RenderSong"),
    ],
)
def test_corrupt_upstream_manifest_keeps_outputs(project, caplog, content, expected):
    kept = _previous_outputs(project.out("mix"))
    render = project.out("render").manifest
    render.parent.mkdir(parents=True)
    render.write_text(content)
    assert project.run("mix") == 2
    assert all(f.read_bytes() == b"earlier run's output" for f in kept)
    (message,) = _errors(caplog)
    assert "\n" not in message and expected in message and "re-run the render stage" in message


def test_missing_input_folder_keeps_ingest_outputs(project, caplog):
    out = project.out("ingest")
    kept = [out.manifest, out.out("midi") / "s1.mid"]
    for f in kept:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"earlier")
    project.params(ingest={"source": "dir", "path": "no/such/folder"})
    assert project.run("ingest") == 2
    assert all(f.read_bytes() == b"earlier" for f in kept)
    (message,) = _errors(caplog)
    assert "no/such/folder does not exist (param ingest.path)" in message


def test_contradicting_params_stop_before_removing_anything(project, caplog):
    kept = _previous_outputs(project.out("tag"))
    project.params(tag={"timbre": {"dark_centroid_hz": 3000.0, "bright_centroid_hz": 2000.0}})
    assert project.run("tag") == 2
    assert all(f.read_bytes() == b"earlier run's output" for f in kept)
    assert "dark_centroid_hz must be below bright_centroid_hz" in "\n".join(_errors(caplog))


def write_or_die(job: tuple[str, str]) -> str:
    """Write one output atomically; the item named 'dies' is SIGKILLed mid-write."""
    path, name = job
    with atomic_open(Path(path), "wb") as fh:
        fh.write(b"x" * 4096)
        fh.flush()
        if name == "dies":
            os.kill(os.getpid(), signal.SIGKILL)
    return path


def test_worker_killed_mid_write_leaves_no_temp_file_in_outputs(project, caplog):
    caplog.set_level(logging.WARNING)

    def body(params: Params, out: StageDir) -> StageResult:
        folder = out.out("midi")
        folder.mkdir(parents=True)
        items = [(n, (str(folder / f"{n}.mid"), n)) for n in ("a", "dies", "b")]
        outcomes = map_items(write_or_die, items, 2, desc="test")
        failures = [Failure(id=o.item_id, stage="ingest", reason=o.error or "") for o in outcomes if not o.ok]
        return StageResult([], failures, {}, inputs=0)

    assert run_stage("ingest", body, root=project.root) == 0
    out = project.out("ingest")
    files = sorted(p.relative_to(out.dir).as_posix() for p in out.dir.rglob("*") if p.is_file())
    assert files == ["failures.jsonl", "manifest.jsonl", "midi/a.mid", "midi/b.mid", "summary.json"]
    failure = out.failures.read_text()
    assert '"id":"dies"' in failure and "SIGKILL" in failure
    assert any("removed 1 temp file(s) left by killed workers" in r.getMessage() for r in caplog.records)

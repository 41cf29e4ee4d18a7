"""The prompts stage end to end on a clip manifest built from Clip records (the stage reads only it)."""

from __future__ import annotations

import json
import logging

from pipeline.io.manifest import read_manifest, write_manifest
from pipeline.prompts.attributes import clip_facts
from pipeline.prompts.validate import check_prompt
from pipeline.records import Prompt
from tests.clip_factory import instrument, make_clip


def _clips():
    clips = [make_clip(i, key=("A minor", "F# major", None)[i % 3], bpm=90 + i) for i in range(24)]
    clips.append(make_clip(99, instruments=[instrument(81, role="arpeggio", contour="rising")], kind="stem"))
    return clips


def test_stage_writes_valid_prompts_deterministically(project):
    clips = _clips()
    write_manifest(project.out("clip").manifest, clips)
    project.params(prompts={"cache_dir": str(project.root / "cache")})
    assert project.run("prompts") == 0
    out = project.out("prompts")
    prompts = list(read_manifest(out.manifest, Prompt))
    assert sorted(p.id for p in prompts) == sorted(c.id for c in clips)
    facts = {c.id: clip_facts(c) for c in clips}
    assert all(check_prompt(p.prompt, facts[p.id]) == [] for p in prompts)
    summary = json.loads(out.summary.read_text())
    assert summary["prompts"] == 25 and summary["backend"] == "template" and summary["failures"] == 0
    assert summary["valid_first_try"] == 25 and summary["retries"] == 0 and summary["fallbacks"] == 0
    assert sum(summary["styles"].values()) == 25 and len(summary["styles"]) == 3
    assert summary["cache_hits"] == 0
    first = out.manifest.read_bytes()
    assert out.failures.read_text() == ""

    # Re-run: every prompt from the cache, the same bytes.
    assert project.run("prompts") == 0
    assert out.manifest.read_bytes() == first
    assert json.loads(out.summary.read_text())["cache_hits"] == 25

    # Without the cache: still the same bytes.
    project.params(prompts={"cache_dir": str(project.root / "cache2")})
    assert project.run("prompts") == 0
    assert out.manifest.read_bytes() == first

    # Another seed: other prompts.
    project.params(run={"seed": 99})
    assert project.run("prompts") == 0
    assert out.manifest.read_bytes() != first


def test_bad_prompts_params_stop_the_stage(project, caplog):
    write_manifest(project.out("clip").manifest, _clips())
    project.params(prompts={"styles": {"natural": 0, "tags": 0, "subset": 0}})
    assert project.run("prompts") == 2
    (message,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "'prompts.styles'" in message and "at least one style needs a ratio > 0" in message
    assert not project.out("prompts").manifest.exists()

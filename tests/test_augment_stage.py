"""The augment stage end to end on real clips: dataset layout and sidecars, prompts from the writer,
no leakage across splits, byte-identical re-runs that come from the cache, shards, failures."""

from __future__ import annotations

import hashlib
import json
import logging
import tarfile
from pathlib import Path

import pytest

from pipeline.io.manifest import read_manifest, write_manifest
from pipeline.records import Failure, Variant
from tests.augment_factory import PARAMS, clicks, make_clip, progression, prompt_for

AXES = {"key", "bpm", "fx", "timbre"}


def _inputs(root: Path) -> list:
    clips = [
        make_clip(root, progression(bars=4), bars=4, n=0),
        make_clip(root, progression(bars=4), bars=4, n=0, stem=1),
        make_clip(root, progression(bars=4, root=62), bars=4, n=1, key="D major", mido_key="D"),
        make_clip(root, progression(bars=4, root=57), bars=4, key="A major", mido_key="A", split="validation",
                  song="aug-band__other-song__d4e5f6"),
    ]  # fmt: skip
    write_manifest(root / "data/clip/manifest.jsonl", clips)
    write_manifest(root / "data/prompts/manifest.jsonl", [prompt_for(c) for c in clips])
    return clips


def _digest(root: Path) -> dict[str, str]:
    out = {}
    for folder in ("data/augment/dataset", "data/augment/coverage", "data/augment/shards"):
        for f in sorted((root / folder).rglob("*")):
            if f.is_file():
                out[f.relative_to(root).as_posix()] = hashlib.sha256(f.read_bytes()).hexdigest()
    out["manifest"] = hashlib.sha256((root / "data/augment/manifest.jsonl").read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """Two runs of the stage on the same inputs (the second from the cache)."""
    from tests.conftest import Project

    project = Project(tmp_path_factory.mktemp("augment"))
    project.params(run={"workers": 1}, augment={"max_variants_per_clip": 4, "max_variants_per_phrase": 6,
                                                "shards": {"enabled": True, "max_items": 4}})  # fmt: skip
    clips = _inputs(project.root)
    assert project.run("augment") == 0
    first = (_digest(project.root), json.loads(project.out("augment").summary.read_text()))
    assert project.run("augment") == 0
    second = (_digest(project.root), json.loads(project.out("augment").summary.read_text()))
    return project, clips, first, second


def test_dataset_layout_sidecars_and_summary(ran):
    project, clips, (_, summary), _ = ran
    root = project.root
    items = list(read_manifest(project.out("augment").manifest, Variant))
    variants = [v for v in items if v.method != "identity"]
    assert summary["originals"] == len(clips) and summary["variants"] == len(variants) > len(clips)
    assert set(summary["by_axis"]) == AXES and summary["failures"] == 0
    assert summary["hours"] == pytest.approx(sum(v.seconds_total for v in items) / 3600, abs=1e-4)
    for v in items:
        assert (root / v.audio).is_file() and v.audio.endswith(".wav")
        side = json.loads((root / v.sidecar).read_text())
        assert Path(v.sidecar).with_suffix(".wav").as_posix() == v.audio
        assert v.audio.startswith(f"data/augment/dataset/{v.split}/{v.song_id}/")
        for key in ("prompt", "seconds_start", "seconds_total", "id", "split", "key", "bpm", "fx", "transforms"):
            assert key in side
        assert side["prompt"] and side["id"] == v.id
    originals = {v.source_clip: v for v in items if v.method == "identity"}
    assert {c.id for c in clips} == set(originals)
    assert originals[clips[0].id].prompt == prompt_for(clips[0]).prompt  # the prompts stage's text


def test_variants_stay_in_their_clips_split(ran):
    project, clips, _, _ = ran
    split_of = {c.id: c.split for c in clips}
    items = list(read_manifest(project.out("augment").manifest, Variant))
    assert {v.split for v in items} == {"train", "validation"}
    for v in items:
        assert v.split == split_of[v.source_clip], v.id
        assert v.id.startswith(v.source_clip + "/")


def test_rerun_is_byte_identical_and_all_from_the_cache(ran):
    _, _, (digest1, summary1), (digest2, summary2) = ran
    assert digest1 == digest2
    assert summary1["cache_hits"] == 0 and summary1["rendered_parts"] > 0
    assert summary2["cache_hits"] == summary2["variants"] and summary2["rendered_parts"] == 0


def test_shards_hold_every_item_in_webdataset_naming(ran):
    project, _, (_, summary), _ = ran
    index = json.loads((project.out("augment").out("shards") / "index.json").read_text())
    assert summary["shards"] == len(index["shards"]) >= 2
    names = []
    for entry in index["shards"]:
        with tarfile.open(project.out("augment").out("shards") / entry["shard"]) as tar:
            members = tar.getmembers()
            assert all(m.mtime == 0 for m in members)
            names += [m.name for m in members]
    keys = {n.rsplit(".", 1)[0] for n in names}
    assert len(names) == 2 * len(keys) == 2 * summary["items"]
    assert all("." not in k for k in keys)


def test_a_bad_clip_is_a_failure_not_a_stop(project):
    clips = _inputs(project.root)
    (project.root / clips[2].audio).unlink()
    (project.root / clips[2].midi).unlink()
    project.params(augment={"max_variants_per_clip": 1})
    assert project.run("augment") == 0
    failures = list(read_manifest(project.out("augment").failures, Failure))
    assert failures and all(f.id.startswith(clips[2].id + "/") for f in failures)
    assert any("clip audio missing" in f.reason for f in failures)
    items = list(read_manifest(project.out("augment").manifest, Variant))
    assert {v.source_clip for v in items} == {clips[0].id, clips[1].id, clips[3].id}


def test_a_near_silent_variant_is_dropped_with_its_reason(project):
    """The only effect a low-pass at 20 Hz: a woodblock loop comes out near-silent, and is dropped."""
    clip = make_clip(project.root, clicks(), bars=4, key=None, mido_key=None)
    write_manifest(project.root / "data/clip/manifest.jsonl", [clip])
    write_manifest(project.root / "data/prompts/manifest.jsonl", [prompt_for(clip)])
    effects = {name: {"enabled": name == "lowpass"} for name in PARAMS.augment.fx.effects}
    effects["lowpass"]["levels"] = {"medium": {"cutoff_frequency_hz": 20.0}}
    project.params(augment={"bpm": {"enabled": False}, "timbre": {"enabled": False},
                            "fx": {"effects": effects}})  # fmt: skip
    assert project.run("augment") == 0
    failures = list(read_manifest(project.out("augment").failures, Failure))
    assert [f.id for f in failures] == [f"{clip.id}/fx-lowpass"]
    assert failures[0].reason.startswith("dropped: near-silent:") and "clip.silence_lufs -40" in failures[0].reason
    summary = json.loads(project.out("augment").summary.read_text())
    assert summary["dropped"] == 1 and summary["dropped_reasons"] == {"near-silent": 1}
    items = list(read_manifest(project.out("augment").manifest, Variant))
    assert [v.id for v in items] == [f"{clip.id}/orig"]  # the clip itself stays; nothing of the variant
    assert not list((project.root / "data/augment/dataset").rglob("*fx-lowpass*"))


def test_bad_augment_params_stop_before_any_work(project, caplog):
    """With its inputs in place, a bad FX level stops the stage with exit 2 and one message naming
    the key (an unknown level: by the params model; a value pedalboard rejects: by a probe)."""
    _inputs(project.root)

    def stopped() -> str:
        caplog.clear()
        assert project.run("augment") == 2
        (message,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert not project.out("augment").manifest.exists()
        return message

    project.params(augment={"fx": {"effects": {"reverb": {"levels": {"huge": {"room_size": 0.5}}}}}})
    message = stopped()
    assert "'augment.fx.effects.reverb.levels'" in message and "levels ['huge'] unknown" in message
    project.params(augment={"fx": {"effects": {"bitcrush": {"levels": {"medium": {"bit_depth": -1}}}}}})
    message = stopped()
    assert "augment.fx.effects.bitcrush.levels.medium" in message and "Bit depth must be between" in message

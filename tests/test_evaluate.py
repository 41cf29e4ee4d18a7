"""Stage `evaluate` end to end on a tiny exported model (random weights, real
stable-audio-tools sampler in .venv-train, CPU) and test clips of known tempo and key."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from pipeline.evaluate.report import EvalItem
from pipeline.io.manifest import read_manifest, write_manifest
from tests.clip_factory import make_clip
from tests.conftest import REPO
from tests.test_evaluate_metrics import chord_loop, clicks

TRAIN_PYTHON = REPO / ".venv-train/bin/python"
pytestmark = pytest.mark.slow
CLIPS = (("A minor", 120.0), ("C major", 100.0))


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> object:
    if not TRAIN_PYTHON.exists():
        pytest.fail("the training environment is missing: run `make train-env`")
    out = tmp_path_factory.mktemp("bundle") / "model"
    proc = subprocess.run(
        [str(TRAIN_PYTHON), str(REPO / "tests/evaluate_factory.py"), str(out)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _test_clips(root) -> None:
    """Two test-split mix clips of known key and BPM (chords + a click track), and one train clip."""
    clips = []
    for n, (key, bpm) in enumerate(CLIPS):
        clip = make_clip(n, split="test", key=key, bpm=bpm, seconds_total=8.0, genre_tags=["rock"])
        n_samples = 8 * 44100
        parts = [chord_loop(key, bpm, bars=4), clicks(bpm, 8.0)]
        mono = sum(0.5 * np.pad(x, (0, max(0, n_samples - len(x))))[:n_samples] for x in parts)
        path = root / clip.audio
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.stack([mono, mono], axis=1), 44100, subtype="PCM_16")
        clips.append(clip)
    clips.append(make_clip(2, split="train", key="D major", bpm=90.0))  # never evaluated
    write_manifest(root / "data/clip/manifest.jsonl", clips)


def _params(project, **evaluate) -> None:
    base = {
        "python": str(TRAIN_PYTHON),
        "seconds": 2.0,
        "steps": 4,
        "tempo": {"deeprhythm_weights": "models/deeprhythm/deeprhythm-0.7.pth", "essentia_method": "degara"},
        "grid": {"tempo_step": 40, "key_prompts_per_key": 1, "dataset_clips": 2},
    }
    project.params(run={"workers": 1, "item_timeout_s": 0}, evaluate={**base, **evaluate})


@pytest.fixture
def ev(project, tiny_bundle):
    shutil.copytree(tiny_bundle, project.root / "models/finetune/model")
    _test_clips(project.root)
    _params(project)
    return project


def _summary(project) -> dict:
    return json.loads(project.out("evaluate").summary.read_text())


def _digests(root) -> dict[str, str]:
    folder = root / "data/evaluate"
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_tiny_model_against_a_comparison_bundle_end_to_end(ev):
    root = ev.root
    shutil.copytree(root / "models/finetune/model", root / "models/base")  # the same weights: no difference
    _params(ev, compare_ckpt="models/base", compare_name="base")
    assert ev.run("evaluate") == 0
    s = _summary(ev)
    assert s["evaluated_models"] == ["finetune", "base"] and s["comparison"] == "base"
    assert s["tempo_estimator"] == "essentia (deeprhythm weights not found at models/deeprhythm/deeprhythm-0.7.pth)"
    assert s["prompts"] == {"tempo": 6, "key": 24, "dataset": 6} and s["failures"] == 0
    assert any("CLAP score skipped" in n for n in s["notes"])
    ft = s["models"]["finetune"]
    assert ft["reference_protocol"]["tempo"]["n"] == 6 and ft["reference_protocol"]["key"]["n"] == 24
    assert set(ft["by_style"]) == {"natural", "tags", "subset"}
    assert set(ft["by_genre"]) == {"rock", "jazz", "hip hop", "pop"}
    for metric in ("tempo_acc1_2pct", "tempo_acc2_2pct", "tempo_acc1_4pct", "key_exact", "key_only", "key_weighted"):
        value = s["table"]["finetune"][metric]
        assert 0.0 <= value <= 1.0, metric
        assert s["differences"]["finetune_minus_base"][metric] == 0.0, metric  # same weights, same seeds
    assert s["table"]["published_stable_audio_open"]["tempo_acc1_2pct"] == 0.747
    # The test clips' labels against their audio: rendered at known truth, so 1.0.
    real = s["test_clips"]["labels_vs_audio"]
    assert real["tempo"]["n"] == 2 and real["tempo"]["acc1_4pct"] == 1.0 and real["key"]["exact"] == 1.0

    items = list(read_manifest(ev.out("evaluate").manifest, EvalItem))
    assert len(items) == 2 * 36 + 2
    gen = next(i for i in items if i.id == "finetune/tempo/rock-075bpm")
    assert gen.prompt == "rock track, 75 BPM" and gen.target_bpm == 75.0 and "essentia" in gen.tempo_bpm
    info = sf.info(str(root / gen.audio))
    assert info.samplerate == 44100 and info.channels == 2 and info.frames == 2 * 44100
    assert (root / "data/evaluate/audio/base/tempo/rock-075bpm.wav").read_bytes() == (root / gen.audio).read_bytes()
    plots = root / "data/evaluate/plots"
    assert (plots / "tempo_finetune.csv").read_text().startswith("id,requested_bpm,measured_bpm\n")
    assert "test-clips: rock" in (plots / "genre_key.csv").read_text()

    first = _digests(root)
    assert ev.run("evaluate") == 0  # same inputs, same bytes
    assert _digests(root) == first


def test_missing_comparison_model_is_a_note_not_a_failure(ev):
    _params(ev, grid={"tempo_step": 85, "key_prompts_per_key": 0, "dataset_clips": 0})
    assert ev.run("evaluate") == 0
    s = _summary(ev)
    assert "comparison model not present: models/pretrained/stable-audio-open-1.0/model.safetensors" in s["notes"]
    assert s["evaluated_models"] == ["finetune"] and s["comparison"] is None and s["differences"] == {}
    assert s["prompts"] == {"tempo": 4, "key": 0, "dataset": 0}
    assert (ev.root / "data/evaluate/plots/tempo_comparison.csv").read_text() == "id,requested_bpm,measured_bpm\n"


def test_a_comparison_model_that_does_not_load_is_recorded_and_the_fine_tune_still_evaluated(ev):
    broken = ev.root / "models/broken"
    shutil.copytree(ev.root / "models/finetune/model", broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    _params(ev, compare_ckpt="models/broken", compare_name="broken", grid={"tempo_step": 85, "key_prompts_per_key": 0})
    assert ev.run("evaluate") == 0
    s = _summary(ev)
    assert s["evaluated_models"] == ["finetune"] and s["failures"] == 1
    assert any(n.startswith("broken: did not load") for n in s["notes"])
    failure = json.loads(ev.out("evaluate").failures.read_text().splitlines()[0])
    assert failure["id"] == "broken" and "model did not load" in failure["reason"]


def test_missing_model_or_clips_stop_before_any_work(ev, caplog):
    shutil.rmtree(ev.root / "models/finetune/model")
    assert ev.run("evaluate") == 2
    assert "models/finetune/model: no exported model (run the finetune stage first)" in caplog.text
    ev.out("clip").manifest.unlink()
    assert ev.run("evaluate") == 2
    assert "data/clip/manifest.jsonl not found: run the clip stage first" in caplog.text


def test_bad_params_name_the_key(ev, caplog):
    _params(ev, grid={"tempo_template": "{genre} track"})
    assert ev.run("evaluate") == 2
    assert "evaluate.grid" in caplog.text and "tempo_template must contain {bpm}" in caplog.text

"""Stage `finetune` end to end: .venv runs the stage, which trains the tiny config in
.venv-train on clips in the augment stage's layout (real stable-audio-tools, CPU)."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import soundfile as sf

from pipeline.io.manifest import read_manifest
from pipeline.train.clips import TrainClip, manifest_items, scan
from tests.clip_dataset import make_dataset, write_clip
from tests.conftest import REPO

TRAIN_PYTHON = REPO / ".venv-train/bin/python"
pytestmark = pytest.mark.slow


def _params(project, **finetune) -> None:
    """A 2 s window and a 4-step smoke run (each call starts again from the repository's params)."""
    base = {
        "python": str(TRAIN_PYTHON),
        "num_workers": 0,
        "smoke": {"max_steps": 4, "checkpoint_every": 2},
        "demos": {"count": 1},
    }
    project.params(run={"workers": 1}, clip={"window_s": 2.0}, finetune={**base, **finetune})


@pytest.fixture
def ft(project):
    if not TRAIN_PYTHON.exists():
        pytest.fail("the training environment is missing: run `make train-env`")
    _params(project)
    return project


def _summary(project) -> dict:
    return json.loads(project.out("finetune").summary.read_text())


def _loss_steps(project) -> list[int]:
    with project.out("finetune").out("loss.csv").open() as fh:
        return [int(r["step"]) for r in csv.DictReader(fh)]


def test_tiny_smoke_trains_on_clips_and_records_bad_ones(ft):
    root = ft.root
    make_dataset(root, train=4, validation=2)
    write_clip(root, "train", "band__bad__000001", "no-prompt", 1.0, 220.0, prompt="")
    write_clip(root, "train", "band__bad__000001", "too-long", 2.5, 220.0)
    write_clip(root, "train", "band__bad__000001", "no-seconds", 1.0, 220.0, seconds_total=None)
    _, sidecar = write_clip(root, "train", "band__bad__000001", "no-sidecar", 1.0, 220.0)
    sidecar.unlink()
    broken, _ = write_clip(root, "validation", "band__bad__000002", "broken", 1.0, 220.0)
    broken.write_bytes(b"RIFF not really")

    assert ft.run("finetune") == 0
    s = _summary(ft)
    assert s["config"] == "tiny" and s["config_reason"].startswith("auto: no GPU")
    assert s["steps"] == 4 and s["pre_encoded"] is False and s["resumed_from"] is None
    assert isinstance(s["final_loss"], float) and s["samples_per_second"] > 0
    assert s["train_clips"] == 4 and s["validation_clips"] == 2 and s["sample_size"] == 90112
    assert _loss_steps(ft) == [1, 2, 3, 4]

    failures = {json.loads(x)["id"]: json.loads(x)["reason"] for x in ft.out("finetune").failures.open()}
    base = "data/augment/dataset/{}/band__bad__00000{}/{}"
    assert "non-empty string" in failures[base.format("train", 1, "no-prompt")]
    assert "longer than the 2 s training window" in failures[base.format("train", 1, "too-long")]
    assert "'seconds_total' must be a number" in failures[base.format("train", 1, "no-seconds")]
    assert "no JSON sidecar" in failures[base.format("train", 1, "no-sidecar")]
    assert "audio unreadable" in failures[base.format("validation", 2, "broken")]
    clips = list(read_manifest(ft.out("finetune").manifest, TrainClip))
    assert len(clips) == 6 and all("bad" not in c.id for c in clips)

    model = root / "models/finetune/model"
    assert {p.name for p in model.iterdir()} == {"model_config.json", "model.safetensors", "t5"}
    demo = sf.info(str(root / "models/finetune/demos/demo_00.wav"))
    assert demo.samplerate == 44100 and demo.channels == 2 and demo.duration == pytest.approx(1.5)
    demos = json.loads((root / "models/finetune/demos/demos.json").read_text())
    assert demos[0]["prompt"] == clips[-2].prompt  # the first validation clip's prompt
    assert list((root / "models/finetune/checkpoints").glob("*/last.ckpt"))


def test_interrupted_run_resumes_from_its_last_checkpoint(ft, monkeypatch):
    make_dataset(ft.root, train=2, validation=1)
    monkeypatch.setenv("M2F_FINETUNE_STOP_AFTER", "2")
    assert ft.run("finetune") == 1  # the training process was killed after step 2
    assert len(list((ft.root / "models/finetune/checkpoints").glob("*/last.ckpt"))) == 1
    monkeypatch.delenv("M2F_FINETUNE_STOP_AFTER")
    assert ft.run("finetune") == 0
    s = _summary(ft)
    assert s["resumed_from"] == 2 and s["steps"] == 4
    assert _loss_steps(ft) == [1, 2, 3, 4]
    val = ft.out("finetune").out("val_loss.csv").read_text()
    # A re-run of the finished run trains nothing and keeps its history and figures.
    assert ft.run("finetune") == 0
    again = _summary(ft)
    assert again["resumed_from"] == 4 and _loss_steps(ft) == [1, 2, 3, 4]
    assert ft.out("finetune").out("val_loss.csv").read_text() == val
    for key in ("first_loss", "final_loss", "final_val_loss", "samples_per_second", "seconds_per_step"):
        assert again[key] == s[key], key


def test_pre_encoded_path_trains_and_keeps_latents_across_param_changes(ft):
    make_dataset(ft.root, train=3, validation=1)
    _params(ft, pre_encode=True)
    assert ft.run("finetune") == 0
    s = _summary(ft)
    assert s["pre_encoded"] is True and s["steps"] == 4
    (latents,) = (ft.root / "models/finetune/latents").iterdir()
    npy = sorted((latents / "train").glob("*.npy"))
    assert len(npy) == 3 and len(list((latents / "validation").glob("*.npy"))) == 1
    mtimes = [p.stat().st_mtime_ns for p in npy]
    run_key = s["run_key"]

    _params(ft, pre_encode=True, lr=1e-4)  # a training param: a fresh run, the same latents
    assert ft.run("finetune") == 0
    s = _summary(ft)
    assert s["run_key"] != run_key and s["resumed_from"] is None
    assert [p.stat().st_mtime_ns for p in sorted((latents / "train").glob("*.npy"))] == mtimes
    assert [d.name for d in (ft.root / "models/finetune/checkpoints").iterdir()] == [s["run_key"]]


def test_recordings_and_renders_train_together_at_the_share_asked_for(ft):
    """4 rendered train clips (6 s) and 1 recorded one (1.5 s): a 0.5 share repeats the recording 4 times,
    the training process draws 8 items per epoch, and changing the share is a new run."""
    make_dataset(ft.root, train=4, validation=1)
    write_clip(ft.root, "train", "unknown__take__abc999", "c000", 1.5, 300.0, recording=True)
    write_clip(ft.root, "validation", "unknown__take2__abc998", "c000", 1.5, 310.0, recording=True)
    _params(ft, recordings_share=0.5)
    assert ft.run("finetune") == 0
    s = _summary(ft)
    assert s["steps"] == 4 and s["train_clips"] == 5 and s["validation_clips"] == 2
    assert s["source_repeats"] == {"midi": 1, "recording": 4}
    assert s["train_hours_by_source"] == {"midi": round(6 / 3600, 4), "recording": round(1.5 / 3600, 4)}
    assert s["recordings_share"] == pytest.approx(0.5, abs=0.01) and s["recordings_share_target"] == 0.5
    assert s["train_draws_per_epoch"] == 8  # what the training process's dataset holds
    run_key = s["run_key"]

    _params(ft)  # no share: every clip once, a different run
    assert ft.run("finetune") == 0
    s = _summary(ft)
    assert s["source_repeats"] == {"midi": 1, "recording": 1} and s["train_draws_per_epoch"] == 5
    assert s["recordings_share"] == pytest.approx(0.2, abs=0.01) and s["run_key"] != run_key


def test_full_config_without_checkpoint_stops_with_how_to_get_it(ft, caplog):
    make_dataset(ft.root, train=1, validation=0)
    _params(ft, config="full", pretrained_ckpt="models/pretrained/missing.safetensors")
    assert ft.run("finetune") == 2
    assert "pretrained checkpoint is not found at 'models/pretrained/missing.safetensors'" in caplog.text
    assert "huggingface.co/stabilityai/stable-audio-open-1.0" in caplog.text
    assert not (ft.root / "models/finetune/checkpoints").exists()


def test_missing_dataset_is_a_config_error(ft, caplog):
    make_dataset(ft.root, train=1, validation=0)
    shutil.rmtree(ft.out("augment").out("dataset"))
    assert ft.run("finetune") == 2
    assert "data/augment/dataset: no training dataset" in caplog.text


def test_missing_manifest_is_a_config_error(ft, caplog):
    make_dataset(ft.root, train=1, validation=0)
    ft.out("augment").manifest.unlink()
    assert ft.run("finetune") == 2
    assert "data/augment/manifest.jsonl not found: run the augment stage first" in caplog.text


def test_clips_are_the_manifest_items_never_a_glob(tmp_path):
    make_dataset(tmp_path, train=2, validation=1)
    wav = tmp_path / "data/augment/dataset/train/band__song-0__abc120/c000.wav"
    for ext in (".wav", ".json"):  # a stray item the manifest does not list
        shutil.copyfile(wav.with_suffix(ext), wav.with_name("stray").with_suffix(ext))
    clips, failures = scan(manifest_items(tmp_path), tmp_path, 2.0)
    assert [(c.split, c.id) for c in clips] == [
        ("train", "band__song-0__abc120/c000"),
        ("train", "band__song-1__abc121/c001"),
        ("validation", "band__val__def456/c000"),
    ]
    assert not failures

"""The training process on tiny real clips: it learns, exports a bundle that reloads
and generates, the 20 s full config builds, and a bad checkpoint stops it first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from pipeline.layout import StageDir
from pipeline.params import parse_params
from pipeline.train import run, spec, unwrap
from pipeline.train.boundary import TrainResult
from pipeline.train.clips import manifest_items, scan
from pipeline.train.configs import derive, latent_length
from tests.clip_dataset import write_clip

STEPS = 120


def _spec(root: Path, t5: Path, **finetune) -> spec.TrainSpec:
    params = parse_params({"clip": {"window_s": 2.0}, "finetune": {"num_workers": 0, **finetune}})
    dataset_dir = StageDir("augment", root).out("dataset")
    clips, failures = scan(manifest_items(root), root, 2.0)
    assert not failures
    s = spec.build(params, StageDir("finetune", root), "tiny", clips, dataset_dir)
    # the session's tiny T5 (built once)
    s = s.model_copy(update={"tiny_t5": str(t5), "sat_config": derive("tiny", 2.0, params.finetune, str(t5))})
    spec.write_inputs(s, root, clips)
    return s


@pytest.fixture(scope="module")
def overfit(tmp_path_factory, tiny_t5_dir, compat_applied) -> tuple[Path, spec.TrainSpec, TrainResult]:
    """One clip, pre-encoded (the tiny VAE is random: its latents are fixed only once encoded),
    a high learning rate, no warmup, no EMA: the loss must fall."""
    root = tmp_path_factory.mktemp("overfit")
    write_clip(root, "train", "band__one__abc123", "c000", 1.8, 330.0)
    write_clip(root, "validation", "band__val__abc124", "c000", 1.8, 440.0)
    s = _spec(
        root,
        tiny_t5_dir,
        pre_encode=True,
        lr=3e-3,
        warmup=0.0,
        ema=False,
        cfg_dropout=0.0,
        smoke={"max_steps": STEPS, "batch_size": 2, "checkpoint_every": STEPS // 2},
        demos={"count": 1, "seconds": 1.0},
    )
    return root, s, run.train(s)


def _v_loss(model, latents: torch.Tensor, cond_md: list[dict]) -> float:
    """The v-objective loss at fixed timesteps and fixed noise: a low-variance measure of fit."""
    from stable_audio_tools.inference.sampling import get_alphas_sigmas

    gen = torch.Generator().manual_seed(0)
    total = []
    with torch.no_grad():
        cond = model.conditioner(cond_md, "cpu")
        for t in torch.linspace(0.1, 0.9, 9):
            for _ in range(4):
                noise = torch.randn(latents.shape, generator=gen)
                alpha, sigma = get_alphas_sigmas(t.reshape(1))
                noised = latents * alpha + noise * sigma
                out = model(noised, t.reshape(1), cond=cond, cfg_dropout_prob=0.0)
                total.append(((out - (noise * alpha - latents * sigma)) ** 2).mean().item())
    return sum(total) / len(total)


def test_tiny_config_overfits_one_clip(overfit):
    import numpy as np
    import pytorch_lightning as pl
    from stable_audio_tools.models.factory import create_model_from_config

    _, s, result = overfit
    assert result.steps == STEPS
    rows = (Path(s.run_dir) / "loss.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, STEPS + 1))
    assert result.final_val_loss is not None and result.samples_per_second > 0
    latent_dir = Path(s.latents_dir) / "train"
    assert sorted(p.name for p in latent_dir.iterdir()) == [
        "band__one__abc123__c000.json",
        "band__one__abc123__c000.npy",
        "done.json",
    ]
    latents = torch.from_numpy(np.load(latent_dir / "band__one__abc123__c000.npy"))[None]
    md = json.loads((latent_dir / "band__one__abc123__c000.json").read_text())
    cond_md = [{k: md[k] for k in ("prompt", "seconds_start", "seconds_total")}]
    pl.seed_everything(s.trainer.seed)  # the same initial weights as the run
    initial = create_model_from_config(unwrap.register_t5_dirs(s.sat_config)).eval()
    trained, _ = unwrap.load(Path(s.model_dir))
    before, after = _v_loss(initial, latents, cond_md), _v_loss(trained, latents, cond_md)
    assert after < 0.8 * before, (before, after)


def test_unwrapped_bundle_reloads_and_generates_the_requested_length(overfit):
    from pipeline.train.demo import generate

    _, s, result = overfit
    model_dir = Path(s.model_dir)
    config = json.loads((model_dir / unwrap.CONFIG).read_text())
    assert config["sample_size"] == 90112 and "training" not in config
    assert [c["config"]["t5_model_name"] for c in config["model"]["conditioning"]["configs"] if c["type"] == "t5"] == [
        "t5"
    ]
    model, _ = unwrap.load(model_dir)  # strict: every weight fits
    audio = generate(model, "soft tone at 330 Hz", 1.25, steps=4, cfg_scale=3.0, seed=1, device="cpu")
    assert audio.shape == (2, round(1.25 * 44100))
    assert torch.isfinite(audio).all()
    assert result.demos[0]["file"] == "demo_00.wav"
    assert (Path(s.demos_dir) / "demo_00.wav").stat().st_size > 44100 * 4


def test_full_config_builds_for_a_20_s_window(tiny_t5_dir, compat_applied):
    """The SAO 1.0 architecture at 20 s: 882,688 samples, 431 latents; built with empty weights."""
    from accelerate import init_empty_weights
    from stable_audio_tools.models.factory import create_model_from_config

    params = parse_params({})
    config = unwrap.register_t5_dirs(derive("full", params.clip.window_s, params.finetune, str(tiny_t5_dir)))
    assert config["sample_size"] == 882688 and latent_length(config) == 431
    assert config["training"]["optimizer_configs"]["diffusion"]["optimizer"]["config"]["lr"] == 5e-5
    with init_empty_weights():  # parameters on the meta device: no 4.5 GB of float32
        model = create_model_from_config(config)
    assert len(model.model.model.transformer.layers) == 24
    assert 1.0e9 < sum(p.numel() for p in model.model.parameters()) < 1.2e9
    assert model.pretransform.downsampling_ratio == 2048 and model.io_channels == 64


def test_mismatched_checkpoint_stops_before_training(tmp_path, tiny_t5_dir, compat_applied, capsys):
    write_clip(tmp_path, "train", "band__one__abc123", "c000", 1.0, 330.0)
    s = _spec(tmp_path, tiny_t5_dir)
    bogus = tmp_path / "sao.safetensors"
    save_file({"model.model.transformer.layers.0.weight": torch.zeros(3)}, str(bogus))
    s = s.model_copy(update={"pretrained_ckpt": str(bogus)})
    path = Path(s.run_dir) / "spec.json"
    s.write(path)
    assert run.main(["--spec", str(path)]) == run.EXIT_CONFIG
    err = capsys.readouterr().err
    assert f"checkpoint {bogus} does not fit the model config" in err and "missing" in err and "unexpected" in err
    assert not (Path(s.run_dir) / run.LAST).exists()

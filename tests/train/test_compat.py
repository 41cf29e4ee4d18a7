"""One test per stable-audio-tools 0.0.19 fix in pipeline/train/compat.py."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.conftest import REPO


def _fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("module", "fix", "works"),
    [
        ("torchaudio", "torchaudio_importable", "torchaudio.transforms.Resample(44100, 8000)(torch.zeros(1, 441))"),
        ("torchvision", "torchvision_importable", "__import__('k_diffusion').sampling.get_sigmas_karras(4, 0.1, 10)"),
    ],
)
def test_cuda_only_wheels_import_on_this_torch(module, fix, works):
    """Fixes 1 and 2: without the fix the import fails on a CPU torch; with it the pure-Python parts work."""
    bare = _fresh(f"import {module}")
    fixed = _fresh(f"import torch\nfrom pipeline.train import compat\ncompat.{fix}()\nimport {module}\nprint({works})")
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    if bare.returncode == 0:
        pytest.skip(f"{module} imports natively here (CUDA machine): the fix is a no-op")
    assert "Error" in bare.stderr


def _sample_dataset(tmp_path, compat_applied, rate=22050, seconds=0.5, sample_size=32768):
    from stable_audio_tools.data.dataset import LocalDatasetConfig, SampleDataset

    t = np.arange(int(rate * seconds)) / rate
    sf.write(tmp_path / "a.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate, subtype="PCM_16")
    return SampleDataset([LocalDatasetConfig("x", str(tmp_path))], sample_size=sample_size, sample_rate=44100)


def test_audio_loads_with_soundfile_and_resamples(tmp_path, compat_applied):
    """Fix 3: torchaudio.load needs torchcodec; the dataset reads with soundfile, then resamples."""
    assert "soundfile_audio_loading" in compat_applied
    ds = _sample_dataset(tmp_path, compat_applied)
    audio = ds.load_file(str(tmp_path / "a.wav"))
    assert audio.shape == (1, 22050)  # 0.5 s at 44.1 kHz, mono as stored
    audio, info = ds[0]
    assert audio.shape == (2, 32768) and info["seconds_total"] == 1


def test_padding_mask_is_a_list_as_the_training_step_reads_it(tmp_path, compat_applied):
    """Fix 4: training_step stacks md['padding_mask'][0]; audio_dir items now give a list of one mask."""
    ds = _sample_dataset(tmp_path, compat_applied)
    _, info = ds[0]
    assert isinstance(info["padding_mask"], list)
    mask = info["padding_mask"][0]
    assert mask.shape == (32768,) and mask[:22050].all() and not mask[22050:].any()


def test_inverse_lr_builds_on_current_torch(compat_applied):
    """Fix 5: InverseLR passed `verbose` to LRScheduler (TypeError on torch >= 2.7)."""
    from stable_audio_tools.training.utils import create_scheduler_from_config

    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = create_scheduler_from_config(
        {"type": "InverseLR", "config": {"inv_gamma": 10.0, "power": 0.5, "warmup": 0.5}}, opt
    )
    for _ in range(3):
        opt.step()
        sched.step()
    expected = (1 - 0.5**4) * (1 + 3 / 10.0) ** -0.5
    assert sched.get_last_lr()[0] == pytest.approx(expected)


def test_dataloader_without_workers(tmp_path, compat_applied):
    """Fix 6: the factory always asks for persistent workers (ValueError with num_workers=0)."""
    from stable_audio_tools.data.dataset import create_dataloader_from_config

    from pipeline.train.compat import make_dataloader

    sf.write(tmp_path / "a.wav", np.zeros((4410, 2), np.float32) + 0.1, 44100)
    config = {"dataset_type": "audio_dir", "datasets": [{"id": "x", "path": str(tmp_path)}], "drop_last": False}
    kwargs = {"batch_size": 1, "sample_size": 4096, "sample_rate": 44100, "num_workers": 0}
    with pytest.raises(ValueError, match="persistent_workers"):
        create_dataloader_from_config(config, **kwargs)
    audio, _ = next(iter(make_dataloader(config, **kwargs)))
    assert audio.shape == (1, 2, 4096)


def test_lightning_resumes_its_own_checkpoints(tmp_path, compat_applied):
    """Fix 7: torch.load's weights_only default rejects a checkpoint's non-tensor state."""
    from lightning_fabric.utilities import cloud_io

    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"w": torch.ones(1)}, "loops": {"rng": np.random.RandomState(0)}}, path)
    with pytest.raises(Exception, match="weights_only"):
        torch.load(path)
    assert cloud_io._load(str(path))["state_dict"]["w"].item() == 1.0


def test_local_t5_directory_conditions_prompts(tiny_t5_dir):
    """T5Conditioner accepts hub names only; a registered local directory loads and encodes."""
    from stable_audio_tools.models.conditioners import T5Conditioner

    from pipeline.train.compat import register_local_t5
    from pipeline.train.unwrap import t5_dim

    register_local_t5(str(tiny_t5_dir), t5_dim(tiny_t5_dir))
    cond = T5Conditioner(output_dim=64, t5_model_name=str(tiny_t5_dir), max_length=16)
    embeddings, mask = cond(["warm piano chord progression, 120 BPM", "drums"], "cpu")
    assert embeddings.shape == (2, 16, 64) and mask.shape == (2, 16)  # projected to output_dim
    assert mask[1].sum() < mask[0].sum()

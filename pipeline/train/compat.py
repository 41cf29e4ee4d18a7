"""Fixes that let stable-audio-tools 0.0.19 run with torch 2.13 and on CPU.

Each fix works around one bug or environment problem of the PyPI release that
upstream fixed (or that a CUDA machine never hits), applies only where needed,
is idempotent and has its own test in tests/train/test_compat.py. `apply()`
must run before stable_audio_tools is imported.

1. torchaudio_importable: PyPI's torchaudio is a CUDA build; on a CPU torch its
   native library raises OSError on import, and stable-audio-tools imports
   torchaudio at module level. Import it with the native extension marked
   unavailable (only pure-Python parts are used: transforms.Resample).
2. torchvision_importable: torchvision (pulled in by k-diffusion, imported by
   the samplers) is a CUDA build too and fails registering `torchvision::nms`
   fake kernels when its native ops are missing. Define the two op schemas it
   registers against, so the pure-Python package imports.
3. soundfile_audio_loading: SampleDataset.load_file calls torchaudio.load,
   which needs torchcodec (a CUDA build here). Read with soundfile instead;
   resampling stays torchaudio's pure-torch Resample.
4. padding_mask_as_list: the training step reads `md["padding_mask"][0]`
   (the web-dataset shape), but SampleDataset (audio_dir) yields a bare tensor,
   so the mask collapses to one number. Wrap it in a list as the other datasets do.
5. inverse_lr_without_verbose: InverseLR passes `verbose` positionally to
   LRScheduler.__init__, which torch >= 2.7 no longer accepts (TypeError).
6. dataloader_without_workers: create_dataloader_from_config always passes
   persistent_workers=True (ValueError with num_workers=0) and pin_memory=True
   (a warning without CUDA). `make_dataloader` drops both where they cannot apply.
7. trusted_checkpoint_loading: Lightning 2.1 resumes with a bare torch.load,
   whose weights_only default (torch >= 2.6) rejects its own checkpoints'
   non-tensor state. Checkpoints resumed here are the ones this run wrote.

Not patched, avoided: train.py (hard-codes a GPU accelerator and a removed
`--num-gpus`; run.py builds its own Trainer) and the demo callback (needs
wandb and `num_demos == len(demo_cond)`; demo.py generates after training).
The T5 conditioner only accepts hub names; `register_local_t5` lets it load a
local directory (the tiny T5, or a downloaded t5-base).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from pipeline.torchaudio_cpu import import_torchaudio

APPLIED: list[str] = []
_TORCHVISION_LIB: Any = None  # keeps the op-schema library alive


def _purge(prefix: str) -> None:
    for name in [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]:
        del sys.modules[name]


def torchaudio_importable() -> bool:
    """Fix 1. Returns True when the fix was needed."""
    return import_torchaudio()[1]


def torchvision_importable() -> bool:
    """Fix 2. Returns True when the fix was needed."""
    global _TORCHVISION_LIB
    try:
        import torchvision

        return False
    except (RuntimeError, OSError, ImportError):
        _purge("torchvision")
    import torch

    _TORCHVISION_LIB = torch.library.Library("torchvision", "DEF")
    _TORCHVISION_LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _TORCHVISION_LIB.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision  # noqa: F401

    return True


def read_audio(path: str) -> tuple[Any, int]:
    """(channels, samples) float32 tensor and its rate, read with soundfile."""
    import soundfile as sf
    import torch

    data, sr = sf.read(path, dtype="float32", always_2d=True)
    return torch.from_numpy(data.T.copy()), int(sr)


def soundfile_audio_loading() -> bool:
    """Fix 3."""
    from stable_audio_tools.data import dataset as sat_dataset

    if getattr(sat_dataset.SampleDataset.load_file, "_m2f", False):
        return False

    def load_file(self: Any, filename: str) -> Any:
        audio, in_sr = read_audio(filename)
        if in_sr != self.sr:
            audio = sat_dataset.T.Resample(in_sr, self.sr)(audio)
        return audio

    load_file._m2f = True  # type: ignore[attr-defined]
    sat_dataset.SampleDataset.load_file = load_file
    return True


def padding_mask_as_list() -> bool:
    """Fix 4."""
    from stable_audio_tools.data import dataset as sat_dataset

    original = sat_dataset.SampleDataset.__getitem__
    if getattr(original, "_m2f", False):
        return False

    def getitem(self: Any, idx: int) -> Any:
        audio, info = original(self, idx)
        mask = info.get("padding_mask")
        if mask is not None and not isinstance(mask, list):
            info["padding_mask"] = [mask]
        return audio, info

    getitem._m2f = True  # type: ignore[attr-defined]
    sat_dataset.SampleDataset.__getitem__ = getitem
    return True


def inverse_lr_without_verbose() -> bool:
    """Fix 5."""
    import torch
    from stable_audio_tools.training import utils as sat_utils

    cls = sat_utils.InverseLR
    if getattr(cls.__init__, "_m2f", False):
        return False

    def __init__(
        self: Any,
        optimizer: Any,
        inv_gamma: float = 1.0,
        power: float = 1.0,
        warmup: float = 0.0,
        final_lr: float = 0.0,
        last_epoch: int = -1,
        verbose: bool = False,
    ) -> None:
        self.inv_gamma = inv_gamma
        self.power = power
        if not 0.0 <= warmup < 1:
            raise ValueError("Invalid value for warmup")
        self.warmup = warmup
        self.final_lr = final_lr
        torch.optim.lr_scheduler.LRScheduler.__init__(self, optimizer, last_epoch)

    __init__._m2f = True  # type: ignore[attr-defined]
    cls.__init__ = __init__
    return True


@contextlib.contextmanager
def _loader_args_that_apply() -> Iterator[None]:
    import torch
    import torch.utils.data

    base = torch.utils.data.DataLoader

    class Loader(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if not kwargs.get("num_workers"):
                kwargs["persistent_workers"] = False
            if not torch.cuda.is_available():
                kwargs["pin_memory"] = False
            super().__init__(*args, **kwargs)

    torch.utils.data.DataLoader = Loader
    try:
        yield
    finally:
        torch.utils.data.DataLoader = base


def make_dataloader(dataset_config: dict, **kwargs: Any) -> Any:
    """Fix 6: stable-audio-tools' dataloader factory, with worker/pinning args that apply here."""
    from stable_audio_tools.data.dataset import create_dataloader_from_config

    with _loader_args_that_apply():
        return create_dataloader_from_config(dataset_config, **kwargs)


def trusted_checkpoint_loading() -> bool:
    """Fix 7."""
    import torch
    from lightning_fabric.utilities import cloud_io

    original = cloud_io._load
    if getattr(original, "_m2f", False):
        return False

    def _load(path_or_url: Any, map_location: Any = None) -> Any:
        real_load = torch.load

        def load(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("weights_only", False)
            return real_load(*args, **kwargs)

        torch.load = load
        try:
            return original(path_or_url, map_location=map_location)
        finally:
            torch.load = real_load

    _load._m2f = True  # type: ignore[attr-defined]
    cloud_io._load = _load
    from lightning_fabric.plugins.io import torch_io
    from pytorch_lightning.core import saving

    torch_io.pl_load = _load  # both imported it by name
    saving.pl_load = _load
    return True


def register_local_t5(directory: str, dim: int) -> None:
    """Let T5Conditioner load a local T5 directory (it accepts hub names only)."""
    from stable_audio_tools.models.conditioners import T5Conditioner

    if directory not in T5Conditioner.T5_MODELS:
        T5Conditioner.T5_MODELS.append(directory)
    T5Conditioner.T5_MODEL_DIMS[directory] = dim


def apply() -> list[str]:
    """Apply every fix that is needed; returns the names of those applied now."""
    done = []
    for fix in (
        torchaudio_importable,
        torchvision_importable,
        soundfile_audio_loading,
        padding_mask_as_list,
        inverse_lr_without_verbose,
        trusted_checkpoint_loading,
    ):
        if fix():
            done.append(fix.__name__)
    APPLIED.extend(done)
    return done

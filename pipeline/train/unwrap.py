"""The inference bundle: model_config.json + model.safetensors (the EMA weights when
EMA is on), plus the tiny T5 when the model uses it, and loading it back.

The bundle is what stable-audio-tools' own inference (`create_model_from_config`
+ `load_ckpt_state_dict`) reads; a local T5 directory inside it is referenced by
its name relative to the bundle, so the folder can be moved as a whole.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

CONFIG = "model_config.json"
WEIGHTS = "model.safetensors"
T5_DIR = "t5"


def _t5_conds(config: dict) -> list[dict]:
    return [c["config"] for c in config["model"]["conditioning"]["configs"] if c["type"] == "t5"]


def t5_dim(directory: Path) -> int:
    return int(json.loads((directory / "config.json").read_text())["d_model"])


def register_t5_dirs(config: dict, base: Path | None = None) -> dict:
    """Point T5 conditioners at local directories (made absolute) and let stable-audio-tools load them."""
    from pipeline.train.compat import register_local_t5

    config = copy.deepcopy(config)
    for cond in _t5_conds(config):
        name = cond["t5_model_name"]
        for cand in ([base / name] if base is not None else []) + [Path(name)]:
            if cand.is_dir():
                cond["t5_model_name"] = str(cand.resolve())
                register_local_t5(cond["t5_model_name"], t5_dim(cand))
                break
    return config


def export(wrapper: Any, config: dict, out_dir: Path, bundle_t5: Path | None) -> Path:
    """Write the bundle from a trained DiffusionCondTrainingWrapper (rank 0 only)."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    wrapper.export_model(str(out_dir / WEIGHTS), use_safetensors=True)
    (out_dir / WEIGHTS).chmod(0o644)
    config = copy.deepcopy(config)
    config.pop("training", None)
    if bundle_t5 is not None:
        shutil.copytree(bundle_t5, out_dir / T5_DIR, ignore=shutil.ignore_patterns("built.json"))
        for cond in _t5_conds(config):
            cond["t5_model_name"] = T5_DIR
    (out_dir / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out_dir


def load(model_dir: Path, device: str = "cpu") -> tuple[Any, dict]:
    """(model, config) from a bundle, strictly: every weight must fit."""
    from pipeline.train import compat

    compat.apply()
    from stable_audio_tools.models.factory import create_model_from_config
    from stable_audio_tools.models.utils import load_ckpt_state_dict

    config = json.loads((model_dir / CONFIG).read_text(encoding="utf-8"))
    model = create_model_from_config(register_t5_dirs(config, model_dir))
    model.load_state_dict(load_ckpt_state_dict(str(model_dir / WEIGHTS)), strict=True)
    return model.to(device).eval().requires_grad_(False), config

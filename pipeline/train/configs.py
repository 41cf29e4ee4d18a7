"""Model configs: the Stable Audio Open 1.0 architecture and a tiny one of the same
structure (models/configs/), with sample_size and the training section derived
from params; and which of the two trains here.

Runs in both environments (no torch).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pipeline.errors import ConfigError
from pipeline.params import FinetuneParams

SAMPLE_RATE = 44100
DOWNSAMPLING = 2048  # the Oobleck VAE's total stride: sample_size must be a multiple
CONFIG_DIR = Path("models/configs")
REPO = Path(__file__).resolve().parents[2]  # the configs travel with this code (a dvc.yaml dependency)
CONFIG_FILES = {"full": "stable_audio_open_1.0.json", "tiny": "tiny.json"}
ConfigName = Literal["tiny", "full"]
CHECKPOINT_HELP = (
    "Stable Audio Open 1.0 is gated on the Hugging Face hub: accept its licence at "
    "https://huggingface.co/stabilityai/stable-audio-open-1.0, download model.safetensors "
    "(e.g. `huggingface-cli download stabilityai/stable-audio-open-1.0 model.safetensors "
    "--local-dir models/pretrained/stable-audio-open-1.0`) and set finetune.pretrained_ckpt to it"
)


def window_samples(window_s: float, sample_rate: int = SAMPLE_RATE, multiple: int = DOWNSAMPLING) -> int:
    """The training window in samples, rounded up to the VAE's stride (20 s -> 882,688)."""
    return math.ceil(round(window_s * sample_rate) / multiple) * multiple


def load_base(name: ConfigName) -> dict[str, Any]:
    return json.loads((REPO / CONFIG_DIR / CONFIG_FILES[name]).read_text(encoding="utf-8"))


def training_section(p: FinetuneParams, pre_encoded: bool) -> dict[str, Any]:
    """stable-audio-tools' `training` block: AdamW + InverseLR + EMA as SAO and Foundation-1 trained."""
    return {
        "use_ema": p.ema,
        "log_loss_info": False,
        "pre_encoded": pre_encoded,
        "cfg_dropout_prob": p.cfg_dropout,
        "optimizer_configs": {
            "diffusion": {
                "optimizer": {
                    "type": "AdamW",
                    "config": {"lr": p.lr, "betas": list(p.betas), "weight_decay": p.weight_decay},
                },
                "scheduler": {
                    "type": "InverseLR",
                    "config": {"inv_gamma": p.inv_gamma, "power": p.lr_power, "warmup": p.warmup},
                },
            }
        },
    }


def derive(name: ConfigName, window_s: float, p: FinetuneParams, t5_model: str) -> dict:
    """The full model config for this run: base architecture + window + T5 location + training."""
    config = copy.deepcopy(load_base(name))
    config["sample_size"] = window_samples(window_s, config["sample_rate"])
    for cond in config["model"]["conditioning"]["configs"]:
        if cond["type"] == "t5":
            cond["config"]["t5_model_name"] = t5_model
    config["training"] = training_section(p, p.pre_encode)
    return config


def latent_length(config: dict) -> int:
    return config["sample_size"] // config["model"]["pretransform"]["config"]["downsampling_ratio"]


@dataclass(frozen=True)
class Choice:
    config: ConfigName
    reason: str


def choose(p: FinetuneParams, gpus: int, root: Path = Path(".")) -> Choice:
    """Which config trains here, and why. A full run without its checkpoint is a config error."""
    ckpt = Path(root, p.pretrained_ckpt) if p.pretrained_ckpt else None
    have_ckpt = ckpt is not None and ckpt.is_file()
    if p.config == "tiny":
        return Choice("tiny", "finetune.config is tiny")
    if p.config == "full":
        if not have_ckpt:
            where = f"not found at {p.pretrained_ckpt!r}" if p.pretrained_ckpt else "not set"
            raise ConfigError(f"finetune.config is full but the pretrained checkpoint is {where}. {CHECKPOINT_HELP}")
        note = "" if gpus else " (no GPU: this will be very slow)"
        return Choice("full", f"finetune.config is full{note}")
    if gpus and have_ckpt:
        return Choice("full", f"auto: {gpus} GPU(s) and the pretrained checkpoint {p.pretrained_ckpt}")
    missing = []
    if not gpus:
        missing.append("no GPU")
    if not have_ckpt:
        missing.append(
            f"no pretrained checkpoint at {p.pretrained_ckpt!r}" if p.pretrained_ckpt else "no checkpoint set"
        )
    return Choice("tiny", f"auto: {' and '.join(missing)}, so the tiny CPU smoke config trains (see README)")

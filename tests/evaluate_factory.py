"""A tiny exported model bundle, as the finetune stage exports it (model_config.json +
model.safetensors + t5/), with seeded random weights and no training.

Run with the training environment's Python: `.venv-train/bin/python tests/evaluate_factory.py OUT_DIR`.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def build(out_dir: Path, window_s: float = 2.0, seed: int = 0) -> Path:
    from pipeline.train import compat

    compat.apply()
    import torch
    from safetensors.torch import save_file
    from stable_audio_tools.models.factory import create_model_from_config

    from pipeline.params import parse_params
    from pipeline.train import tiny_t5, unwrap
    from pipeline.train.configs import derive

    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    t5 = tiny_t5.build(out_dir.parent / f".{out_dir.name}-t5")
    params = parse_params({"clip": {"window_s": window_s}})
    config = derive("tiny", window_s, params.finetune, str(t5))
    torch.manual_seed(seed)
    model = create_model_from_config(unwrap.register_t5_dirs(config))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out_dir / unwrap.WEIGHTS))
    shutil.copytree(t5, out_dir / unwrap.T5_DIR, ignore=shutil.ignore_patterns("built.json"))
    config = copy.deepcopy(config)
    config.pop("training", None)
    for cond in config["model"]["conditioning"]["configs"]:
        if cond["type"] == "t5":
            cond["config"]["t5_model_name"] = unwrap.T5_DIR
    (out_dir / unwrap.CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    unwrap.load(out_dir)  # strict: every weight fits
    return out_dir


if __name__ == "__main__":
    build(Path(sys.argv[1]))

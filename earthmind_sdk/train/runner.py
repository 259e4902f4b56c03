"""Recipe runner for ``job: train`` (``job: quickstart`` lives in :mod:`.quickstart`)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import RecipeError
from ..plugins import registry
from .trainer import Trainer, TrainConfig


def prepare_output(out: dict[str, Any], source: str) -> Path:
    """The output folder; refuses to mix results into a non-empty one unless asked."""
    path = Path(out["dir"])
    if path.exists() and any(path.iterdir()) and not out.get("overwrite"):
        raise RecipeError(f"{source}: output.dir: {path} is not empty; choose another folder "
                          "or set output.overwrite=true")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _dist_init() -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _train_config(cfg: dict[str, Any], seed: int) -> TrainConfig:
    t = dict(cfg)
    t["betas"] = tuple(t.get("betas", (0.9, 0.999)))
    t["freeze"] = tuple(t.get("freeze", ()))
    return TrainConfig(seed=seed, **t)


def run_train_recipe(config: dict[str, Any], *, source: str) -> dict[str, Any]:
    from ..checkpoint import save
    from ..loading import open_model

    _dist_init()
    out = prepare_output(config["output"], source) if _is_main() else Path(config["output"]["dir"])
    torch.manual_seed(config["seed"])
    m = config["model"]
    model, tokenizer = open_model(m["spec"], checkpoint=m["checkpoint"], dtype=m["dtype"], device=m["device"])
    data = registry("datasets").build(config["data"]["dataset"], **config["data"]["args"])
    trainer = Trainer(model, tokenizer, _train_config(config["train"], config["seed"]))
    history = trainer.fit(data, log_path=out / "train_log.jsonl")
    summary = {"steps": len(history), "world_size": trainer.world, "first": history[0], "last": history[-1]}
    if _is_main():
        if config["train"].get("lora"):
            model.language_model = model.language_model.merge_and_unload()
        save(model, out / "checkpoint", tokenizer=tokenizer)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        from ..plots import loss_curve

        loss_curve(history, out / "loss_curve.png")
        summary["checkpoint"] = str(out / "checkpoint")
    return summary

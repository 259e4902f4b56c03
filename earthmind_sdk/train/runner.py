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


def run_train_recipe(config: dict[str, Any], *, source: str, progress: Any = None) -> dict[str, Any]:
    from ..checkpoint import save
    from ..jobs import interruptible, open_job_folder
    from ..loading import open_model

    _dist_init()
    run = open_job_folder(config, job="train", source=source, progress=progress) if _is_main() else None
    out = run.path if run is not None else Path(config["output"]["dir"])
    torch.manual_seed(config["seed"])
    m = config["model"]
    model, tokenizer = open_model(m["spec"], checkpoint=m["checkpoint"], dtype=m["dtype"], device=m["device"])
    data = registry("datasets").build(config["data"]["dataset"], **config["data"]["args"])
    trainer = Trainer(model, tokenizer, _train_config(config["train"], config["seed"]))
    if run is not None:
        run.record("train_log.jsonl")
    with interruptible("train", kept=str(out / "train_log.jsonl")):
        history = trainer.fit(data, log_path=out / "train_log.jsonl", progress=progress)
    summary = {"steps": len(history), "world_size": trainer.world, "first": history[0], "last": history[-1]}
    if run is not None:
        if config["train"].get("lora"):
            model.language_model = model.language_model.merge_and_unload()
        save(model, out / "checkpoint", tokenizer=tokenizer)
        run.record_tree("checkpoint")
        from ..plots import loss_curve

        run.record(loss_curve(history, out / "loss_curve.png").name)
        summary["checkpoint"] = str(out / "checkpoint")
        run.write_json("summary.json", summary)
        run.finish(summary=summary)
    return summary

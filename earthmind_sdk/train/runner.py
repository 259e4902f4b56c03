"""Recipe runners for ``job: train`` and ``job: quickstart``."""
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
    from ..jobs.shard import current_world

    current_world()  # starts the process group under torchrun


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
        summary["checkpoint"] = str(out / "checkpoint")
        run.write_json("summary.json", summary)
        run.finish(summary=summary)
    return summary


def run_quickstart_recipe(config: dict[str, Any], *, source: str, progress: Any = None) -> dict[str, Any]:
    """Train the tiny paired SAR + optical EarthMind on generated scenes, evaluate it on
    held-out scenes before and after, save it as an HF-format checkpoint."""
    from ..checkpoint import save
    from ..eval.records import evaluate_records
    from ..inference.pipeline import Pipeline
    from ..loading import open_model
    from ..jobs import interruptible, open_job_folder
    from .data import SyntheticScenes

    run = open_job_folder(config, job="quickstart", source=source, progress=progress)
    out = run.path
    torch.manual_seed(config["seed"])
    m = config["model"]
    model, tokenizer = open_model(m["spec"], checkpoint=m["checkpoint"], dtype=m["dtype"], device=m["device"])
    d = config["data"]
    sensors = tuple(model.spec.sensors)
    train = SyntheticScenes(d["train_scenes"], size=d["size"], seed=config["seed"], sensors=sensors)
    held_out = list(SyntheticScenes(d["eval_scenes"], size=d["size"], seed=config["seed"] + 10_000,
                                    sensors=sensors))
    run.record("train_log.jsonl")
    with interruptible("quickstart", kept=str(out)):
        before = evaluate_records(Pipeline(model, tokenizer), held_out, batch_size=16, progress=progress,
                                  desc="eval before training")
        trainer = Trainer(model, tokenizer, _train_config(config["train"], config["seed"]))
        history = trainer.fit(train, log_path=out / "train_log.jsonl", progress=progress)
        after = evaluate_records(Pipeline(model, tokenizer), held_out, batch_size=16, progress=progress,
                                 desc="eval after training")
    save(model, out / "checkpoint", tokenizer=tokenizer)
    run.record_tree("checkpoint")
    examples = _write_examples(out / "examples", d["size"], config["seed"] + 10_000)
    run.record_tree("examples")
    summary = {
        "train": {"steps": len(history), "seconds": history[-1]["elapsed_s"],
                  "loss_first": {k: v for k, v in history[0].items() if k in ("lm", "mask", "dice")},
                  "loss_last": {k: v for k, v in history[-1].items() if k in ("lm", "mask", "dice")}},
        "eval_before_training": before,
        "eval_after_training": after,
        "checkpoint": str(out / "checkpoint"),
        "examples": examples,
    }
    run.write_json("summary.json", summary)
    run.finish(summary=summary)
    return summary


def _write_examples(folder: Path, size: int, seed: int) -> list[dict[str, str]]:
    """Two held-out scenes as GeoTIFFs, to try ``earthmind infer`` on the trained checkpoint."""
    from ..io import write_raster
    from .data import scene_rasters
    from .synthetic import make_scenes

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i, scene in enumerate(make_scenes(2, seed=seed, size=size)):
        pair = {}
        for sensor, raster in scene_rasters(scene, i).items():
            pair[sensor] = str(write_raster(folder / f"scene{i}_{sensor}.tif", raster))
        written.append(pair)
    return written

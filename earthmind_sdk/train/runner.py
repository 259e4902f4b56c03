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


def resumable_recipe(config: dict[str, Any]) -> dict[str, Any]:
    """The recipe as its run is identified: without the keys that say how to continue it."""
    out = json.loads(json.dumps(config, default=str))
    out.get("train", {}).pop("resume", None)
    out.get("output", {}).pop("overwrite", None)
    return out


def _open_run(config: dict[str, Any], world: int):
    """Rank 0 opens the run folder (refusing a different recipe on resume); every rank learns
    the outcome, so a refusal ends all of them with the same one line."""
    from ..errors import EarthMindError
    from ..jobs import open_run_folder

    run, error = None, None
    if _is_main():
        try:
            run = open_run_folder(config["output"]["dir"], job="train", recipe=resumable_recipe(config),
                                  checkpoint=config["model"]["checkpoint"], resume=config["train"]["resume"],
                                  overwrite=config["output"].get("overwrite", False))
        except EarthMindError as exc:
            error = exc
    if world > 1:
        import torch.distributed as dist

        box = [str(error) if error else None]
        dist.broadcast_object_list(box, src=0)
        if box[0] and error is None:
            raise RecipeError(box[0])
    if error is not None:
        raise error
    return run


def _metrics_writer(run, enabled: bool):
    """A callable writing each step's numbers to TensorBoard (None when off or not installed)."""
    if run is None or not enabled:
        return None, None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None, None
    writer = SummaryWriter(str(run.file("tensorboard")))

    def write(logged: dict[str, Any]) -> None:
        for k, v in logged.items():
            if k not in ("step", "elapsed_s") and isinstance(v, (int, float)):
                writer.add_scalar(f"train/{k}", v, logged["step"])
    return write, writer


def run_train_recipe(config: dict[str, Any], *, source: str) -> dict[str, Any]:
    """Fine-tune as the recipe says, in ``output.dir``: ``run.json``, ``train_log.jsonl``,
    TensorBoard events, periodic ``checkpoints/step-<N>``, and at the end ``checkpoint/``
    (LoRA merged, the published HF layout), ``loss.png`` and ``summary.json``."""
    from ..checkpoint import save
    from ..jobs import announce, atomic_dir
    from ..loading import open_model

    _dist_init()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    t = config["train"]
    run = _open_run(config, world)
    out = Path(config["output"]["dir"])
    if t["resume"] and (out / "summary.json").is_file() and (out / "checkpoint").is_dir():
        announce(f"train: {out} holds a finished run; nothing to resume")
        return json.loads((out / "summary.json").read_text())
    if run is not None:
        announce(f"train: writing to {run.path}")
    torch.manual_seed(config["seed"])
    m = config["model"]
    model, tokenizer = open_model(m["spec"], checkpoint=m["checkpoint"], dtype=m["dtype"], device=m["device"])
    data = registry("datasets").build(config["data"]["dataset"], **config["data"]["args"])
    trainer = Trainer(model, tokenizer, _train_config(t, config["seed"]))
    metrics, writer = _metrics_writer(run, t["tensorboard"])
    try:
        history = trainer.fit(data, log_path=out / "train_log.jsonl", run_dir=out, save_every=t["save_every"],
                              keep_last=t["keep_last"], resume=t["resume"], group_by_length=t["group_by_length"],
                              record=run.record if run else None, metrics=metrics)
    finally:
        if writer is not None:
            writer.close()
            run.record(*[p for p in run.file("tensorboard").rglob("*") if p.is_file()])
    summary = {"steps": len(history), "world_size": trainer.world, "first": history[0], "last": history[-1]}
    if trainer.units:  # FSDP2: whole weights on every rank for the final save
        from .distributed import gather_full_model

        gather_full_model(model)
    if run is not None:
        if t.get("lora"):
            model.language_model = model.language_model.merge_and_unload()
        final = run.file("checkpoint")
        with atomic_dir(final) as tmp:
            save(model, tmp, tokenizer=tokenizer)
        run.record(*[p for p in final.rglob("*") if p.is_file()])
        summary["checkpoint"] = str(final)
        plot = _loss_plot(history, run)
        if plot:
            summary["loss_plot"] = plot
        run.write_json("summary.json", summary)
        run.finish(summary={k: v for k, v in summary.items() if k not in ("first", "last")})
    return summary


def _loss_plot(history: list[dict[str, Any]], run) -> str | None:
    """``loss.png``: the loss curves of the run (the shared plotting helper)."""
    from ..io.plots import plot_loss_curves

    path = run.file("loss.png")
    plot_loss_curves(history, path)
    run.record(path)
    return str(path)


def run_quickstart_recipe(config: dict[str, Any], *, source: str) -> dict[str, Any]:
    """Train the tiny paired SAR + optical EarthMind on generated scenes, evaluate it on
    held-out scenes before and after, save it as an HF-format checkpoint."""
    from ..checkpoint import save
    from ..eval.records import evaluate_records
    from ..inference.pipeline import Pipeline
    from ..loading import open_model
    from .data import SyntheticScenes

    out = prepare_output(config["output"], source)
    torch.manual_seed(config["seed"])
    m = config["model"]
    model, tokenizer = open_model(m["spec"], checkpoint=m["checkpoint"], dtype=m["dtype"], device=m["device"])
    d = config["data"]
    sensors = tuple(model.spec.sensors)
    train = SyntheticScenes(d["train_scenes"], size=d["size"], seed=config["seed"], sensors=sensors)
    held_out = list(SyntheticScenes(d["eval_scenes"], size=d["size"], seed=config["seed"] + 10_000,
                                    sensors=sensors))
    before = evaluate_records(Pipeline(model, tokenizer), held_out, batch_size=16)
    trainer = Trainer(model, tokenizer, _train_config(config["train"], config["seed"]))
    history = trainer.fit(train, log_path=out / "train_log.jsonl")
    after = evaluate_records(Pipeline(model, tokenizer), held_out, batch_size=16)
    save(model, out / "checkpoint", tokenizer=tokenizer)
    examples = _write_examples(out / "examples", d["size"], config["seed"] + 10_000)
    summary = {
        "train": {"steps": len(history), "seconds": history[-1]["elapsed_s"],
                  "loss_first": {k: v for k, v in history[0].items() if k in ("lm", "mask", "dice")},
                  "loss_last": {k: v for k, v in history[-1].items() if k in ("lm", "mask", "dice")}},
        "eval_before_training": before,
        "eval_after_training": after,
        "checkpoint": str(out / "checkpoint"),
        "examples": examples,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
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

"""Recipe runner for ``job: train`` (``job: quickstart`` lives in :mod:`earthmind_sdk.jobs.quickstart`)."""
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


def train_config(cfg: dict[str, Any], seed: int) -> TrainConfig:
    t = dict(cfg)
    t["betas"] = tuple(t.get("betas", (0.9, 0.999)))
    t["freeze"] = tuple(t.get("freeze", ()))
    return TrainConfig(seed=seed, **t)


def resumable_recipe(config: dict[str, Any]) -> dict[str, Any]:
    """The recipe as its run is identified (hashed in ``run.json``): without ``train.resume``
    and ``output.overwrite``, which say how to continue a run, not what it computes."""
    out = json.loads(json.dumps(config, default=str))
    out.get("train", {}).pop("resume", None)
    out.get("output", {}).pop("overwrite", None)
    return out


def _open_run(config: dict[str, Any], *, source: str, world: int, progress: Any = None):
    """Rank 0 opens the run folder (refusing a different recipe on resume); every rank learns
    the outcome, so a refusal ends all of them with the same one line."""
    from ..errors import EarthMindError
    from ..jobs import announce, open_run_folder

    run, error = None, None
    if _is_main():
        try:
            run = open_run_folder(config["output"]["dir"], job="train", recipe=resumable_recipe(config),
                                  checkpoint=config["model"]["checkpoint"], resume=config["train"]["resume"],
                                  overwrite=bool(config["output"].get("overwrite")))
            announce(f"train: writing to {run.path} (run {run.run_id})", progress)
        except EarthMindError as exc:
            error = type(exc)(f"{source}: {exc}")
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
    """TensorBoard events under ``tensorboard/`` (a per-step callable and the writer), or
    (None, None) when off, on ranks other than 0, or when tensorboard is not installed."""
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
            elif isinstance(v, dict):  # train.balance's mixture: one curve per subtask
                for part, share in v.items():
                    writer.add_scalar(f"train/{k}/{part}", share, logged["step"])
    return write, writer


def run_train_recipe(config: dict[str, Any], *, source: str, progress: Any = None) -> dict[str, Any]:
    """Fine-tune as the recipe says, in ``output.dir``: ``run.json``, ``train_log.jsonl``,
    TensorBoard events, periodic ``checkpoints/step-<N>``, and at the end ``checkpoint/``
    (LoRA merged, the published HF layout), ``loss_curve.png`` and ``summary.json``."""
    from ..checkpoint import save
    from ..jobs import announce, atomic_dir, interruptible
    from ..jobs.open_model import open_recipe_model
    from ..plots import loss_curve

    _dist_init()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    t = config["train"]
    run = _open_run(config, source=source, world=world, progress=progress)
    out = Path(config["output"]["dir"])
    if t["resume"] and (out / "summary.json").is_file() and (out / "checkpoint").is_dir():
        announce(f"train: {out} holds a finished run; nothing to resume", progress)
        return json.loads((out / "summary.json").read_text())
    torch.manual_seed(config["seed"])
    model, tokenizer = open_recipe_model(config["model"])
    data = registry("datasets").build(config["data"]["dataset"], **config["data"]["args"])
    trainer = Trainer(model, tokenizer, train_config(t, config["seed"]))
    metrics, writer = _metrics_writer(run, t["tensorboard"])
    try:  # the loop saves a checkpoint on the first SIGTERM / Ctrl-C; a second one lands here
        with interruptible("train", kept=str(out), resume_hint="rerun with train.resume=true to continue "
                           "from the last checkpoint"):
            history = trainer.fit(data, log_path=out / "train_log.jsonl", run_dir=out, save_every=t["save_every"],
                                  keep_last=t["keep_last"], resume=t["resume"], group_by_length=t["group_by_length"],
                                  record=run.record if run else None, metrics=metrics, progress=progress)
    finally:
        if writer is not None:
            writer.close()
            run.record_tree("tensorboard")
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
        run.record_tree("checkpoint")
        run.record(loss_curve(history, out / "loss_curve.png"))
        summary["checkpoint"] = str(final)
        summary["loss_curve"] = str(out / "loss_curve.png")
        run.write_json("summary.json", summary)
        run.finish(summary={k: v for k, v in summary.items() if k not in ("first", "last")})
    return summary

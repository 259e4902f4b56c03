"""``job: quickstart``: train the tiny paired SAR + optical EarthMind on generated cloudy scenes
and show what fusion buys.

Stages: generate scenes -> evaluate the untrained model -> train -> evaluate with both sensors,
with SAR removed (the evaluation's sensor ablation) and with both blanked (blind baseline) ->
save the checkpoint -> write example GeoTIFF pairs with clouds, one figure per example and the
loss curve -> ``results.json`` and a table of the metrics (see :mod:`earthmind_sdk.train.fusion_report`).
The held-out scenes come from another seed (``seed + 10000``) than the training scenes.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

RESULTS = "results.json"


class _Stages:
    """Times each stage and announces its end on stderr (the bars come from the stages)."""

    def __init__(self, progress: Any = None):
        self.t0 = time.perf_counter()
        self.done: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def __call__(self, name: str):
        from . import announce

        t = time.perf_counter()
        yield
        self.done[name] = round(time.perf_counter() - t, 2)
        announce(f"quickstart: {name} done in {self.done[name]:.1f} s ({time.perf_counter() - self.t0:.0f} s in all)",
                 self.progress)


def run_quickstart_recipe(config: dict[str, Any], *, source: str, progress: Any = None) -> dict[str, Any]:
    from ..checkpoint import save
    from ..eval.records import evaluate_records
    from ..inference.pipeline import Pipeline
    from ..plots import loss_curve
    from ..train.data import SyntheticScenes
    from ..train.fusion_report import fusion_report, table, target_checks
    from ..train.runner import train_config
    from ..train.trainer import Trainer
    from . import interruptible, open_job_folder
    from .open_model import open_recipe_model

    stage = _Stages(progress)
    run = open_job_folder(config, job="quickstart", source=source, progress=progress)
    out = run.path
    seed, d, e = config["seed"], config["data"], config["eval"]
    torch.manual_seed(seed)
    with stage("data"):
        model, tokenizer = open_recipe_model(config["model"])
        sensors = tuple(model.spec.sensors)
        train = SyntheticScenes(d["train_scenes"], size=d["size"], seed=seed, sensors=sensors, repeat=d["repeat"])
        held = SyntheticScenes(d["eval_scenes"], size=d["size"], seed=seed + 10_000, sensors=sensors)
        held_out = list(held)
    pipe = Pipeline(model, tokenizer)
    kw = dict(batch_size=e["batch_size"], max_new_tokens=e["max_new_tokens"], progress=progress)
    closed = [r for r in held_out if not r.masks]
    run.record("train_log.jsonl")
    with interruptible("quickstart", kept=str(out), resume_hint="rerun the same command to start again"):
        with stage("evaluate before training"):  # a subset: the untrained model is at chance
            first = [r for r in held_out if r.meta["scene"] < e["before_scenes"]]
            rows: list[dict] = []
            evaluate_records(pipe, first, predictions=rows, desc="eval before training", **kw)
            before = fusion_report(first, rows)
        with stage("train"):
            trainer = Trainer(model, tokenizer, train_config(config["train"], seed))
            history = trainer.fit(train, log_path=out / "train_log.jsonl", progress=progress)
        with stage("evaluate after training"):
            fused: list[dict] = []
            evaluate_records(pipe, held_out, predictions=fused, desc="eval after training (SAR + optical)", **kw)
            optical_only: list[dict] = []
            evaluate_records(pipe, closed, predictions=optical_only, ablate="sar",
                             desc="eval after training (SAR removed)", **kw)
            blind: list[dict] = []
            evaluate_records(pipe, closed, predictions=blind, ablate=list(sensors),
                             desc="eval after training (blind)", **kw)
            results = fusion_report(held_out, fused, optical_only, blind)
        with stage("save checkpoint"):
            save(model, out / "checkpoint", tokenizer=tokenizer)
            run.record_tree("checkpoint")
        with stage("examples and figures"):
            examples = write_examples(out / "examples", held, pipe)
            run.record_tree("examples")
            run.record(loss_curve(history, out / "loss_curve.png",
                                  title=f"quickstart training loss ({len(history)} steps)"))
    first, last = history[0], history[-1]
    losses = ("lm", "mask", "dice", "sap")
    results.update(
        checks=target_checks(results),
        before_training=before,
        train={"steps": len(history), "seconds": last["elapsed_s"],
               "loss_first": {k: round(v, 4) for k, v in first.items() if k in losses},
               "loss_last": {k: round(v, 4) for k, v in last.items() if k in losses}},
        stages=dict(stage.done),
        seconds=round(time.perf_counter() - stage.t0, 1),
        seed=seed, held_out_seed=seed + 10_000,
        checkpoint=str(out / "checkpoint"), examples=examples,
        loss_curve=str(out / "loss_curve.png"), train_log=str(out / "train_log.jsonl"),
    )
    run.write_json(RESULTS, results)
    run.finish(summary={k: results[k] for k in ("mcq_m_avg", "refseg_miou", "cloud_fused_acc",
                                                 "cloud_optical_only_acc", "seconds")})
    print(table(results, before))
    print(f"\nwritten to {out}/: {RESULTS}, checkpoint/, examples/ (GeoTIFF pairs + figures), loss_curve.png, "
          f"train_log.jsonl  ({results['seconds']:.0f} s in all)")
    return {"results": str(out / RESULTS), "seconds": results["seconds"],
            "targets_met": sum(results["checks"].values()), "targets": len(results["checks"])}


def pick_examples(scenes, n: int = 2) -> list[int]:
    """Held-out scenes worth showing: clouds over the scene and something to segment; an
    overcast scene first (only SAR sees the ground), then a broken-cloud one."""
    order = []
    for sky in ("overcast", "broken"):
        for i, s in enumerate(scenes):
            if s.sky == sky and (s.water.any() or s.buildings.any()) and i not in order:
                order.append(i)
                break
    for i, s in enumerate(scenes):
        if len(order) >= n:
            break
        if i not in order:
            order.append(i)
    return order[:n]


def write_examples(folder: Path, held, pipe) -> list[dict[str, Any]]:
    """Example GeoTIFF pairs (to try ``earthmind infer`` on) and one figure per example: the
    model segments the scene's water (or buildings) and its per-token fusion weights are drawn."""
    from ..contracts import Sample
    from ..io import write_raster
    from ..plots import scene_figure
    from ..train.data import scene_rasters

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for k, i in enumerate(pick_examples(held.scenes)):
        scene = held.scenes[i]
        rasters = scene_rasters(scene, i)
        pair = {s: str(write_raster(folder / f"scene{k}_{s}.tif", r)) for s, r in rasters.items()}
        what, target = ("water body", scene.water) if scene.water.any() else ("buildings", scene.buildings)
        question = f"Please segment the {what}."
        res = pipe([Sample(images={s: rasters["sar" if s != "optical" else "optical"] for s in held.sensors},
                           prompt=question, task="referring_segmentation")], max_new_tokens=8)[0]
        predicted = res.masks[0] if res.masks else None
        sar_share = res.fusion_weights.get("sar")
        figure = scene_figure(folder / f"scene{k}.png", optical=scene.optical, sar=scene.sar[0], target=target,
                              predicted=predicted, sar_share=sar_share, grid=pipe.model.token_grid,
                              title=f"held-out scene {i} ({scene.sky} sky): \"{question}\"")
        written.append({**pair, "figure": str(figure), "question": question, "sky": scene.sky,
                        "thick_cloud_share": round(float(scene.thick_cloud.mean()), 3)})
    return written

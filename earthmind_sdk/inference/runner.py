"""Recipe runner for ``job: infer``: batched answers to a list of samples, written as JSON lines
(one object per sample, in input order) plus mask files."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import RecipeError
from ..sensors.choice import SensorChoiceError, parse_choices
from ..contracts import Sample


def _sample(item: dict[str, Any], index: int, source: str, default_task: str) -> Sample:
    where = f"{source}: samples[{index}]"
    unknown = set(item) - {"images", "question", "task", "task_args", "regions", "id", "sensors"}
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: images, question, task, "
                          "task_args, regions, id, sensors")
    if not isinstance(item.get("images"), dict) or not item["images"]:
        raise RecipeError(f"{where}.images: expected a mapping sensor -> path")
    if not isinstance(item.get("question"), str):
        raise RecipeError(f"{where}.question: expected a string")
    base = Path(source).parent
    images = {k: str(base / v) if not Path(v).is_absolute() else v for k, v in item["images"].items()}
    try:
        sensors = parse_choices(item.get("sensors"), where=f"{where}.sensors")
    except SensorChoiceError as exc:
        raise RecipeError(str(exc)) from None
    stray = sorted(set(sensors) - set(images))
    if stray:
        raise RecipeError(f"{where}.sensors: input(s) {', '.join(stray)} have no image in images")
    return Sample(images=images, prompt=item["question"], task=item.get("task", default_task),
                  task_args=item.get("task_args", {}), regions=item.get("regions", []),
                  id=str(item.get("id", index)), sensors=sensors)


def run_infer_recipe(config: dict[str, Any], *, source: str, progress: Any = None) -> dict[str, Any]:
    """Answers are appended per batch to ``answers.jsonl``; a rerun into the same folder skips
    the sample ids already answered. Under torchrun the samples are split across the processes
    by whole batches (:mod:`earthmind_sdk.jobs.shard`); rank 0 returns the summary, others None."""
    from ..io import write_masks
    from ..jobs import Progress, interruptible, open_job_folder, output_stem
    from ..jobs.open_model import open_recipe_model
    from ..jobs.shard import ShardedStream, current_world, open_on_main, plan_batches
    from .pipeline import Pipeline

    samples = [_sample(s, i, source, config["task"]) for i, s in enumerate(config["samples"])]
    ids = [s.id for s in samples]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise RecipeError(f"{source}: samples: id(s) {', '.join(dup[:5])} used twice; ids name the output files")
    world = current_world()
    run = open_on_main(world, lambda: open_job_folder(config, job="infer", source=source, resume=True,
                                                       progress=progress))
    m = config["model"]
    model, tokenizer = open_recipe_model(m, device=world.device(m["device"]), spec_seed=0)
    pipe = Pipeline(model, tokenizer)
    bs = max(1, config["batch_size"])
    with interruptible("infer", kept=str(run.path), resume_hint="run the same command again to go on from there"), \
            ShardedStream(run, "answers.jsonl", world) as stream:
        done = stream.done_ids() & set(ids)
        with Progress(len(samples), "infer", progress=progress if world.main else False, unit="sample",
                      initial=len(done)) as bar:
            for batch in plan_batches(ids, bs, done, world):
                rows = []
                for res in pipe([samples[i] for i in batch], batch_size=bs, max_new_tokens=config["max_new_tokens"]):
                    row = res.as_dict()
                    first = next(iter(res.rasters.values()), None)
                    stem = output_stem(getattr(first, "source", None), {"id": res.id})
                    row["masks"] = [str(p["mask"]) for p in write_masks(res, run.file("masks"), stem=stem, record=run.record)]
                    rows.append(row)
                stream.write(rows)
                stream.advance(bar, len(rows))
            if stream.merge(ids, on_wait=lambda: stream.advance(bar, 0)) is None:
                return None  # another rank of a torchrun: rank 0 reports
    run.finish(world_size=world.size)
    return {"samples": len(samples), "answers": str(run.path / "answers.jsonl")}

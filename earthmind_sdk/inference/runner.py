"""Recipe runner for ``job: infer``: batched answers to a list of samples, written as JSON lines
(one object per sample, in input order) plus mask files."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import RecipeError
from ..sensors.choice import SensorChoiceError, parse_choices
from .sample import Sample


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


def run_infer_recipe(config: dict[str, Any], *, source: str) -> dict[str, Any]:
    from ..loading import open_model
    from ..train.runner import prepare_output
    from .cli import write_masks
    from .pipeline import Pipeline

    samples = [_sample(s, i, source, config["task"]) for i, s in enumerate(config["samples"])]
    out = prepare_output(config["output"], source)
    m = config["model"]
    model, tokenizer = open_model(m["spec"], checkpoint=m["checkpoint"], dtype=m["dtype"], device=m["device"])
    pipe = Pipeline(model, tokenizer)
    results = pipe(samples, batch_size=config["batch_size"], max_new_tokens=config["max_new_tokens"])
    with open(out / "answers.jsonl", "w") as fh:
        for res in results:
            row = res.as_dict()
            row["masks"] = [str(p["mask"]) for p in write_masks(res, out / "masks", stem=f"{res.id}_mask")]
            fh.write(json.dumps(row, default=str) + "\n")
    return {"samples": len(results), "answers": str(out / "answers.jsonl")}

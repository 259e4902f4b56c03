"""Recipe runner for ``job: eval``: predictions (one JSON line per question) and scores."""
from __future__ import annotations

import json
from typing import Any

from ..plugins import registry


def run_eval_recipe(config: dict[str, Any], *, source: str) -> dict[str, Any]:
    from ..inference.pipeline import Pipeline
    from ..loading import open_model
    from ..train.runner import prepare_output
    from .records import evaluate_records

    out = prepare_output(config["output"], source)
    data = registry("datasets").build(config["data"]["dataset"], **config["data"]["args"])
    m = config["model"]
    model, tokenizer = open_model(m["spec"], checkpoint=m["checkpoint"], dtype=m["dtype"], device=m["device"])
    predictions: list[dict] = []
    scores = evaluate_records(Pipeline(model, tokenizer), list(data), batch_size=config["batch_size"],
                              max_new_tokens=config["max_new_tokens"], ablate=config["ablate"],
                              predictions=predictions)
    with open(out / "predictions.jsonl", "w") as fh:
        for row in predictions:
            fh.write(json.dumps(row, default=str) + "\n")
    scores["dataset"] = config["data"]["dataset"]
    scores["model"] = m["checkpoint"] or m["spec"]
    (out / "scores.json").write_text(json.dumps(scores, indent=2))
    return scores

"""Recipe runner for ``job: eval``: predictions (one JSON line per question) and scores.

Predictions are appended and flushed per batch; a rerun into the same run folder (after
Ctrl-C, a crash or ``kill``) skips the ids already there: nothing lost, nothing duplicated.
"""
from __future__ import annotations

from typing import Any

from ..plugins import registry


def run_eval_recipe(config: dict[str, Any], *, source: str, progress: Any = None) -> dict[str, Any]:
    from ..inference.pipeline import Pipeline
    from ..jobs import JsonlStream, interruptible, open_job_folder
    from ..loading import open_model
    from .records import evaluate_records

    run = open_job_folder(config, job="eval", source=source, resume=True, progress=progress)
    data = registry("datasets").build(config["data"]["dataset"], **config["data"]["args"])
    m = config["model"]
    model, tokenizer = open_model(m["spec"], checkpoint=m["checkpoint"], dtype=m["dtype"], device=m["device"])
    records = list(data)
    ids = {str(r.sample.id) for r in records}
    with interruptible("eval", kept=str(run.file("predictions.jsonl")),
                       resume_hint="run the same command again to go on from there"), \
            JsonlStream(run.file("predictions.jsonl")) as stream:
        run.record("predictions.jsonl")
        done = [r for r in stream.rows() if str(r.get("id")) in ids]
        scores = evaluate_records(Pipeline(model, tokenizer), records, batch_size=config["batch_size"],
                                  max_new_tokens=config["max_new_tokens"], ablate=config["ablate"],
                                  on_rows=stream.write, skip_ids=stream.done_ids(), done_rows=done,
                                  progress=progress)
    scores["dataset"] = config["data"]["dataset"]
    scores["model"] = m["checkpoint"] or m["spec"]
    if done:
        scores["resumed_from"] = len(done)
    run.write_json("scores.json", scores)
    run.finish(summary=scores)
    return scores

"""Recipe runner for ``job: eval``: predictions (one JSON line per question) and scores.

Predictions are appended and flushed per batch; a rerun into the same run folder (after
Ctrl-C, a crash or ``kill``) skips the ids already there: nothing lost, nothing duplicated.
Under ``torchrun`` the questions are split across the processes by whole batches
(:mod:`earthmind_sdk.jobs.shard`): the predictions and scores equal a one-process run's.
"""
from __future__ import annotations

from typing import Any

from ..plugins import registry


def run_eval_recipe(config: dict[str, Any], *, source: str, progress: Any = None) -> dict[str, Any] | None:
    """Rank 0 returns the scores; the other ranks of a torchrun return None."""
    from ..inference.pipeline import Pipeline
    from ..jobs import Progress, interruptible, open_job_folder
    from ..jobs.open_model import open_recipe_model
    from ..jobs.shard import ShardedStream, current_world, open_on_main, plan_batches
    from .records import predict_batches, score_rows

    world = current_world()
    run = open_on_main(world, lambda: open_job_folder(config, job="eval", source=source, resume=True,
                                                       progress=progress))
    progress = progress if world.main else False
    data = registry("datasets").build(config["data"]["dataset"], **config["data"]["args"])
    m = config["model"]
    model, tokenizer = open_recipe_model(m, device=world.device(m["device"]), spec_seed=0)
    records = list(data)
    keys = [str(r.sample.id) for r in records]
    kept = run.path / ("predictions.jsonl" if world.size == 1 else "parts")
    with interruptible("eval", kept=str(kept),
                       resume_hint="run the same command again to go on from there"), \
            ShardedStream(run, "predictions.jsonl", world) as stream:
        done = stream.done_ids() & set(keys)
        batches = plan_batches(keys, config["batch_size"], done, world)
        with Progress(len(records), "eval", progress=progress, unit="q", initial=len(done)) as bar:
            def write(rows: list[dict]) -> None:
                stream.write(rows)
                stream.advance(bar, len(rows))

            predict_batches(Pipeline(model, tokenizer), records, batches, batch_size=config["batch_size"],
                            max_new_tokens=config["max_new_tokens"], ablate=config["ablate"], on_rows=write)
            rows = stream.merge(keys, on_wait=lambda: stream.advance(bar, 0))
    if rows is None:
        return None
    scores = score_rows(rows)
    if config["ablate"]:
        scores["ablated_sensor"] = config["ablate"]
    scores["dataset"] = config["data"]["dataset"]
    scores["model"] = m["checkpoint"] or m["spec"]
    if done:
        scores["resumed_from"] = len(done)
    run.write_json("scores.json", scores)
    run.finish(summary=scores, world_size=world.size, rows_per_part=stream.rows_per_part)
    return scores

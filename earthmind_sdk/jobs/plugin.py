"""Built-in ``earthmind run`` jobs, registered through the ``register_jobs`` hook like a plugin's.

Targets are lazy: the schemas live in :mod:`earthmind_sdk.recipes` (no torch), the runners in
the packages they drive and are imported only when a recipe runs.
"""
from earthmind_sdk.hookspecs import hookimpl

_R = "earthmind_sdk.recipes"


@hookimpl
def register_jobs(register):
    register("infer", f"{_R}:INFER_JOB",
             description="batched inference over a list of samples; writes answers.jsonl and masks")
    register("eval", f"{_R}:EVAL_JOB", description="score a model on a benchmark; writes predictions.jsonl and scores.json")
    register("train", f"{_R}:TRAIN_JOB",
             description="supervised fine-tuning with EarthMind's losses; torchrun for several processes")
    register("quickstart", f"{_R}:QUICKSTART_JOB",
             description="train the tiny paired EarthMind on generated cloudy scenes; results.json, figures, checkpoint")
    register("map", f"{_R}:MAP_JOB",
             description="a question over whole scenes of any size: mask COG + object polygons, or an answer grid")

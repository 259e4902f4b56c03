"""``earthmind infer`` with several inputs: one model load, answers in batches through the
batch runner (:mod:`earthmind_sdk.jobs.batch`), one JSON line per input on stdout and in
``<out>/answers-<hash>.jsonl``; a failed input gets its own ``"status": "failed"`` line and the
others go on. The i-th ``--sar`` / ``--ms`` pairs with the i-th ``--image``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import EarthMindError

ROLES = ("image", "sar", "ms")


def single_input(args) -> bool:
    """True (and the flags made scalar, as the one-input command expects) for one input."""
    lists = {r: getattr(args, r) or [] for r in ROLES}
    if getattr(args, "images_from", None) or len(lists["image"]) != 1 or any(len(v) > 1 for v in lists.values()):
        return False
    for r in ROLES:
        setattr(args, r, lists[r][0] if lists[r] else None)
    return True


def scenes_from_args(args) -> list:
    """The inputs of a multi-input call: repeated flags, or ``--images-from`` (a CSV with an
    ``image`` column and optional ``sar``/``ms``/``id``, or a text file, one image path a line)."""
    from ..jobs.batch import Scene, scenes_from

    if getattr(args, "images_from", None):
        if args.image or args.sar or args.ms:
            raise EarthMindError("give inputs either as --image/--sar/--ms or with --images-from, not both")
        path = Path(args.images_from)
        if path.suffix.lower() == ".csv":
            return scenes_from(path)
        if not path.is_file():
            raise EarthMindError(f"--images-from {path}: no such file")
        lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        return [Scene(f"{i}", {"image": ln if Path(ln).is_absolute() else str(path.parent / ln)})
                for i, ln in enumerate(lines)]
    images = args.image or []
    if not images:
        raise EarthMindError("give at least one --image (or --images-from FILE)")
    for r in ("sar", "ms"):
        given = getattr(args, r) or []
        if given and len(given) != len(images):
            raise EarthMindError(f"{len(images)} --image but {len(given)} --{r}: the i-th --{r} pairs with the "
                                 f"i-th --image, so give one per image")
    return [Scene(str(i), {r: getattr(args, r)[i] for r in ROLES if getattr(args, r)})
            for i in range(len(images))]


def infer_many_command(args) -> int:
    from ..jobs import open_run_folder, output_stem, request_hash
    from ..jobs.batch import run_batch
    from ..devices import check_device
    from ..jobs.shard import ShardedStream, current_world, open_on_main
    from ..contracts import Sample
    from ..io import write_masks
    from .cli import check_sensor_flags, guess_task, inputs_from_args, open_pipeline

    check_device(args.device, args.dtype, where="--device")
    check_sensor_flags(args)
    scenes = scenes_from_args(args)
    task = args.task or guess_task(args.question)
    request = {"question": args.question, "task": task, "model": args.model, "max_new_tokens": args.max_new_tokens}
    world = current_world()
    run = open_on_main(world, lambda: open_run_folder(args.out, job="infer", shared=True))
    pipe = open_pipeline(args.model, device=world.device(args.device), dtype=args.dtype,
                         min_overlap=args.min_overlap)

    def sample_for(scene) -> Sample:
        # the one-input flag handling, per scene: same sensor slots, same --<input>-sensor/-opt
        one = argparse.Namespace(**{**vars(args), **{r: scene.inputs.get(r) for r in ROLES}})
        images, sensors = inputs_from_args(one, pipe)
        return Sample(images=images, prompt=args.question, task=task, id=scene.id, sensors=sensors)

    def process(chunk) -> list[dict[str, Any]]:
        samples = [sample_for(s) for s in chunk]
        results = pipe(samples, batch_size=len(samples), max_new_tokens=args.max_new_tokens)
        rows = []
        for scene, res in zip(chunk, results):
            stem = output_stem(scene.inputs.get("image") or next(iter(scene.inputs.values())), request)
            written = write_masks(res, run.path, stem=stem, record=run.record)
            row = res.as_dict()
            row.pop("id", None)
            row["masks"] = [str(w["mask"]) for w in written]
            rows.append(row)
        return rows

    # named after the request and its inputs: a rerun of the same command resumes, another call starts afresh
    records = run.file(f"answers-{request_hash([request, [s.inputs for s in scenes]])}.jsonl")
    with ShardedStream(run, records.name, world) as stream:
        answered = stream.done_ids("ok")
        counts = run_batch(scenes, process, stream, batch_size=args.batch_size, desc="infer")
    if counts is None:  # another rank of a torchrun: rank 0 reports
        return 0
    for row in stream.merged:
        if row["id"] not in answered:
            print(json.dumps(row, default=str))
    print(f"infer: {counts['ok']}/{counts['scenes']} answered ({counts['failed']} failed); records in {records}",
          file=sys.stderr)
    return 1 if counts["failed"] else 0

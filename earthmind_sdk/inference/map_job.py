"""The ``map`` job three ways: :func:`map_scenes` (Python), ``earthmind map`` (command line)
and ``job: map`` (recipe). All three open one run folder, run :mod:`.map` per scene through
the batch runner (:mod:`earthmind_sdk.jobs.batch`) and write ``scenes.jsonl``, one record per
scene with the files it wrote, or its error.

Output grid: the grid of the raster the model segments (the spec's ``segment_sensor``: the
SAR for a paired EarthMind, the optical image for an optical model); the other sensor of a
pair is warped onto it window by window.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

from ..errors import EarthMindError, RecipeError

#: Command-line role -> sensor family.
FAMILY = {"image": "optical", "sar": "sar", "ms": "multispectral"}


def _sensors(pipe, inputs: dict[str, str]) -> tuple[dict[str, str], str]:
    """Role -> path becomes sensor -> path, plus the output-grid sensor."""
    if pipe is None:  # a stand-in predictor: sensors named after their family; SAR leads a pair
        images = {FAMILY[r]: p for r, p in inputs.items()}
        primary = next(s for s in ("sar", "optical", "multispectral") if s in images)
        return images, primary
    from .cli import _sensor_for

    images = {("optical" if r == "image" else _sensor_for(pipe, FAMILY[r])): p for r, p in inputs.items()}
    seg = pipe.builder.spec.segment_sensor
    primary = seg if seg in images else next(s for s in pipe.sensor_names if s in images)
    return images, primary


def map_scenes(question: str, scenes: "Sequence[Any] | str | dict[str, str]", out: str, *,
               model: str = "tiny", pipeline=None, predictor=None, task: Optional[str] = None,
               window: Optional[int] = None, overlap: Optional[int] = None, tiles_per_window: int = 1,
               batch_size: int = 8, threshold: float = 0.5, probability: bool = False,
               max_new_tokens: int = 64, device: str = "cpu", dtype: str = "float32",
               assets: Optional[dict[str, str]] = None, overwrite: bool = False, progress: Any = None,
               recipe: Any = None, min_overlap: float = 0.5) -> dict[str, Any]:
    """Map ``question`` over one scene or many; returns the run summary.

    ``scenes``: ``{"image": path, "sar": path}`` for one scene, a folder / glob / CSV / STAC
    ItemCollection path, or a list of :class:`~earthmind_sdk.jobs.batch.Scene`. ``model`` or
    ``pipeline`` is the model; ``predictor`` replaces it (see :mod:`.map`, for tests).
    ``window`` (pixels, default: the model's tile size x ``tiles_per_window``) and ``overlap``
    (default a quarter window) lay the windows; ``batch_size`` windows go to the model at once.
    ``min_overlap``: the share of the output-grid image a georeferenced partner must cover.
    A rerun with the same arguments into the same ``out`` resumes. Under torchrun the scenes
    are split across the processes; rank 0 returns the summary, the others None.
    """
    from ..jobs import interruptible, open_run_folder, output_stem
    from ..jobs.batch import Scene, run_batch, scenes_from
    from ..jobs.shard import ShardedStream, current_world, open_on_main
    from .cli import guess_task
    from .map import SEGMENT_TASKS, ModelPredictor, map_windows

    if isinstance(scenes, dict):
        unknown = set(scenes) - set(FAMILY)
        if unknown or not scenes:
            raise EarthMindError(f"scene inputs are named {', '.join(FAMILY)}; got {', '.join(scenes) or 'nothing'}")
        first = next(iter(scenes.values()))
        scene_list = [Scene(Path(first).stem, {k: str(v) for k, v in scenes.items()})]
    elif isinstance(scenes, (str, Path)):
        scene_list = scenes_from(scenes, assets=assets)
    else:
        scene_list = list(scenes)
    task = task or guess_task(question)
    request = {"question": question, "task": task, "model": model if pipeline is None and predictor is None
               else "<given>", "window": window, "overlap": overlap, "tiles_per_window": tiles_per_window,
               "threshold": threshold, "probability": probability, "max_new_tokens": max_new_tokens}
    world = current_world()
    run = open_on_main(world, lambda: open_run_folder(out, job="map", recipe=recipe if recipe is not None
                                                      else request, overwrite=overwrite, resume=True))
    pipe = pipeline
    if predictor is None:
        if pipe is None:
            import torch

            from .cli import open_pipeline

            torch.manual_seed(0)  # a model from a spec has random weights: the same on every rank
            pipe = open_pipeline(model, device=world.device(device), dtype=dtype, min_overlap=min_overlap)
        predictor = ModelPredictor(pipe, question, task, max_new_tokens=max_new_tokens, batch_size=batch_size)
    if window is None:
        size = pipe.builder.spec.image["size"] if pipe is not None else 448
        window = size * tiles_per_window
    if overlap is None:
        overlap = window // 4

    def process(chunk: list[Scene]) -> list[dict[str, Any]]:
        out_rows = []
        for scene in chunk:
            images, primary = _sensors(pipe, scene.inputs)
            stem = output_stem(images[primary], request)
            res = map_windows(images, predictor, run.path, primary=primary, stem=stem,
                              segment=task in SEGMENT_TASKS, window=window, overlap=overlap,
                              batch_size=batch_size, threshold=threshold, probability=probability,
                              progress=progress if world.main else False, min_overlap=min_overlap)
            run.record(*res.files.values())
            out_rows.append({"grid_sensor": primary, **res.as_dict()})
        return out_rows

    records = run.file("scenes.jsonl")
    with interruptible("map", kept=str(run.path), resume_hint="rerun the same command to resume"), \
            ShardedStream(run, "scenes.jsonl", world) as stream:
        counts = run_batch(scene_list, process, stream, desc="map", progress=progress)
    if counts is None:  # not rank 0 of a torchrun
        return None
    summary = {"out": str(run.path), "records": str(records), "window": window, "overlap": overlap,
               "task": task, **counts}
    run.finish(summary=summary)
    return summary


def map_command(args) -> int:
    """``earthmind map``: one scene from --image/--sar/--ms, or many from --scenes."""
    import json

    inputs = {r: getattr(args, r) for r in ("image", "sar", "ms") if getattr(args, r)}
    if bool(inputs) == bool(args.scenes):
        raise EarthMindError("give one scene (--image, with --sar or --ms for a pair) or a scene list (--scenes), "
                             "not both and not neither")
    assets = dict(_pair(a) for a in args.asset or [])
    summary = map_scenes(args.question, args.scenes or inputs, args.out, model=args.model, task=args.task,
                         window=args.window, overlap=args.overlap, tiles_per_window=args.tiles_per_window,
                         batch_size=args.batch_size, threshold=args.threshold, probability=args.probability,
                         max_new_tokens=args.max_new_tokens, device=args.device, dtype=args.dtype,
                         assets=assets or None, overwrite=args.overwrite, min_overlap=args.min_overlap)
    if summary is None:  # another rank of a torchrun: rank 0 reports
        return 0
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['ok']}/{summary['scenes']} scene(s) mapped ({summary['failed']} failed) into "
              f"{summary['out']}; one record per scene in {summary['records']}")
    return 1 if summary["failed"] else 0


def _pair(text: str) -> tuple[str, str]:
    role, sep, key = text.partition("=")
    if not sep:
        raise EarthMindError(f"--asset {text!r}: expected ROLE=ASSET_KEY, e.g. image=visual")
    return role, key


def add_map_parser(sub) -> None:
    """The ``map`` subcommand's arguments (kept here so cli.py only registers it)."""
    p = sub.add_parser(
        "map", help="map a question over whole scenes (any size), window by window",
        description="Answer QUESTION over a whole scene, window by window at native resolution, and write "
                    "map layers: for segmentation requests a mask (and probability) Cloud-Optimized GeoTIFF "
                    "and the objects as GeoPackage + GeoJSON polygons with score and area; for other "
                    "questions a grid layer with one cell per window holding the answer. The output grid is "
                    "the grid of the raster the model segments: the SAR for a paired EarthMind, the --image "
                    "for an optical model; the other image of a pair is reprojected onto it window by window. "
                    "A rerun into the same --out resumes.")
    p.add_argument("question", help="the question or instruction, e.g. 'Please segment the flooded fields.'")
    p.add_argument("--model", default="tiny", help="checkpoint directory or bundled spec name (default: tiny)")
    p.add_argument("--image", help="optical scene (GeoTIFF/COG, any size)")
    p.add_argument("--sar", help="SAR scene paired with --image (the output grid for a paired model)")
    p.add_argument("--ms", help="multispectral scene (needs the earthmind-multispectral plugin)")
    p.add_argument("--scenes", help="many scenes: a folder, a glob, a CSV (columns id,image,sar,ms) or a STAC "
                                    "ItemCollection JSON")
    p.add_argument("--asset", action="append", metavar="ROLE=KEY",
                   help="STAC asset per role, e.g. --asset image=visual --asset sar=vv")
    p.add_argument("--task", default=None, help="task name (default: chosen from the question)")
    p.add_argument("--out", default="earthmind-map", help="run folder (a rerun into it resumes)")
    p.add_argument("--window", type=int, default=None,
                   help="window size in pixels (default: the model's tile size x --tiles-per-window)")
    p.add_argument("--overlap", type=int, default=None, help="pixels shared by neighbouring windows (default: window/4)")
    p.add_argument("--tiles-per-window", type=int, default=1, help="model tiles per window side (default 1)")
    p.add_argument("--batch-size", type=int, default=8, help="windows per model batch")
    p.add_argument("--threshold", type=float, default=0.5, help="mask probability threshold")
    p.add_argument("--probability", action="store_true", help="also write the blended probability COG")
    from .cli import add_pair_option

    add_pair_option(p)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run's files in --out")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    p.set_defaults(func=map_command)


def run_map_recipe(config: dict[str, Any], *, source: str) -> dict[str, Any]:
    """``job: map``: the same as ``earthmind map``; scenes from ``scenes`` (a list of
    ``{id, image, sar, ms}``, paths relative to the recipe) or ``catalogue`` (folder, glob, CSV, STAC)."""
    from ..jobs.batch import Scene

    base = Path(source).parent
    if bool(config.get("scenes")) == bool(config.get("catalogue")):
        raise RecipeError(f"{source}: give either scenes or catalogue")
    if config.get("scenes"):
        scenes = []
        for i, item in enumerate(config["scenes"]):
            unknown = set(item) - {"id", *FAMILY}
            if unknown or not set(item) & set(FAMILY):
                raise RecipeError(f"{source}: scenes[{i}]: keys are id and {', '.join(FAMILY)}"
                                  + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else ""))
            inputs = {r: str(base / item[r]) if not Path(item[r]).is_absolute() else item[r]
                      for r in FAMILY if item.get(r)}
            scenes.append(Scene(str(item.get("id") or Path(next(iter(inputs.values()))).stem), inputs))
    else:
        cat = config["catalogue"]
        scenes = cat if Path(cat).is_absolute() else str(base / cat)
    m, o = config["model"], config["output"]
    return map_scenes(config["question"], scenes, o["dir"], model=m["checkpoint"] or m["spec"],
                      task=config["task"], window=config["window"], overlap=config["overlap"],
                      tiles_per_window=config["tiles_per_window"], batch_size=config["batch_size"],
                      threshold=config["threshold"], probability=config["probability"],
                      max_new_tokens=config["max_new_tokens"], device=m["device"], dtype=m["dtype"],
                      assets=config["assets"] or None, overwrite=o["overwrite"], recipe=config)

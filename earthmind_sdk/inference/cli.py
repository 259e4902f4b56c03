"""``earthmind infer``: one question about one image or a SAR + optical pair."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import EarthMindError
from .sample import Sample


def open_pipeline(model: str, *, device: str = "cpu", dtype: str = "float32"):
    """A checkpoint directory, a bundled spec name (random weights: for trying the pipeline) or a spec file."""
    from ..loading import open_model
    from .pipeline import Pipeline

    net, tokenizer = open_model(model, dtype=dtype, device=device)
    return Pipeline(net, tokenizer)


def infer_command(args) -> int:
    from ..jobs import check_output_path, open_run_folder, output_stem

    check_output_path(args.out, what="--out")  # before minutes of model loading
    pipe = open_pipeline(args.model, device=args.device, dtype=args.dtype)
    images = {"optical": args.image}
    if args.sar:
        images[_sensor_for(pipe, "sar")] = args.sar
    if args.ms:
        images[_sensor_for(pipe, "multispectral")] = args.ms
    sample = Sample(images=images, prompt=args.question, task=args.task or guess_task(args.question))
    result = pipe(sample, max_new_tokens=args.max_new_tokens)
    request = {"question": args.question, "task": sample.task, "images": images, "model": str(args.model),
               "max_new_tokens": args.max_new_tokens}
    written = []
    if result.masks:
        # parallel runs may share --out: unique names per (input, request), each file recorded
        run = open_run_folder(args.out, job="infer", shared=True, what="--out")
        written = write_masks(result, run.path, stem=output_stem(args.image, request), run=run)
    if args.json:
        payload = result.as_dict()
        payload["masks"] = [str(p["mask"]) for p in written]
        payload["overlays"] = [str(p["overlay"]) for p in written]
        print(json.dumps(payload, indent=2))
    else:
        print(result.answer)
        for p in written:
            print(f"mask: {p['mask']}  overlay: {p['overlay']}")
    return 0


def guess_task(question: str) -> str:
    """The task for a free-form CLI question: segmentation and description requests are
    recognised by their verbs; anything else is VQA (yes/no and numbers are still parsed)."""
    q = question.lower()
    if "segment" in q or "[seg]" in q:
        return "referring_segmentation"
    if any(w in q for w in ("describe", "caption", "description")):
        return "captioning"
    return "vqa"


def _sensor_for(pipe, family: str) -> str:
    """The model's input sensor for a CLI flag: the spec's sensor whose name or family matches."""
    for name in pipe.sensor_names:
        if name == family or getattr(pipe.sensor(name), "family", None) == family:
            return name
    raise EarthMindError(
        f"this model takes sensors {', '.join(pipe.sensor_names)}; none is {family} "
        f"(install the plugin that provides it, or use a paired checkpoint such as EarthMind4B_multi)"
    )


def write_masks(result, out_dir: Path, *, stem: str, run=None) -> list[dict[str, Path]]:
    """Each mask as GeoTIFF on the source grid (PNG when the input had no georeferencing) + overlay,
    named ``<stem>_mask<k>``; each file written atomically and recorded in ``run`` (a RunFolder)."""
    from ..io import write_mask

    if not result.masks:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    source = next(iter(result.rasters.values()), None)
    written = []
    for k, mask in enumerate(result.masks):
        paths = write_mask(mask, out_dir / f"{stem}_mask{k}", source=source)
        if run is not None:
            run.record(*paths.values())
        written.append(paths)
    return written

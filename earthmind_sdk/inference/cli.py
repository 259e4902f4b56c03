"""``earthmind infer``: one question about one image or a SAR + optical pair."""
from __future__ import annotations

import json

from ..contracts import Sample
from ..errors import EarthMindError


def open_pipeline(model: str, *, device: str = "cpu", dtype: str = "float32", min_overlap: float = 0.5):
    """A checkpoint directory, a bundled spec name (random weights: for trying the pipeline) or a spec file."""
    from ..jobs.open_model import open_model
    from .pipeline import Pipeline

    net, tokenizer = open_model(model, dtype=dtype, device=device)
    return Pipeline(net, tokenizer, min_overlap=min_overlap)


def add_pair_option(parser) -> None:
    """``--min-overlap``: how much of the primary image a georeferenced partner must cover."""
    parser.add_argument("--min-overlap", type=overlap_fraction, default=0.5, metavar="FRACTION",
                        help="share of the primary image's footprint (SAR in a pair) the other image must "
                             "cover to be warped onto it, 0..1 (default 0.5)")


def overlap_fraction(text: str) -> float:
    """argparse type of ``--min-overlap``: a number in [0, 1]."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text!r}")
    return value


#: ``earthmind infer``'s inputs: flag stem -> the family of the model input it fills. Each has
#: ``--<stem>`` (the file), ``--<stem>-sensor NAME`` and repeatable ``--<stem>-opt KEY=VALUE``.
INPUTS: tuple[tuple[str, str], ...] = (("image", "optical"), ("sar", "sar"), ("ms", "multispectral"))
_OPT_EXAMPLES = {"optical": "rgb=B4,B3,B2", "sar": "composite=vv_vh_ratio", "multispectral": "grouping=truecolor"}


def add_sensor_options(parser) -> None:
    """``--image-sensor``/``--image-opt``, ``--sar-sensor``/``--sar-opt``, ``--ms-sensor``/``--ms-opt``
    and ``--min-overlap``. Options given for the sensor the model declares for an input are
    merged over the options its checkpoint declares (see :class:`~earthmind_sdk.model.batching.BatchBuilder`)."""
    for stem, family in INPUTS:
        parser.add_argument(f"--{stem}-sensor", metavar="NAME",
                            help=f"sensor that reads --{stem} (default: the model's {family} input sensor; "
                                 f"`earthmind plugins` lists them)")
        parser.add_argument(f"--{stem}-opt", action="append", default=[], metavar="KEY=VALUE",
                            help=f"option of the --{stem} sensor, repeatable (e.g. {_OPT_EXAMPLES[family]}); "
                                 f"overrides the same option declared by the checkpoint")
    add_pair_option(parser)


def inputs_from_args(args, pipe) -> tuple[dict[str, str], dict[str, dict]]:
    """(images, sensors) for a :class:`Sample` from the input flags: model input -> file, and
    model input -> ``{name, args}`` where a sensor or options were given."""
    from ..sensors.choice import parse_options

    images: dict[str, str] = {}
    sensors: dict[str, dict] = {}
    for stem, family in INPUTS:
        path = getattr(args, stem, None)
        name, opts = getattr(args, f"{stem}_sensor", None), getattr(args, f"{stem}_opt", None) or []
        if path is None:
            continue
        slot = "optical" if family == "optical" and "optical" in pipe.sensor_names else _sensor_for(pipe, family)
        images[slot] = path
        if name or opts:
            sensors[slot] = {"name": name or slot, "args": parse_options(opts, where=f"--{stem}-opt")}
    return images, sensors


def check_sensor_flags(args) -> None:
    """Named sensors and their options, checked before the (possibly minutes-long) model load."""
    from ..sensors.choice import build_sensor, parse_choice, parse_options

    for stem, family in INPUTS:
        name, opts = getattr(args, f"{stem}_sensor", None), getattr(args, f"{stem}_opt", None) or []
        if getattr(args, stem, None) is None and (name or opts):
            raise EarthMindError(f"--{stem}-{'sensor' if name else 'opt'} given without --{stem}")
        if name and getattr(args, stem, None) is not None:
            args_ = parse_options(getattr(args, f"{stem}_opt", None) or [], where=f"--{stem}-opt")
            build_sensor(parse_choice({"name": name, "args": args_}, where=f"--{stem}-sensor"),
                         slot=family, where=f"--{stem}-sensor")


def infer_command(args) -> int:
    from ..devices import check_device
    from ..io import write_masks
    from ..jobs import check_output_path, open_run_folder, output_stem

    check_device(args.device, args.dtype, where="--device")
    check_sensor_flags(args)
    check_output_path(args.out, what="--out")  # before minutes of model loading
    pipe = open_pipeline(args.model, device=args.device, dtype=args.dtype, min_overlap=args.min_overlap)
    images, sensors = inputs_from_args(args, pipe)
    sample = Sample(images=images, prompt=args.question, task=args.task or guess_task(args.question),
                    sensors=sensors)
    result = pipe(sample, max_new_tokens=args.max_new_tokens)
    request = {"question": args.question, "task": sample.task, "images": images, "model": str(args.model),
               "max_new_tokens": args.max_new_tokens}
    written = []
    if result.masks:
        # parallel runs may share --out: unique names per (input, request), each file recorded
        run = open_run_folder(args.out, job="infer", shared=True, what="--out")
        written = write_masks(result, run.path, stem=output_stem(args.image, request), record=run.record)
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

"""YAML recipes: load, apply dotted ``key=value`` overrides, validate against a schema, run.

A recipe names its job (``job: infer | eval | train | quickstart | map``, or one a plugin
registers through ``register_jobs``); each job is a :class:`Job` declaring a schema of
:class:`Field` s. The built-in jobs' schemas are defined here and registered by
:mod:`earthmind_sdk.jobs.plugin`. Validation errors name the file, the key path and the allowed
values or expected type, and unknown keys get "did you mean".
"""
from __future__ import annotations

import copy
import difflib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from .errors import PluginError, RecipeError
from .registry import import_target
from .schema import Field, _choice_message, component_args, validate  # noqa: F401 - recipes' public names


@dataclass(frozen=True)
class Job:
    """What ``earthmind run`` needs to validate and run a recipe naming this job."""

    runner: str | Callable[..., Any]  # "module:function" (lazy) or a function(recipe: dict, source: str)
    schema: Mapping[str, Field]       # usually job_schema({...}): job, seed, model, output + the job's own
    smoke: tuple[str, ...] = ()  # overrides applied first when EARTHMIND_SMOKE=1 (see load_recipe)


def job(name: Any, *, source: str = "<recipe>") -> Job:
    """The registered job ``name``; one line listing the known jobs when there is none."""
    from .plugins import registry

    jobs = registry("jobs")
    if not isinstance(name, str) or name not in jobs:
        raise RecipeError(f"{source}: job: {_choice_message(name, jobs.names())}")
    found = jobs.get(name)
    if not isinstance(found, Job):
        entry = jobs.entry(name)
        raise PluginError(f"job {name!r} from plugin {entry.owner!r} is a {type(found).__name__}, not a "
                          "earthmind_sdk.recipes.Job")
    return found


@dataclass
class Recipe:
    job: str
    config: dict[str, Any]
    source: str = "<recipe>"
    overrides: list[str] = field(default_factory=list)

    def run(self) -> Any:
        from .devices import check_recipe_model  # at run time: --dry-run of a GPU recipe works anywhere

        check_recipe_model(self.config, source=self.source)
        runner = job(self.job, source=self.source).runner
        fn: Callable[..., Any] = import_target(runner, f"job {self.job!r}") if isinstance(runner, str) else runner
        return fn(self.config, source=self.source)


# --- shared sections ----------------------------------------------------------------------
MODEL = {
    "spec": Field((str, dict), default="tiny",
                  doc="bundled spec name (tiny, earthmind-4b, earthmind-4b-multi, sa2va-4b), a spec YAML path, or an inline spec"),
    "checkpoint": Field((str, type(None)), doc="HF-format checkpoint directory; null builds the spec with random weights"),
    "dtype": Field(str, default="float32", choices=("float32", "bfloat16", "float16")),
    "device": Field(str, default="cpu", doc="cpu, cuda, cuda:N", pattern=r"cpu|cuda(:\d+)?|mps",
                    hint="cpu, cuda, cuda:N or mps"),
}
OUTPUT = {
    "dir": Field(str, default="out", doc="folder for results; created if missing, never overwritten silently"),
    "overwrite": Field(bool, default=False, doc="allow writing into a non-empty output folder"),
}


def job_schema(extra: Mapping[str, Field]) -> dict[str, Field]:
    """A job's recipe schema: the shared ``job``, ``seed``, ``model``, ``output`` plus ``extra``."""
    base = {
        "job": Field(str, required=True, doc="which runner executes this recipe"),
        "seed": Field(int, default=0, ge=0),
        "model": Field(dict, schema=MODEL),
        "output": Field(dict, schema=OUTPUT),
    }
    base.update(extra)
    return base


INFER_JOB = Job(
    "earthmind_sdk.inference.runner:run_infer_recipe",
    job_schema({
        "task": Field(str, default="vqa", registry="tasks", doc="task that builds prompts and parses answers"),
        "batch_size": Field(int, default=4, ge=1),
        "max_new_tokens": Field(int, default=64, ge=1),
        "samples": Field(list, required=True, doc="list of {images: {sensor: path}, question, ...}",
                         items=Field(dict)),
    }),
)


# --- loading --------------------------------------------------------------------------------
def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read a YAML recipe, apply overrides, validate; errors name the file and key path."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise RecipeError(f"{source}: recipe file not found")
    try:
        raw = load_yaml_strict(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{source}: not a text (UTF-8) file: byte {exc.start} is 0x{exc.object[exc.start]:02x}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise RecipeError(f"{source}:{where} malformed YAML: {getattr(exc, 'problem', exc)}") from None
    return recipe_from_dict(raw, source=source, overrides=overrides)


SMOKE_ENV = "EARTHMIND_SMOKE"


def smoke_overrides(job_name: Any) -> tuple[str, ...]:
    """The one way to shorten a job for CI and documentation checks: with ``EARTHMIND_SMOKE=1``
    in the environment, the job's declared ``smoke`` overrides (fewer steps, fewer scenes) are
    applied before the user's own, and a line on stderr says so. Jobs without any run as written."""
    if os.environ.get(SMOKE_ENV, "") not in ("1", "true", "yes"):
        return ()
    try:
        smoke = job(job_name).smoke
    except RecipeError:
        return ()  # reported with the file's name by recipe_from_dict
    if smoke:
        print(f"{SMOKE_ENV}=1: shortened run ({' '.join(smoke)})", file=sys.stderr)
    return smoke


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML would keep the last)."""


def _mapping_no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, (dict, list)):
            continue  # unhashable: reported by the constructor below
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key].line + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_no_duplicates)


def load_yaml_strict(text: str) -> Any:
    """``yaml.safe_load`` that refuses duplicate keys (used for recipes and spec files)."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def recipe_from_dict(raw: Any, *, source: str = "<recipe>", overrides=()) -> Recipe:
    from .schema import check_untrusted

    if not isinstance(raw, dict):
        raise RecipeError(f"{source}: a recipe must be a mapping at the top level, got {type(raw).__name__}")
    config = copy.deepcopy(raw)
    overrides = (*smoke_overrides(config.get("job")), *overrides)
    for item in overrides:
        apply_override(config, item, source=source)
    check_untrusted(config, source, RecipeError)
    job_name = config.get("job")
    validated = validate(config, job(job_name, source=source).schema, source=source, path="")
    return Recipe(job_name, validated, source, list(overrides))


def apply_override(config: dict, item: str, *, source: str = "<recipe>") -> None:
    """``a.b.c=value``; the value is parsed as YAML (numbers, booleans, lists, null)."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise RecipeError(f"{source}: override {item!r} must look like key.path=value")
    parts = key.split(".")
    node = config
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part) if isinstance(node, dict) else None
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise RecipeError(f"{source}: override {item!r}: {'.'.join(parts[: i + 1])} is not a mapping")
        node = nxt
    try:
        node[parts[-1]] = yaml.safe_load(value) if value != "" else ""
    except yaml.YAMLError:
        node[parts[-1]] = value


def _dataset_section(default: str) -> Field:
    return Field(dict, schema={
        "dataset": Field(str, default=default, registry="datasets"),
        "args": component_args("datasets", "dataset", doc="keyword arguments of the dataset (e.g. root, annotations, path)"),
    })


#: What ``train.freeze`` may name: the model's top-level parts.
MODEL_PARTS = ("vision_model", "mlp1", "language_model", "fusion", "grounding_encoder", "text_hidden_fcs")

_LORA = {
    "r": Field(int, default=128, ge=1, doc="LoRA rank (v1: 128)"),
    "alpha": Field(int, default=256, ge=1, doc="LoRA alpha (v1: 256)"),
    "dropout": Field(float, default=0.05, ge=0.0, le=1.0),
    "targets": Field(list, default=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                     items=Field(str), doc="LLM linear layers that get adapters"),
}
_LOSS_WEIGHTS = {name: Field(float, default=default, ge=0.0)
                 for name, default in (("lm", 1.0), ("mask", 2.0), ("dice", 0.5), ("sap", 0.1))}

_BALANCE = {
    "floor": Field(float, default=0.5, ge=0.0, le=1.0,
                   doc="share of each subtask's natural share it always keeps (1: no balancing)"),
    "momentum": Field(float, default=0.9, ge=0.0, le=0.999, doc="of the per-subtask error average, per step"),
    "power": Field(float, default=1.0, gt=0.0, doc="relative errors are raised to it: higher favours the most stuck subtask more"),
}

_TRAIN = {
    "steps": Field(int, default=100, ge=1, doc="optimizer steps"),
    "batch_size": Field(int, default=8, ge=1, doc="records per step on each process"),
    "grad_accum": Field(int, default=1, ge=1, doc="split each step's records into this many backward passes"),
    "lr": Field(float, default=4e-5, gt=0.0, doc="AdamW peak learning rate (EarthMind v1: 4e-5)"),
    "weight_decay": Field(float, default=0.05, ge=0.0),
    "betas": Field(list, default=[0.9, 0.999], items=Field(float, ge=0.0, le=1.0)),
    "warmup_ratio": Field(float, default=0.05, ge=0.0, le=1.0, doc="linear warm-up share, then cosine"),
    "grad_clip": Field(float, default=1.0, gt=0.0),
    "freeze": Field(list, default=["vision_model"],
                    items=Field(str, choices=MODEL_PARTS, pattern=rf"(?:{'|'.join(MODEL_PARTS)})(?:\.[A-Za-z_]\w*)*",
                                hint="or a dotted path inside one of them"),
                    doc="submodules kept frozen, e.g. grounding_encoder.sam2_model.image_encoder"),
    "lora": Field((dict, type(None)), default=None, schema=_LORA,
                  doc="{r, alpha, dropout, targets} on the LLM (v1: 128/256/0.05)"),
    "loss_weights": Field((dict, type(None)), default=None, schema=_LOSS_WEIGHTS,
                          doc="override of lm 1.0, mask 2.0, dice 0.5, sap 0.1"),
    "num_points": Field(int, default=12544, ge=1, doc="points sampled per mask for the mask losses"),
    "sap": Field(bool, default=False, doc="Spatial Attention Prompting loss (v1), from the last layer's q/k"),
    "sap_focus": Field(bool, default=False, doc="with sap: also pull a closed question's answer position toward "
                                                "the objects it asks about (records with a focus mask)"),
    "log_every": Field(int, default=10, ge=1),
    "save_every": Field(int, default=0, ge=0, doc="checkpoint every N steps under output.dir/checkpoints/step-<N> (0: never)"),
    "keep_last": Field(int, default=2, ge=0, doc="checkpoints kept (0: all)"),
    "resume": Field(bool, default=False, doc="continue from the latest checkpoint in output.dir (same recipe)"),
    "group_by_length": Field(bool, default=False, doc="batches of similar text length (less padding)"),
    "autocast": Field(str, default="bf16", choices=("bf16", "none"), doc="bf16 autocast on GPU for float32 weights"),
    "gradient_checkpointing": Field(bool, default=False, doc="recompute activations in backward (less memory)"),
    "tensorboard": Field(bool, default=True, doc="TensorBoard events in output.dir/tensorboard when installed"),
    "shard": Field(str, default="replicate", choices=("replicate", "fsdp2"),
                   doc="replicate (DDP-style) or fsdp2 (fully_shard: weights, grads, optimizer split over GPUs)"),
    "lr_scale": Field((dict, type(None)), default=None,
                      doc="{submodule path: factor}: that part learns at factor x lr (e.g. grounding_encoder: 0.5)"),
    "balance": Field((dict, type(None)), default=None, schema=_BALANCE,
                     doc="{floor, momentum}: each step's mix of subtasks follows their recent loss, so a subtask stuck "
                         "at chance gets more of the batch (no effect with null, the default)"),
    "sensor_dropout": Field((dict, type(None)), default=None,
                            doc="{sensor: probability} of removing that sensor's image from closed questions (the ablation of eval); never from a record that needs it (Record.needs)"),
}

TRAIN_JOB = Job(
    "earthmind_sdk.train.runner:run_train_recipe",
    job_schema({
        "data": _dataset_section("synthetic_scenes"),
        "train": Field(dict, schema=_TRAIN),
    }),
)

QUICKSTART_JOB = Job(
    "earthmind_sdk.jobs.quickstart:run_quickstart_recipe",
    job_schema({
        "data": Field(dict, schema={
            "train_scenes": Field(int, default=96, ge=1),
            "eval_scenes": Field(int, default=112, ge=1, doc="held-out scenes (seed + 10000)"),
            "size": Field(int, default=112, ge=16, doc="scene size in pixels"),
            "repeat": Field((dict, type(None)), default=None,
                            doc="{subtask: n}: each training question of that subtask is seen n times an epoch (a mixture weight)"),
        }),
        "train": Field(dict, schema=_TRAIN),
        "eval": Field(dict, schema={
            "batch_size": Field(int, default=32, ge=1),
            "max_new_tokens": Field(int, default=4, ge=1),
            "before_scenes": Field(int, default=24, ge=0, doc="held-out scenes the untrained model is evaluated on"),
        }),
    }),
    smoke=("data.train_scenes=8", "data.eval_scenes=8", "train.steps=20", "train.batch_size=8",
           "train.log_every=2"),
)

MAP_JOB = Job(
    "earthmind_sdk.inference.map_job:run_map_recipe",
    job_schema({
        "question": Field(str, required=True, doc="the question or instruction mapped over each scene"),
        "task": Field((str, type(None)), default=None, doc="task name; null: chosen from the question"),
        "scenes": Field((list, type(None)), default=None, items=Field(dict),
                        doc="list of {id, image, sar, ms}: paths relative to the recipe"),
        "catalogue": Field((str, type(None)), default=None,
                           doc="a folder, glob, CSV (id,image,sar,ms) or STAC ItemCollection JSON of scenes"),
        "assets": Field((dict, type(None)), default=None, doc="STAC asset key per role, e.g. {image: visual}"),
        "window": Field((int, type(None)), default=None, doc="window pixels; null: the model tile size x tiles_per_window"),
        "overlap": Field((int, type(None)), default=None, doc="pixels shared by neighbouring windows; null: window/4"),
        "tiles_per_window": Field(int, default=1, ge=1),
        "batch_size": Field(int, default=8, ge=1, doc="windows per model batch"),
        "threshold": Field(float, default=0.5, gt=0.0, le=1.0),
        "probability": Field(bool, default=False, doc="also write the blended probability COG"),
        "max_new_tokens": Field(int, default=64, ge=1),
    }),
)

EVAL_JOB = Job(
    "earthmind_sdk.eval.runner:run_eval_recipe",
    job_schema({
        "data": _dataset_section("earthmind_bench"),
        "batch_size": Field(int, default=8, ge=1),
        "max_new_tokens": Field(int, default=64, ge=1),
        "ablate": Field((str, type(None)), default=None, registry="sensors",
                        doc="remove this sensor's image (e.g. sar) to measure what the model gets from it; all sensors: blanked (blind)"),
    }),
)

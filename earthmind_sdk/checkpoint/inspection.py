"""``earthmind inspect CKPT``: what :func:`earthmind_sdk.load` will decide about a folder, before a
long run, without building the model or reading tensor data (safetensors headers only).

It reports which model the folder holds (EarthMind v1 / v2, Sa2VA, or one of ours) and why, the
sensors and fusion it will use, whether ``lm_head`` is tied, the stored dtype(s), the tensor
count, the tensor names it maps to the graph's, and problems ``load`` would refuse.
"""
from __future__ import annotations

import argparse
import json
import struct
from collections import Counter
from pathlib import Path
from typing import Any, Optional

from ..errors import CheckpointError

_VARIANT_NAMES = {"earthmind-v1": "EarthMind v1", "earthmind-v2": "EarthMind v2", "sa2va": "Sa2VA",
                  "sdk": "earthmind-sdk checkpoint"}
_SAFETENSORS_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64",
                       "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}
_HEADER_LIMIT = 100 * 1024 * 1024


def _safetensors_header(file: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """name -> (shape, dtype) from a safetensors header (plain JSON; no torch, no tensor data)."""
    try:
        with open(file, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            if size > _HEADER_LIMIT:
                raise ValueError(f"header of {size} bytes")
            header = json.loads(fh.read(size))
    except (OSError, ValueError, struct.error) as exc:
        raise CheckpointError(f"{file}: cannot read safetensors header ({exc})") from None
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("shape"), list):
            raise CheckpointError(f"{file}: tensor {name!r} has a malformed header entry")
        out[name] = (tuple(int(d) for d in entry["shape"]), _SAFETENSORS_DTYPES.get(entry.get("dtype"), str(entry.get("dtype"))))
    return out


def _tensors(path: Path, files: dict[str, list[str]]) -> dict[str, tuple[tuple[int, ...], str]]:
    out: dict[str, tuple[tuple[int, ...], str]] = {}
    for fname in files:
        if fname.endswith(".safetensors"):
            out.update(_safetensors_header(path / fname))
        else:  # .bin: no header to read, the file itself is loaded
            from .files import _load_bin

            out.update({k: (tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in _load_bin(path / fname).items()})
    return out


def inspect_checkpoint(path, variant: Optional[str] = None) -> dict[str, Any]:
    """A plain-data report on an HF-format EarthMind / Sa2VA folder (see the module docstring)."""
    from . import files as wf
    from . import read_config
    from .config import spec_from_config
    from .layout import decide, model_key, stored_names

    path = Path(path)
    cfg = read_config(path)
    files = wf.weight_files(path)
    stored = _tensors(path, files)
    names = stored_names(stored)
    shapes = {names[k]: v[0] for k, v in stored.items()}
    em = cfg.get("earthmind") or {}
    if em:
        if variant is not None:
            raise CheckpointError(f"checkpoint {path}: config.json names its sensors and fusion itself "
                                  f"(earthmind block); variant={variant!r} does not apply")
        which, reason, overrides = "sdk", "config.json has an earthmind block (saved by earthmind-sdk)", {}
    else:
        d = decide(cfg, shapes, variant)
        which, reason, overrides = d.variant, d.reason, d.spec_keys()
    spec, notes = spec_from_config(cfg, shapes, path, overrides)
    llm = cfg["llm_config"]
    tied = bool(llm.get("tie_word_embeddings", False))
    head = "language_model.lm_head.weight"
    problems = []
    if tied:
        tie_why = "llm_config.tie_word_embeddings is true: lm_head is the embedding matrix" + \
            (" (a stored copy is ignored)" if head in shapes else " (not stored)")
    else:
        tie_why = "llm_config.tie_word_embeddings is " + ("false" if "tie_word_embeddings" in llm else "absent (false)")
        if head not in shapes:
            problems.append(f"{head} is not stored but config.json says untied: load refuses it")
    dtypes = Counter(dt for _, dt in stored.values())
    prefixes = Counter(k.split(".")[0] for k in shapes)
    fusion = spec["fusion"]
    from ..model.spec import parse_sensor_entries

    sensors, sensor_args = parse_sensor_entries(spec["sensors"], "sensors", CheckpointError)
    return {
        "path": str(path),
        "model": _VARIANT_NAMES[which],
        "variant": which,
        "why": reason,
        "sensors": sensors,
        "sensor_args": sensor_args,
        "segment_sensor": spec["segment_sensor"] or sensors[0],
        "fusion": fusion,
        "fusion_text": _fusion_text(fusion),
        "language_model": llm.get("architectures", ["?"])[0],
        "tied_embeddings": tied,
        "tied_why": tie_why,
        "decoder": spec["decoder"],
        "dtype": cfg.get("torch_dtype"),
        "stored_dtypes": dict(dtypes),
        "tensors": len(stored),
        "parameters": sum(_numel(s) for s, _ in stored.values()),
        "tensors_by_prefix": dict(sorted(prefixes.items())),
        "mapped": {k: model_key(v) for k, v in names.items() if model_key(v) != k},
        "files": sorted(files),
        "notes": notes,
        "problems": problems,
    }


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _fusion_text(fusion: Optional[dict[str, Any]]) -> str:
    if fusion is None:
        return "none (one sensor)"
    name, args = fusion["name"], fusion.get("args") or {}
    if name == "mma" and args.get("reweight") is False:
        return "sensors' tokens joined tile by tile, no reweighting (EarthMind v1 inference; mma, reweight false)"
    if name == "hca":
        return "HCA: per-tile entropy quality + text relevance, weighted sum (EarthMind v2)"
    return f"{name} {args}" if args else name


def _sensor_text(name: str, args: dict[str, dict[str, Any]]) -> str:
    opts = args.get(name) or {}
    return f"{name} ({', '.join(f'{k}={v}' for k, v in opts.items())})" if opts else name


def _decoder_text(decoder: Optional[dict[str, Any]]) -> str:
    if not decoder:
        return "none"
    args = decoder.get("args") or {}
    extra = f" with {len(args['overrides'])} overrides" if args.get("overrides") else ""
    return f"{decoder['name']} {args.get('config', '')}{extra}".strip()


def format_report(r: dict[str, Any]) -> str:
    lines = [f"{r['path']}",
             f"  model:     {r['model']} ({r['why']})",
             f"  sensors:   {', '.join(_sensor_text(s, r['sensor_args']) for s in r['sensors'])} "
             f"(segmented: {r['segment_sensor']})",
             f"  fusion:    {r['fusion_text']}",
             f"  LLM:       {r['language_model']}, lm_head {'tied' if r['tied_embeddings'] else 'untied'} ({r['tied_why']})",
             f"  decoder:   {_decoder_text(r['decoder'])}",
             f"  dtype:     {r['dtype']} (stored: {', '.join(f'{k} x{v}' for k, v in r['stored_dtypes'].items())})",
             f"  tensors:   {r['tensors']} ({r['parameters']:,} parameters): "
             + ", ".join(f"{k} {v}" for k, v in r["tensors_by_prefix"].items()),
             f"  files:     {', '.join(r['files'])}"]
    if r["mapped"]:
        shown = list(r["mapped"].items())
        lines.append(f"  mapped:    {len(shown)} tensor name(s): "
                     + "; ".join(f"{a} -> {b}" for a, b in shown[:2]) + (" ..." if len(shown) > 2 else ""))
    for n in r["notes"]:
        lines.append(f"  note:      {n}")
    for p in r["problems"]:
        lines.append(f"  PROBLEM:   {p}")
    return "\n".join(lines)


def add_parser(sub) -> None:
    """Register ``earthmind inspect`` on the CLI's subparsers."""
    p = sub.add_parser("inspect", help="say what a checkpoint folder is and what load will decide",
                       description="Report which model CKPT holds (EarthMind v1 / v2, Sa2VA) and why, the sensors "
                                   "and fusion it will use, tied embeddings, dtype, tensor count and mapped tensor "
                                   "names, from config.json and the weight headers (no model is built).")
    p.add_argument("checkpoint", help="HF-format checkpoint directory")
    p.add_argument("--variant", choices=("v1", "v2", "sa2va"), default=None,
                   help="take a published-layout folder for this model (as load(variant=...))")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_command)


def _command(args: argparse.Namespace) -> int:
    report = inspect_checkpoint(args.checkpoint, args.variant)
    print(json.dumps(report, indent=2, default=str) if args.json else format_report(report))
    return 1 if report["problems"] else 0

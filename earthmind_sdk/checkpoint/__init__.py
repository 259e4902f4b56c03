"""EarthMind / Sa2VA HF-format checkpoints: load and save without ``trust_remote_code``.

A directory holds ``config.json`` (``model_type: "sa2va_chat"``) and safetensors weights
(``model.safetensors`` or shards + ``model.safetensors.index.json``; ``pytorch_model*.bin`` is
read too). Tensor names are the published ones (see :mod:`.layout`: the graph's state-dict
keys except the top-level ``local_query`` and SAM2's ``g_weight``); a tied ``lm_head`` is not stored.

    model, info = load(path, dtype=torch.bfloat16, device="cuda")
    save(model, path, max_shard_size="5GB", tokenizer=tok)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from ..errors import CheckpointError

__all__ = ["load", "save", "LoadInfo", "read_config"]

_LIST = 20


class LoadInfo(dict):
    """What :func:`load` did: ``spec``, ``files``, ``dtype``, ``notes`` (defaults it chose), ``skipped``,
    ``variant`` and ``variant_reason`` (which model the folder holds and why), ``mapped`` (stored
    tensor name -> graph key, where they differ)."""


def _tied_head(model) -> Optional[str]:
    lm = model.language_model
    cfg = getattr(lm, "config", None)
    if cfg is not None and getattr(cfg, "tie_word_embeddings", False):
        return "language_model.lm_head.weight"
    return None


def _expected(model) -> dict[str, Any]:
    state = model.state_dict(keep_vars=True)
    tied = _tied_head(model)
    from .layout import checkpoint_name

    return {checkpoint_name(k): v for k, v in state.items() if k != tied}


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_LIST])
    return shown + (f", ... ({len(names) - _LIST} more)" if len(names) > _LIST else "")


def read_config(path: Path) -> dict[str, Any]:
    """config.json of a checkpoint directory, parsed and checked (CheckpointError naming the file)."""
    from .config import check_config

    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path}: not a directory")
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise CheckpointError(f"checkpoint {path}: config.json is missing")
    try:
        cfg = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{cfg_file}: invalid JSON ({exc})") from None
    check_config(cfg, path)
    return cfg


def load(path, dtype=None, device: str = "cpu", spec: Optional[dict[str, Any]] = None,
         variant: Optional[str] = None, allow_nonfinite: bool = False):
    """Read an HF-format EarthMind / Sa2VA directory -> (EarthMindModel, LoadInfo).

    ``dtype`` None keeps the stored precision (config ``torch_dtype``); ``spec`` overrides
    top-level spec keys derived from config.json (e.g. a smaller decoder). ``variant``
    (``"v1"``, ``"v2"``, ``"sa2va"``) overrides which model a published-layout folder is taken
    for; by default it is decided from the folder's contents (:func:`.layout.decide`). Missing or
    unexpected tensors, shape mismatches, missing shards, corrupt files, integer data for float
    parameters, NaN/Inf weights (unless ``allow_nonfinite``) and unsupported architectures raise
    :class:`~earthmind_sdk.errors.CheckpointError` naming them."""
    import torch

    from ..model.graph import EarthMindModel
    from ..model.spec import validate_spec
    from . import files as wf
    from .config import spec_from_config
    from .layout import decide, model_key, stored_names

    path = Path(path)
    cfg = read_config(path)
    cfg_file = path / "config.json"
    files = wf.weight_files(path)
    stored = wf.shapes(path, files)
    names = stored_names(stored)  # stored name -> published name
    shapes = {names[k]: v for k, v in stored.items()}
    overrides, notes, decision = dict(spec or {}), [], None
    if not cfg.get("earthmind"):
        decision = decide(cfg, shapes, variant)
        notes.append(f"{decision.variant}: {decision.reason}")
        overrides = {**decision.spec_keys(), **overrides}
    elif variant is not None:
        raise CheckpointError(f"checkpoint {path}: config.json names its sensors and fusion itself "
                              f"(earthmind block); variant={variant!r} does not apply")
    spec_dict, more = spec_from_config(cfg, shapes, path, overrides)
    notes += more
    model_spec = validate_spec(spec_dict, where=str(cfg_file))
    if dtype is None:
        dtype = getattr(torch, str(cfg.get("torch_dtype") or "float32"), torch.float32)
    elif isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    with torch.device(device):
        model = EarthMindModel(model_spec)
    model.to(dtype=dtype)
    expected = _expected(model)
    tied = _tied_head(model)
    skipped = []
    if tied is not None and tied in shapes:
        skipped.append(tied)  # tied to the embeddings: the stored copy is redundant
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected) - set(skipped))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing tensor(s): {_listing(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensor(s): {_listing(unexpected)}")
        if all(k.startswith("grounding_encoder.") for k in missing + unexpected):
            parts.append("only SAM2 tensors differ: its configuration is not the assumed one; pass "
                         "spec={'decoder': {'name': 'sam2', 'args': {...}}} to load()")
        raise CheckpointError(f"checkpoint {path} does not match the model its config.json describes: "
                              + "; ".join(parts))
    where = {names[k]: f for f, keys in files.items() for k in keys}
    for key, target in expected.items():
        if tuple(target.shape) != tuple(shapes[key]):
            raise CheckpointError(f"checkpoint {path / where.get(key, '?')}: tensor {key!r} has shape "
                                  f"{tuple(shapes[key])} but the model built from config.json expects {tuple(target.shape)}")
    with torch.no_grad():
        for fname, key, tensor in wf.checked_tensors(path, files, expected, skip=skipped, names=names,
                                                     allow_nonfinite=allow_nonfinite):
            expected[key].copy_(tensor)
    model.eval()
    mapped = {k: model_key(v) for k, v in names.items() if model_key(v) != k}
    info = LoadInfo(spec=model_spec, files=sorted(files), dtype=dtype, notes=notes, skipped=skipped,
                    config=cfg, mapped=mapped, variant=decision.variant if decision else "sdk",
                    variant_reason=decision.reason if decision else "config.json has an earthmind block")
    return model, info


def save(model, path, max_shard_size: "int | str" = "5GB", tokenizer=None, dtype=None) -> list[str]:
    """Write ``config.json`` and safetensors weights (sharded above ``max_shard_size``) -> file names.

    ``tokenizer`` (anything with ``save_pretrained``) is saved into the same directory. The
    checkpoint is built in a temporary folder beside ``path`` and renamed into place, so a reader
    never sees half a checkpoint. ``path`` must be new, empty, or a checkpoint an earlier
    ``save`` wrote (whose files it replaces); a folder with any other file is refused, untouched."""
    import os
    import shutil

    from ..io.atomic import TMP_MARK, temp_sibling
    from ..jobs.run_folder import LEDGER, check_output_path, recorded
    from ..errors import OutputError
    from . import files as wf
    from .config import config_from_model

    path = Path(path)
    check_output_path(path.parent, what="checkpoint")
    if path.exists():
        if not path.is_dir():
            raise OutputError(f"checkpoint folder {path}: exists and is a file")
        ours = {r.split(os.sep)[0] for r in recorded(path)} | {LEDGER}
        foreign = sorted(e for e in os.listdir(path) if e not in ours and TMP_MARK not in e)
        if foreign:
            shown = ", ".join(foreign[:3]) + (" ..." if len(foreign) > 3 else "")
            raise OutputError(f"checkpoint folder {path}: holds files earthmind did not write ({shown}); "
                              "save into a new or empty folder")
    cfg = config_from_model(model)
    state = {}
    seen: dict[int, str] = {}
    for key, t in _expected(model).items():
        t = t.detach()
        if dtype is not None:
            t = t.to(dtype)
        t = t.to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen or t.numel() == 0:
            t = t.clone()  # safetensors refuses tensors that share storage
        seen[t.untyped_storage().data_ptr()] = key
        state[key] = t
    if dtype is not None:
        from .config import dtype_name

        cfg["torch_dtype"] = cfg["llm_config"]["torch_dtype"] = dtype_name(dtype)
    tmp = temp_sibling(path)
    tmp.mkdir()
    try:
        names = wf.write(tmp, state, max_shard_size, metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True, default=_json_default) + "\n")
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        written = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        (tmp / LEDGER).write_text("".join(w + "\n" for w in written))
        old = None
        if path.exists():
            old = temp_sibling(path)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)  # only files an earlier save wrote (checked above)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ["config.json", *names]


def _json_default(obj):
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)

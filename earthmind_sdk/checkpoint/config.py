"""config.json <-> model spec.

A released ``config.json`` (EarthMind-4B, EarthMind4B_multi, Sa2VA-4B) says nothing about
sensors, fusion or the SAM2 size; we store those in an extra ``earthmind`` block when saving and,
when it is absent, default as the authors' code behaves:

* SAM2: Hiera-L (``sam2_hiera_l``) when the weights hold ``grounding_encoder.*``, else none.
* sensors and fusion: decided from the folder's contents by :func:`.layout.decide` (never
  from its name) and passed in as overrides by :func:`~earthmind_sdk.checkpoint.load`.
* tiling: 448 px tiles, 1..12 tiles, thumbnail (the released generation code hard-codes these,
  whatever config.json says).
* sensor options: none, i.e. each sensor's defaults, the release-faithful preparation (the
  authors' grey SAR image and true-colour optical). A saved model writes its inputs' sensors
  with their options (``earthmind.sensors``: ``[{name: sar, args: {...}}, optical]``); on load
  they are checked as plain values bound to a registered sensor's signature, never built.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Optional

from ..errors import CheckpointError, name_list
from ..schema import check_untrusted
from ..model.encoders.internvit import CONFIG_FIELDS as VISION_FIELDS

MODEL_TYPE = "sa2va_chat"
ARCHITECTURE = "Sa2VAChatModel"
FORMAT = 1
_LLM_DROP = ("architectures", "model_type", "_name_or_path", "transformers_version", "auto_map",
             "torch_dtype", "dtype", "_commit_hash", "_attn_implementation_autoset")


def dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def config_from_model(model) -> dict[str, Any]:
    """The released-layout config.json for a built EarthMindModel (plus our ``earthmind`` block)."""
    import transformers

    from ..model.llm import llm_config

    spec = model.spec
    img = spec.image
    vision = model.vision_model.vision_config() if hasattr(model.vision_model, "vision_config") else None
    if vision is not None:
        vision = dict(vision, select_layer=img["select_layer"])
    dtype = next(model.parameters()).dtype
    llm = llm_config(model.language_model)
    llm["torch_dtype"] = dtype_name(dtype)
    try:
        language_model(llm, "config.json")
    except CheckpointError:
        raise CheckpointError(f"cannot save: the language model is a {llm['architectures'][0]}, which no plugin "
                              "registers as a checkpoint architecture (hook register_architectures), so the "
                              "checkpoint could not be loaded") from None
    em: dict[str, Any] = {
        "format": FORMAT,
        "spec_name": spec.name,
        "sensors": spec.sensor_entries(),
        "segment_sensor": spec.segment_sensor,
        "fusion": copy.deepcopy(spec.fusion),
        "decoder": copy.deepcopy(spec.decoder),
        "tokens": dict(spec.tokens),
        "language_model": spec.language_model["name"],
        "image": dict(img),
    }
    if spec.encoder["name"] != "internvit":
        em["encoder"] = copy.deepcopy(spec.encoder)
    if spec.projector["name"] != "mlp1" or spec.projector["args"]:
        em["projector"] = copy.deepcopy(spec.projector)
    from .layout import auto_map

    return {
        "architectures": [ARCHITECTURE],
        "auto_map": auto_map(spec.fusion),
        "model_type": MODEL_TYPE,
        "downsample_ratio": img["downsample_ratio"],
        "dynamic_image_size": True,
        "force_image_size": img["size"],
        "llm_config": llm,
        "max_dynamic_patch": img["max_tiles"],
        "min_dynamic_patch": img["min_tiles"],
        "pad2square": False,
        "ps_version": img["ps_version"],
        "select_layer": img["select_layer"],
        "template": spec.template,
        "torch_dtype": dtype_name(dtype),
        "transformers_version": transformers.__version__,
        "use_backbone_lora": 0,
        "use_llm_lora": 0,
        "use_thumbnail": img["use_thumbnail"],
        "vision_config": vision,
        "earthmind": em,
    }


def check_decoder(decoder: Any, where: str) -> None:
    """A stored decoder entry: SAM2 with one of the package's config names and allow-listed
    numeric size overrides only (see :func:`earthmind_sdk.model.decoder.check_sam2_overrides`)."""
    if decoder is None:
        return
    if not isinstance(decoder, dict) or set(decoder) - {"name", "args"} or not isinstance(decoder.get("args", {}), dict):
        raise CheckpointError(f"{where}: earthmind.decoder: expected {{name, args}}")
    if decoder.get("name") != "sam2":
        return  # other decoders are registry names; their args are bound against the signature
    args = decoder.get("args", {})
    unknown = set(args) - {"config", "overrides"}
    if unknown:
        raise CheckpointError(f"{where}: earthmind.decoder.args: unknown key(s) {sorted(map(str, unknown))}; "
                              "allowed: config, overrides")
    from ..model.decoder import SAM2_CONFIGS, check_sam2_overrides

    if args.get("config", "sam2_hiera_l") not in SAM2_CONFIGS:
        raise CheckpointError(f"{where}: earthmind.decoder.args.config {str(args.get('config'))[:60]!r} is not a "
                              f"SAM2 configuration; known: {', '.join(sorted(SAM2_CONFIGS))}")
    try:
        check_sam2_overrides(args.get("overrides"), where=f"{where}: earthmind.decoder.args.overrides")
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None


def language_model(llm: dict[str, Any], where: Any) -> str:
    """The registered language model that builds ``llm_config.architectures[0]``: the name is only
    a key of the ``architectures`` registry (built-ins and plugins), never imported."""
    from ..plugins import registry

    archs = llm.get("architectures")
    arch = archs[0] if isinstance(archs, list) and archs else None
    table = registry("architectures")
    if not isinstance(arch, str) or arch not in table:
        raise CheckpointError(f"{where}: llm_config.architectures {str(archs)[:120]} is not supported; "
                              f"supported language models: {name_list(table.names())}")
    return table.get(arch)


def check_config(cfg: Any, path: Path) -> None:
    where = path / "config.json"
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{where}: expected a JSON object")
    check_untrusted(cfg, str(where))
    if cfg.get("model_type") != MODEL_TYPE:
        raise CheckpointError(f"{where}: model_type {cfg.get('model_type')!r} is not supported; "
                              f"this loader reads {MODEL_TYPE!r} checkpoints (EarthMind-4B, EarthMind4B_multi, Sa2VA-4B)")
    archs = cfg.get("architectures") or [ARCHITECTURE]
    if ARCHITECTURE not in archs:
        raise CheckpointError(f"{where}: architectures {archs} do not include {ARCHITECTURE!r}")
    llm = cfg.get("llm_config")
    if not isinstance(llm, dict):
        raise CheckpointError(f"{where}: llm_config is missing")
    language_model(llm, where)
    em = cfg.get("earthmind") or {}
    if not isinstance(em, dict):
        raise CheckpointError(f"{where}: earthmind: expected a mapping")
    check_decoder(em.get("decoder"), str(where))
    if "sensors" in em:
        from ..model.spec import parse_sensor_entries

        parse_sensor_entries(em["sensors"], f"{where}: earthmind.sensors", CheckpointError)
    if "encoder" not in em and not isinstance(cfg.get("vision_config"), dict):
        raise CheckpointError(f"{where}: vision_config is missing")


def spec_from_config(cfg: dict[str, Any], shapes: dict[str, tuple[int, ...]], path: Path,
                     overrides: Optional[dict[str, Any]] = None) -> tuple[dict[str, Any], list[str]]:
    """-> (spec dict, notes on the defaults used). ``shapes``: the checkpoint's tensor names -> shapes."""
    check_config(cfg, path)
    keys = set(shapes)
    notes: list[str] = []
    em = cfg.get("earthmind") or {}
    llm_cfg = cfg["llm_config"]
    llm_name = language_model(llm_cfg, path / "config.json")
    llm_args = {k: v for k, v in llm_cfg.items() if k not in _LLM_DROP}
    if "encoder" in em:
        encoder = copy.deepcopy(em["encoder"])
    else:
        vc = cfg["vision_config"]
        encoder = {"name": "internvit", "args": {k: vc[k] for k in VISION_FIELDS if k in vc and k != "select_layer"}}
    vc = cfg.get("vision_config") or {}
    if "image" in em:
        image = dict(em["image"])
    else:
        image = dict(size=int(cfg.get("force_image_size") or vc.get("image_size", 448)),
                     patch=int(vc.get("patch_size", 14)), downsample_ratio=float(cfg.get("downsample_ratio", 0.5)),
                     min_tiles=1, max_tiles=12, use_thumbnail=True, ps_version=cfg.get("ps_version", "v1"),
                     select_layer=int(cfg.get("select_layer", -1)))
        notes.append("tiling: 1..12 tiles with a thumbnail, as the released generation code does")
    if "decoder" in em:
        decoder = copy.deepcopy(em["decoder"])
    elif any(k.startswith("grounding_encoder.") for k in keys):
        decoder = {"name": "sam2", "args": {"config": "sam2_hiera_l"}}
        notes.append("decoder: SAM2 Hiera-L (sam2_hiera_l), the released models' decoder")
    else:
        decoder = None
    # without our block, sensors and fusion come from the folder's contents (layout.decide, in load)
    fusion = copy.deepcopy(em["fusion"]) if "fusion" in em else None
    sensors = em.get("sensors") or (["sar", "optical"] if fusion else ["optical"])
    spec = {
        "name": em.get("spec_name", path.name),
        "sensors": list(sensors),
        "segment_sensor": em.get("segment_sensor"),  # None: the first input
        "template": cfg.get("template") or "phi3_chat",
        "image": image,
        "tokens": dict(em.get("tokens") or {"img_context_token_id": 151667}),
        "encoder": encoder,
        "projector": copy.deepcopy(em.get("projector", {"name": "mlp1", "args": {}})),
        "fusion": fusion,
        "language_model": {"name": em.get("language_model", llm_name), "args": llm_args},
        "decoder": decoder,
    }
    for key, value in (overrides or {}).items():
        spec[key] = copy.deepcopy(value)
    return spec, notes

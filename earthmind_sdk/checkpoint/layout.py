"""The published checkpoint layout: tensor names, and which model a folder holds, from its contents.

Tensor names. The graph's state-dict keys are the published names except for two:

* the v1 fusion query is the graph's ``fusion.local_query`` and the file's top-level ``local_query``;
* SAM2's memory-encoder layer scales are ``...memory_encoder.fuser.layers.N.gamma`` in the ``sam2``
  package and ``...g_weight`` in the authors' SAM2 module (their conversion renames ``.gamma`` to
  ``.g_weight`` because older transformers renamed ``gamma`` parameters while loading). Saving
  writes ``g_weight``; loading accepts both spellings.

Which model (``variant``), decided from what the folder holds, never from its name:

* ``sdk``: config.json carries our ``earthmind`` block, which says everything.
* ``earthmind-v1``: a top-level ``local_query`` tensor (EarthMind v1's modeling code creates it,
  v2's and Sa2VA's do not) -> SAR + optical, ``mma`` with ``reweight: false`` (the released
  inference joins the two sensors' tokens tile by tile without reweighting).
* ``earthmind-v2``: no ``local_query``, ``auto_map`` naming ``modeling_earthmind_chat`` (the
  authors' conversion writes that for EarthMind) -> SAR + optical, ``hca``.
* ``sa2va``: anything else (Sa2VA's conversion names ``modeling_sa2va_chat``) -> optical only.

``load(path, variant=...)`` overrides the decision.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from ..errors import CheckpointError

VARIANTS = ("earthmind-v1", "earthmind-v2", "sa2va")
ALIASES = {"v1": "earthmind-v1", "v2": "earthmind-v2", "earthmind-v1": "earthmind-v1",
           "earthmind-v2": "earthmind-v2", "sa2va": "sa2va"}

_SAM_PREFIX = "grounding_encoder."
_OUR_SCALE, _PUBLISHED_SCALE = ".gamma", ".g_weight"
_TOP_LEVEL = {"fusion.local_query": "local_query"}
_FROM_TOP_LEVEL = {v: k for k, v in _TOP_LEVEL.items()}


def checkpoint_name(key: str) -> str:
    """Graph state-dict key -> the published tensor name."""
    if key in _TOP_LEVEL:
        return _TOP_LEVEL[key]
    if key.startswith(_SAM_PREFIX) and key.endswith(_OUR_SCALE):
        return key[: -len(_OUR_SCALE)] + _PUBLISHED_SCALE
    return key


def model_key(name: str) -> str:
    """A stored tensor name (published or the ``sam2`` package's spelling) -> graph state-dict key."""
    if name in _FROM_TOP_LEVEL:
        return _FROM_TOP_LEVEL[name]
    if name.startswith(_SAM_PREFIX) and name.endswith(_PUBLISHED_SCALE):
        return name[: -len(_PUBLISHED_SCALE)] + _OUR_SCALE
    return name


def stored_names(names: Iterable[str]) -> dict[str, str]:
    """Stored name -> published name, for a file's names; two names for one tensor is an error."""
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name in names:
        canon = checkpoint_name(model_key(name))
        if canon in seen:
            raise CheckpointError(f"the weights hold both {seen[canon]!r} and {name!r}, two names of one tensor")
        seen[canon] = name
        out[name] = canon
    return out


@dataclass
class Decision:
    """What :func:`decide` chose for a folder without our ``earthmind`` block, and why."""

    variant: str
    reason: str
    sensors: list[str] = field(default_factory=list)
    fusion: Optional[dict[str, Any]] = None
    segment_sensor: Optional[str] = None

    def spec_keys(self) -> dict[str, Any]:
        return {"sensors": list(self.sensors), "segment_sensor": self.segment_sensor, "fusion": self.fusion}


def _modeling_module(cfg: dict[str, Any]) -> str:
    auto = cfg.get("auto_map")
    target = auto.get("AutoModel") if isinstance(auto, dict) else None
    return target.split(".")[0] if isinstance(target, str) else ""


def decide(cfg: dict[str, Any], shapes: dict[str, tuple[int, ...]], variant: Optional[str] = None) -> Decision:
    """The variant of a published-layout folder (config.json + tensor names -> shapes)."""
    if variant is not None:
        if variant not in ALIASES:
            raise CheckpointError(f"variant {variant!r}: expected one of {', '.join(sorted(ALIASES))}")
        variant = ALIASES[variant]
        reason = "variant given to load()"
    elif "local_query" in shapes:
        variant, reason = "earthmind-v1", "a top-level local_query tensor (only EarthMind v1 has one)"
    elif _modeling_module(cfg) == "modeling_earthmind_chat":
        variant, reason = "earthmind-v2", "no local_query, and config.json auto_map names modeling_earthmind_chat"
    else:
        module = _modeling_module(cfg)
        variant = "sa2va"
        reason = ("no local_query, and config.json auto_map names " + module) if module else \
            "no local_query and no auto_map in config.json (pass variant='v2' for an EarthMind v2 folder)"
    if variant == "earthmind-v1":
        queries = int(shapes["local_query"][0]) if "local_query" in shapes else 2
        fusion = {"name": "mma", "args": {"reweight": False, "num_queries": queries}}
        return Decision(variant, reason, ["sar", "optical"], fusion, "sar")
    if variant == "earthmind-v2":
        return Decision(variant, reason, ["sar", "optical"], {"name": "hca", "args": {}}, "sar")
    return Decision(variant, reason, ["optical"], None, "optical")


def auto_map(fusion: Optional[dict[str, Any]]) -> dict[str, str]:
    """The ``auto_map`` the authors' conversions write: EarthMind's modeling module for a fused
    model, Sa2VA's otherwise. Written as data so a saved folder is recognised as the published
    ones are; never used to import anything."""
    module, stem = ("modeling_earthmind_chat", "configuration_earthmind_chat") if fusion else \
        ("modeling_sa2va_chat", "configuration_sa2va_chat")
    return {"AutoConfig": f"{stem}.Sa2VAChatConfig", "AutoModel": f"{module}.Sa2VAChatModel",
            "AutoModelForCausalLM": f"{module}.Sa2VAChatModel"}

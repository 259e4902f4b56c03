"""Model specs: which sensors, encoder, projector, fusion, language model and decoder, by registry name.

A spec is a YAML file or a dict::

    base: sa2va-4b                  # optional: start from a bundled spec or a .yaml beside this file
    sensors: [optical]              # input sensors, primary first (paired mode: sar, optical);
                                    # an entry may carry the sensor's options (how inputs are prepared):
                                    # {name: sar, args: {speckle_filter: refined_lee}}
    segment_sensor: optical         # the image SAM2 segments (default: the first sensor)
    template: phi3_chat             # chat template name (the tokenizer side uses it)
    image: {size: 448, patch: 14, downsample_ratio: 0.5, min_tiles: 1, max_tiles: 12,
            use_thumbnail: true, ps_version: v2, select_layer: -1,
            resample: pil}              # pil: the authors' 8-bit PIL path; torch: float resize
    tokens: {img_context_token_id: 151667, seg_token_id: null}
    encoder: {name: internvit, args: {...}}
    projector: {name: mlp1, args: {}}
    fusion: null | {name: concat | mma | hca, args: {...}}
    language_model: {name: qwen2, args: {...HF config fields...}}
    decoder: null | {name: sam2, args: {config: sam2_hiera_l, overrides: {...}}}

Each ``sensors`` entry names an input and the registered sensor that reads it (the input is
called after its sensor, as ``Sample.images`` keys and fusion weights are); its ``args`` are
plain values bound against the sensor's signature, never built here. They travel into a saved
checkpoint's ``config.json``, so a checkpoint says how its inputs must be prepared.

Errors are :class:`~earthmind_sdk.errors.RecipeError` naming the key path and what is allowed.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from ..errors import RecipeError, UnknownComponentError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"

IMAGE_DEFAULTS: dict[str, Any] = dict(size=448, patch=14, downsample_ratio=0.5, min_tiles=1, max_tiles=12,
                                      use_thumbnail=True, ps_version="v2", select_layer=-1, resample="pil")
RESAMPLE = ("pil", "torch")
TOKEN_DEFAULTS: dict[str, Any] = dict(img_context_token_id=151667, seg_token_id=None)
_TOP = ("sensors", "segment_sensor", "template", "image", "tokens", "encoder", "projector", "fusion",
        "language_model", "decoder", "name")
_COMPONENTS = {"encoder": "encoders", "projector": "projectors", "fusion": "fusions",
               "language_model": "language_models", "decoder": "decoders"}
_OPTIONAL = ("fusion", "decoder")


@dataclass
class ModelSpec:
    sensors: list[str]
    encoder: dict[str, Any]
    projector: dict[str, Any]
    language_model: dict[str, Any]
    fusion: Optional[dict[str, Any]] = None
    decoder: Optional[dict[str, Any]] = None
    image: dict[str, Any] = field(default_factory=lambda: dict(IMAGE_DEFAULTS))
    tokens: dict[str, Any] = field(default_factory=lambda: dict(TOKEN_DEFAULTS))
    template: str = "phi3_chat"
    segment_sensor: Optional[str] = None
    name: str = "custom"
    #: input -> the options its sensor prepares it with (only inputs that declare any)
    sensor_args: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self):
        if self.segment_sensor is None:
            self.segment_sensor = self.sensors[0]

    def sensor_entries(self) -> list[Any]:
        """The ``sensors`` list as a spec writes it: a name, or ``{name, args}`` where options are declared."""
        return [{"name": s, "args": copy.deepcopy(self.sensor_args[s])} if self.sensor_args.get(s) else s
                for s in self.sensors]

    def to_dict(self) -> dict[str, Any]:
        out = copy.deepcopy({k: getattr(self, k) for k in _TOP})
        out["sensors"] = self.sensor_entries()
        return out


def bundled_spec_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def tiny_args(component: str) -> dict[str, Any]:
    """The bundled ``tiny`` spec's arguments for ``component`` (e.g. ``"encoder"``): the one
    place the test-sized built-in components are defined; their ``tiny_args()`` read it."""
    return copy.deepcopy(_read_raw("tiny")[0][component].get("args") or {})


def load_spec(source: "str | Path | dict | ModelSpec") -> ModelSpec:
    """A bundled spec name, a YAML path, a dict or a ModelSpec -> a validated ModelSpec.

    A spec may start from another with ``base:``: a bundled spec name, or (in a spec file) a
    ``.yaml`` file in the same folder. Its mappings are merged key by key over the base's; lists,
    scalars and a component naming another ``name`` replace. The merge is plain data, checked
    as a whole by :func:`validate_spec`."""
    if isinstance(source, ModelSpec):
        return source
    return validate_spec(*_read_raw(source))


def _read_raw(source, chain: tuple[str, ...] = ()) -> tuple[dict, str]:
    """The spec's raw mapping with its ``base`` chain merged in, and where it came from."""
    if isinstance(source, dict):
        raw, where = dict(source), "model spec"
    else:
        path = Path(source)
        if not path.is_file() and str(source) in bundled_spec_names():
            path = CONFIG_DIR / f"{source}.yaml"
        if not path.is_file():
            raise RecipeError(f"model spec {source!r}: no such file and not a bundled spec "
                              f"({', '.join(bundled_spec_names())})")
        key = str(path.resolve())
        if key in chain:
            names = [Path(c).stem for c in chain + (key,)]
            raise RecipeError(f"{chain[0]}: base: {' -> '.join(names)} is a cycle")
        raw, where, chain = _read_file(path), str(path), chain + (key,)
    if "base" not in raw:
        return raw, where
    parent = _base_path(raw.pop("base"), None if isinstance(source, dict) else Path(where), where)
    return _deep_merge(_read_raw(parent, chain)[0], raw), where


def _read_file(path: Path) -> dict:
    from ..recipes import load_yaml_strict

    try:
        raw = load_yaml_strict(path.read_text())
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: malformed YAML: {' '.join(str(exc).split())}") from None
    if raw is not None and not isinstance(raw, dict):
        raise RecipeError(f"{path}: expected a mapping, got {type(raw).__name__}")
    raw = dict(raw or {})
    raw.setdefault("name", path.stem)
    return raw


def _base_path(base: Any, spec_file: Optional[Path], where: str) -> Path:
    """``base`` -> the file it names: a bundled spec, or a ``.yaml`` file beside ``spec_file``."""
    bundled = bundled_spec_names()
    if not isinstance(base, str) or not base:
        raise RecipeError(f"{where}: base: expected a bundled spec name ({', '.join(bundled)}) "
                          f"or a .yaml file beside the spec, got {base!r}")
    if not base.endswith((".yaml", ".yml")):
        if base not in bundled:
            raise RecipeError(f"{where}: base: {base!r} is not a bundled spec ({', '.join(bundled)}); "
                              "a file beside the spec is named with its .yaml suffix")
        return CONFIG_DIR / f"{base}.yaml"
    if spec_file is None:
        raise RecipeError(f"{where}: base: {base!r}: an inline spec may only start from a bundled spec "
                          f"({', '.join(bundled)})")
    rel = Path(base)
    if rel.is_absolute() or len(rel.parts) != 1:
        raise RecipeError(f"{where}: base: {base!r}: name a file in the spec's own folder, without a path")
    path = spec_file.parent / rel
    if not path.is_file():
        raise RecipeError(f"{where}: base: no file {rel} beside the spec ({spec_file.parent})")
    return path


def _deep_merge(base: dict, over: dict) -> dict:
    """``over`` on ``base``: mappings merge key by key unless they name another ``name``."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and value.get("name", old.get("name")) == old.get("name"):
            out[key] = _deep_merge(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def validate_spec(raw: Any, where: str = "model spec") -> ModelSpec:
    from ..plugins import registry

    from ..schema import bind_args, check_untrusted

    if not isinstance(raw, dict):
        raise RecipeError(f"{where}: expected a mapping, got {type(raw).__name__}")
    check_untrusted(raw, where, RecipeError)
    raw = copy.deepcopy(raw)
    unknown = sorted(set(raw) - set(_TOP))
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(_TOP)}")
    sensors, sensor_args = parse_sensor_entries(raw.get("sensors"), f"{where}: sensors", RecipeError)
    for key, kind in _COMPONENTS.items():
        value = raw.get(key)
        if value is None:
            if key in _OPTIONAL:
                raw[key] = None
                continue
            raise RecipeError(f"{where}: {key}: required ({{name, args}} naming a registered {kind[:-1]}; "
                              f"known: {', '.join(registry(kind).names()) or '(none)'})")
        if isinstance(value, str):
            value = {"name": value, "args": {}}
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            raise RecipeError(f"{where}: {key}: expected {{name, args}} or a name, got {value!r}")
        extra = sorted(set(value) - {"name", "args"})
        if extra:
            raise RecipeError(f"{where}: {key}: unknown key(s) {', '.join(extra)}; allowed: name, args")
        args = value.get("args") or {}
        if not isinstance(args, dict):
            raise RecipeError(f"{where}: {key}.args: expected a mapping, got {type(args).__name__}")
        try:
            factory = registry(kind).get(value["name"])
        except UnknownComponentError as exc:
            raise RecipeError(f"{where}: {key}.name: {exc}") from None
        bind_args(factory, args, f"{where}: {key}.args")
        raw[key] = {"name": value["name"], "args": args}
    if len(sensors) > 1 and raw.get("fusion") is None:
        raise RecipeError(f"{where}: fusion: a spec with {len(sensors)} sensors needs a fusion "
                          f"(known: {', '.join(registry('fusions').names()) or '(none)'})")
    raw["image"] = _merge(raw.get("image"), IMAGE_DEFAULTS, f"{where}: image")
    raw["tokens"] = _merge(raw.get("tokens"), TOKEN_DEFAULTS, f"{where}: tokens")
    img = raw["image"]
    for k in ("size", "patch", "min_tiles", "max_tiles"):
        if not isinstance(img[k], int) or isinstance(img[k], bool) or img[k] < 1:
            raise RecipeError(f"{where}: image.{k}: expected a positive integer, got {img[k]!r}")
    if img["ps_version"] not in ("v1", "v2"):
        raise RecipeError(f"{where}: image.ps_version: expected 'v1' or 'v2', got {img['ps_version']!r}")
    if img["resample"] not in RESAMPLE:
        raise RecipeError(f"{where}: image.resample: expected one of {', '.join(RESAMPLE)}, got {img['resample']!r}")
    if img["min_tiles"] > img["max_tiles"]:
        raise RecipeError(f"{where}: image: min_tiles {img['min_tiles']} > max_tiles {img['max_tiles']}")
    if not isinstance(raw["tokens"]["img_context_token_id"], int):
        raise RecipeError(f"{where}: tokens.img_context_token_id: expected an integer token id")
    seg = raw.get("segment_sensor")
    if seg is not None and seg not in sensors:
        raise RecipeError(f"{where}: segment_sensor: {seg!r} is not one of the sensors {sensors}")
    template = raw.get("template", "phi3_chat")
    if not isinstance(template, str):
        raise RecipeError(f"{where}: template: expected a template name, got {template!r}")
    from ..text.template import get_template

    try:
        get_template(template)  # a registered name (built-in or a plugin's), looked up only
    except RecipeError as exc:
        raise RecipeError(f"{where}: template: {exc}") from None
    return ModelSpec(sensors=list(sensors), encoder=raw["encoder"], projector=raw["projector"],
                     language_model=raw["language_model"], fusion=raw["fusion"], decoder=raw["decoder"],
                     image=img, tokens=raw["tokens"], template=template, segment_sensor=seg,
                     name=str(raw.get("name", "custom")), sensor_args=sensor_args)


def parse_sensor_entries(value: Any, where: str, error: type = RecipeError) -> tuple[list[str], dict[str, dict]]:
    """A spec's ``sensors`` list -> (input names, {input: sensor options}).

    An entry is a sensor name or ``{name, args}``. Names are registered sensors or a family
    (``optical``, ``sar``, ``multispectral``: an input whose images may arrive prepared);
    options are plain values bound against the sensor class's signature, which is looked up,
    never called. ``error`` is the class raised (RecipeError for specs, CheckpointError for a
    checkpoint's config.json), its message naming ``where`` and the entry."""
    from ..plugins import registry
    from ..schema import bind_args, check_plain
    from ..sensors.choice import FAMILIES

    if not isinstance(value, list) or not value:
        raise error(f"{where}: expected a non-empty list of sensor names or {{name, args}}, got {value!r}")
    names: list[str] = []
    options: dict[str, dict] = {}
    reg = registry("sensors")
    for i, entry in enumerate(value):
        here = f"{where}[{i}]"
        if isinstance(entry, dict):
            extra = sorted(map(str, set(entry) - {"name", "args"}))
            if extra:
                raise error(f"{here}: unknown key(s) {', '.join(extra)}; allowed: name, args")
            name, args = entry.get("name"), entry.get("args") or {}
        else:
            name, args = entry, {}
        if not isinstance(name, str) or not name:
            raise error(f"{here}: expected a sensor name or {{name, args}}, got {entry!r}")
        if not isinstance(args, dict):
            raise error(f"{here}.args: expected a mapping of option names to values, got {type(args).__name__}")
        if name not in reg and (args or name not in FAMILIES):
            raise error(f"{here}.name: no sensor {name!r} is installed (installed: "
                        f"{', '.join(reg.names()) or 'none'}; `earthmind plugins` lists them)")
        check_plain(args, f"{here}.args", error)
        if args:
            try:
                factory = reg.get(name)
            except Exception as exc:  # noqa: BLE001 - a plugin whose module fails to import
                raise error(f"{here}.name: sensor {name!r} cannot be loaded: {exc}") from None
            bind_args(factory, args, f"{here}.args", error)
            options[name] = copy.deepcopy(args)
        if name in names:
            raise error(f"{where}: {[*names, name]} lists the sensor {name!r} twice")
        names.append(name)
    return names, options


def _merge(value: Any, defaults: dict[str, Any], where: str) -> dict[str, Any]:
    if value is None:
        return dict(defaults)
    if not isinstance(value, dict):
        raise RecipeError(f"{where}: expected a mapping, got {type(value).__name__}")
    unknown = sorted(set(value) - set(defaults))
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(defaults)}")
    return {**defaults, **value}

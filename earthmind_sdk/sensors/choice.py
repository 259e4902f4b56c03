"""Which sensor reads one input of a model, and with which options.

A model spec names its inputs (``sensors: [sar, optical]``); each input is read by the sensor
registered under that name unless the request names another one for it:

* Python: ``Sample(images={"sar": "s1.tif"}, sensors={"sar": "sentinel1"})`` or
  ``sensors={"sar": {"name": "sentinel1", "args": {"composite": "vv_vh_ratio"}}}``;
* recipes: the same ``sensors:`` mapping in a sample;
* command line: ``--sar s1.tif --sar-sensor sentinel1 --sar-opt composite=vv_vh_ratio``.

The names are registry names and the options plain values (data, never code); the chosen
sensor must be of the family the input expects (a SAR input takes a SAR sensor). When an
input's default sensor refuses a file, :func:`suggest_sensor` names an installed sensor of
the same family that reads it.
"""
from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from ..errors import EarthMindError, RasterError, UnknownComponentError, name_list

FAMILIES = ("optical", "sar", "multispectral")
#: The command-line flag of each family's input (``earthmind infer``).
CLI_FLAGS = {"optical": "--image", "sar": "--sar", "multispectral": "--ms"}


class SensorChoiceError(EarthMindError, ValueError):
    """A sensor choice that names no installed sensor, a wrong family or an unknown option."""


@dataclass(frozen=True)
class SensorChoice:
    """A sensor's registry name and its keyword options (plain values)."""

    name: str
    args_json: str = "{}"  # canonical JSON: hashable, and proof that the options are plain data

    @property
    def args(self) -> dict[str, Any]:
        return json.loads(self.args_json)


def parse_choice(value: Any, *, where: str) -> SensorChoice:
    """``"sentinel1"``, ``{"name": "sentinel1", "args": {...}}`` or a SensorChoice."""
    if isinstance(value, SensorChoice):
        return value
    if isinstance(value, str) and value:
        return SensorChoice(value)
    if isinstance(value, Mapping):
        extra = sorted(set(value) - {"name", "args"})
        if extra or not isinstance(value.get("name"), str) or not value.get("name"):
            raise SensorChoiceError(f"{where}: expected a sensor name or {{name, args}}, got {dict(value)!r}")
        args = value.get("args") or {}
        if not isinstance(args, Mapping) or not all(isinstance(k, str) for k in args):
            raise SensorChoiceError(f"{where}.args: expected a mapping of option names to values, got {args!r}")
        _check_plain(args, f"{where}.args")
        return SensorChoice(value["name"], json.dumps(dict(args), sort_keys=True))
    raise SensorChoiceError(f"{where}: expected a sensor name or {{name, args}}, got {value!r}")


def parse_choices(value: Any, *, where: str) -> dict[str, SensorChoice]:
    """A ``{input: choice}`` mapping (``Sample.sensors``, a recipe sample's ``sensors``)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SensorChoiceError(f"{where}: expected a mapping input -> sensor, got {type(value).__name__}")
    return {str(k): parse_choice(v, where=f"{where}.{k}") for k, v in value.items()}


def parse_options(items: Sequence[str], *, where: str) -> dict[str, Any]:
    """Command-line ``KEY=VALUE`` options: values are YAML scalars or lists (``rgb=B4,B3,B2``,
    ``percentiles=[1, 99]``, ``speckle_filter=lee``, ``looks=4.4``, ``border_noise_db=null``)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise SensorChoiceError(f"{where} {item!r}: expected KEY=VALUE, e.g. rgb=B4,B3,B2")
        raw = raw.strip()
        try:
            if "," in raw and not raw.startswith(("[", "{", '"', "'")):
                value: Any = [yaml.safe_load(p.strip()) for p in raw.split(",")]
            else:
                value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        _check_plain(value, f"{where} {key}")
        out[key] = value
    return out


def _check_plain(value: Any, where: str) -> None:
    from ..schema import check_plain

    check_plain(value, where, SensorChoiceError)


def sensor_family(name: str) -> Optional[str]:
    """The family of the sensor registered as ``name`` (None when nothing is registered)."""
    from ..plugins import registry

    reg = registry("sensors")
    if name not in reg:
        return name if name in FAMILIES else None
    try:
        return getattr(reg.get(name), "family", None)
    except Exception:  # noqa: BLE001 - a sensor whose module fails to import has no known family
        return None


def build_sensor(choice: SensorChoice, *, slot: str, where: str):
    """The chosen sensor for input ``slot``, after checking its family and its options."""
    from ..plugins import registry

    reg = registry("sensors")
    try:
        cls = reg.get(choice.name)
    except UnknownComponentError as exc:
        raise SensorChoiceError(f"{where}: {exc}") from None
    expected = sensor_family(slot)
    family = getattr(cls, "family", None)
    if expected is not None and family != expected:
        fitting = [n for n in reg.names() if sensor_family(n) == expected]
        raise SensorChoiceError(
            f"{where}: sensor {choice.name!r} reads {family} images, but this model's input {slot!r} expects a "
            f"{expected} sensor (installed: {name_list(fitting) or 'none'})")
    args = choice.args
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        params = {}
    if params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(args) - set(params))
        if unknown:
            raise SensorChoiceError(f"{where}: sensor {choice.name!r} has no option(s) {', '.join(unknown)}; "
                                    f"its options are {name_list(sorted(params))}")
    try:
        return cls(**args)
    except TypeError as exc:
        raise SensorChoiceError(f"{where}: sensor {choice.name!r}: {exc}") from None


def suggest_sensor(source: Any, *, slot: str, default: str) -> Optional[str]:
    """The first installed sensor of ``slot``'s family, other than ``default``, that reads
    ``source``; None when none does (or the file cannot be read at all)."""
    from ..io.raster import as_raster
    from ..plugins import registry

    family = sensor_family(slot)
    if family is None:
        return None
    try:
        raster = as_raster(source)
    except (RasterError, TypeError, ValueError):
        return None
    reg = registry("sensors")
    for name in reg.names():
        if name == default or sensor_family(name) != family:
            continue
        try:
            reg.build(name).read(raster)
        except Exception:  # noqa: BLE001 - a candidate that fails on this file is simply not suggested
            continue
        return name
    return None


def suggestion_text(name: str, slot: str) -> str:
    """How to choose ``name`` for input ``slot``, on the command line and in recipes/Python."""
    flag = CLI_FLAGS.get(sensor_family(slot) or "", None)
    cli = f"{flag}-sensor {name} on the command line, " if flag else ""
    return f"the installed sensor {name!r} reads this file: choose it with {cli}sensors: {{{slot}: {name}}} in a recipe or Sample"

"""Checks every file the SDK reads (recipes, model specs, checkpoint configs) goes through.

Data is data: nothing read from a file is instantiated by name, imported or interpolated.
"""
from __future__ import annotations

import copy
import difflib
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import CheckpointError, RecipeError, UnknownComponentError

@dataclass
class Field:
    """One recipe key: its type(s), default, allowed values, and meaning."""

    types: tuple[type, ...] | type
    default: Any = None
    required: bool = False
    choices: tuple[Any, ...] | None = None
    registry: str | None = None  # value must be a name in this component registry
    doc: str = ""
    schema: Mapping[str, "Field"] | None = None  # nested mapping
    items: "Field | None" = None  # list items
    ge: float | None = None  # value >= ge
    gt: float | None = None  # value > gt
    le: float | None = None  # value <= le
    pattern: str | None = None  # strings: full match of this regular expression
    hint: str = ""  # what the pattern means, for the error message
    binds: str | None = None  # a mapping of keyword arguments for the factory named at this sibling key

    @property
    def registry_of_binds(self) -> str | None:
        """Registry of the factory named at the ``binds`` key (set by :func:`component_args`)."""
        return getattr(self, "_binds_registry", None)

    def type_names(self) -> str:
        types = self.types if isinstance(self.types, tuple) else (self.types,)
        return " or ".join("null" if t is type(None) else t.__name__ for t in types)



def component_args(kind: str, name_key: str = "name", doc: str = "") -> Field:
    """A ``args`` mapping bound, before anything is built, against the signature of the
    ``kind`` component named at the sibling key ``name_key``."""
    f = Field(dict, default={}, doc=doc, binds=name_key)
    f._binds_registry = kind
    return f


def validate(config: Mapping[str, Any], schema: Mapping[str, Field], *, source: str, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in config:
        if key not in schema:
            close = difflib.get_close_matches(str(key), list(schema), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise RecipeError(f"{source}: {path}{key}: unknown key{hint} Allowed keys: {', '.join(schema)}")
    for key, spec in schema.items():
        where = f"{path}{key}"
        if key in config and config[key] is not None:
            value = config[key]
        elif spec.required:
            raise RecipeError(f"{source}: {where}: required key is missing ({spec.doc or spec.type_names()})")
        else:
            value = copy.deepcopy(spec.default)
            nullable = isinstance(spec.types, tuple) and type(None) in spec.types
            if value is None and spec.schema is not None and not nullable:
                value = {}
            if value is None:
                out[key] = None
                continue
        out[key] = _check(value, spec, source=source, where=where)
    for key, spec in schema.items():
        if spec.binds is not None and isinstance(out.get(key), dict) and isinstance(out.get(spec.binds), str):
            _bind_registered(spec.registry_of_binds, out[spec.binds], out[key], f"{source}: {path}{key}")
    return out


def _bind_registered(kind: str | None, name: str, args: dict, where: str) -> None:
    """``args`` bound against the signature of the component ``name`` of registry ``kind``."""
    if kind is None:
        return
    from .plugins import registry

    bind_args(registry(kind).get(name), args, where)


def _as_number(value: Any, types: tuple) -> Any:
    """A numeric string is a number only where the field is numeric (YAML reads ``1e-3`` as a
    string); a string field keeps ``"04.00"`` as it is."""
    if isinstance(value, str) and float in types and str not in types:
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(value, str) and int in types and str not in types and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
    return value


def _check(value: Any, spec: Field, *, source: str, where: str) -> Any:
    types = spec.types if isinstance(spec.types, tuple) else (spec.types,)
    value = _as_number(value, types)
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise RecipeError(f"{source}: {where}: expected {spec.type_names()}, got {type(value).__name__} {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RecipeError(f"{source}: {where}: expected a finite number, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for bound, ok, text in ((spec.ge, lambda b: value >= b, ">="), (spec.gt, lambda b: value > b, ">"),
                                (spec.le, lambda b: value <= b, "<=")):
            if bound is not None and not ok(bound):
                raise RecipeError(f"{source}: {where}: must be {text} {bound:g}, got {value!r}")
    if spec.pattern is not None and isinstance(value, str) and not re.fullmatch(spec.pattern, value):
        if spec.choices is not None:  # choices, or a value the pattern admits (e.g. a dotted path inside one)
            raise RecipeError(f"{source}: {where}: {_choice_message(value, list(spec.choices))} ({spec.hint})")
        raise RecipeError(f"{source}: {where}: {value!r} is not allowed; expected {spec.hint or spec.pattern}")
    if spec.choices is not None and spec.pattern is None and value not in spec.choices:
        raise RecipeError(f"{source}: {where}: {_choice_message(value, list(spec.choices))}")
    if spec.registry is not None:
        from .plugins import registry

        try:
            registry(spec.registry).entry(value)
        except UnknownComponentError as exc:
            raise RecipeError(f"{source}: {where}: {exc}") from None
    if spec.schema is not None and isinstance(value, dict):
        return validate(value, spec.schema, source=source, path=where + ".")
    if spec.items is not None and isinstance(value, list):
        return [_check(v, spec.items, source=source, where=f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _choice_message(value: Any, allowed: list[Any]) -> str:
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{value!r} is not allowed{hint}; allowed values: {', '.join(map(str, allowed))}"



#: Keys that make Hydra/OmegaConf build objects or change how they are built: never data.
_CODE_KEYS = frozenset({"_target_", "_partial_", "_args_", "_recursive_", "_convert_"})


def check_untrusted(obj: Any, where: str, error: type = CheckpointError, _path: str = "") -> None:
    """Data is data: refuse, anywhere in a config.json (or recipe), a key that names code to
    build (``_target_`` ...) and a string that asks for interpolation (``${...}``). One line
    naming the file and key path."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            here = f"{_path}.{key}" if _path else str(key)
            if key in _CODE_KEYS:
                raise error(f"{where}: {here[:120]}: {key!r} keys are not allowed (nothing read from a file is "
                            "instantiated)")
            if isinstance(key, str) and "${" in key:
                raise error(f"{where}: {here[:120]}: interpolation ('${{') is not allowed in keys")
            check_untrusted(value, where, error, here)
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            check_untrusted(value, where, error, f"{_path}[{i}]")
    elif isinstance(obj, str) and "${" in obj:
        raise error(f"{where}: {_path or '<top>'}: interpolation ('${{') is not allowed: {obj[:40]!r}")




_PLAIN = (str, int, float, bool, type(None))


def check_plain(value: Any, where: str, error: type = RecipeError) -> None:
    """Plain values only (text, numbers, booleans, null, lists and string-keyed mappings of
    them): options read from a file or a command line are data, whatever object a caller
    might pass in Python. One line naming ``where`` and the key path."""
    if isinstance(value, _PLAIN):
        if isinstance(value, float) and not math.isfinite(value):
            raise error(f"{where}: expected a finite number, got {value!r}")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_plain(v, f"{where}[{i}]", error)
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise error(f"{where}: option names must be text, got {type(k).__name__} {k!r}")
            check_plain(v, f"{where}.{k}", error)
        return
    raise error(f"{where}: options must be plain values (text, numbers, lists, mappings), "
                f"got {type(value).__name__}")


def bind_args(factory: Any, args: dict[str, Any], where: str, error: type = RecipeError) -> None:
    """Check ``args`` against ``factory``'s signature before anything is built: unknown or
    missing keyword arguments are one line naming ``where`` and the accepted names."""
    import inspect

    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return  # a builtin without a signature: it checks its own arguments
    params = sig.parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [k for k in args if k not in accepted]
    if unknown:
        import difflib

        close = difflib.get_close_matches(str(unknown[0]), accepted, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise error(f"{where}: unknown argument(s) {', '.join(map(str, unknown))}{hint}; "
                    f"accepted: {', '.join(accepted) or '(none)'}")
    try:
        sig.bind_partial(**args)  # the rest may come from the caller (e.g. a projector's in_dim)
    except TypeError as exc:
        raise error(f"{where}: {exc}") from None

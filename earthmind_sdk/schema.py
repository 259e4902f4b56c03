"""Checks every file the SDK reads (recipes, model specs, checkpoint configs) goes through.

Data is data: nothing read from a file is instantiated by name, imported or interpolated.
"""
from __future__ import annotations

from typing import Any

from .errors import CheckpointError, RecipeError

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
        sig.bind(**args)
    except TypeError as exc:
        raise error(f"{where}: {exc}") from None

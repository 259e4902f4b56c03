"""One generic registry per component kind.

Entries may be objects or lazy ``"package.module:attribute"`` strings, so that listing
what is installed (``earthmind plugins``) imports no torch. The kinds in :data:`VALUE_KINDS`
are tables of plain values (a checkpoint's architecture name -> a language-model name): their
entries are never imported, so a name read from a checkpoint is only ever a key.
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .errors import DuplicateComponentError, PluginError, UnknownComponentError, name_list

#: Every component kind, in the order ``earthmind plugins`` shows them; each has a hook
#: ``register_<kind>`` in :mod:`earthmind_sdk.hookspecs`.
KINDS = (
    "sensors",
    "encoders",
    "projectors",
    "fusions",
    "language_models",
    "decoders",
    "tasks",
    "metrics",
    "datasets",
    "jobs",
    "templates",
    "architectures",
)

#: Kinds whose entries are plain strings, returned as they are (never imported).
VALUE_KINDS = frozenset({"architectures"})


def import_target(target: str, what: str) -> Any:
    """``"package.module:attribute"`` -> the object; any failure (``SystemExit`` at import
    included) becomes one :class:`PluginError` naming ``what`` (the entry and its plugin)."""
    module, _, attr = target.partition(":")
    if not attr:
        raise ValueError(f"lazy target {target!r} for {what} must be 'module:attribute'")
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except BaseException as exc:  # noqa: BLE001 - SystemExit at import included
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise PluginError(f"{what} cannot be loaded: {target} -> {type(exc).__name__}: {str(exc)[:200]}") from None
    return obj


@dataclass
class Entry:
    name: str
    target: Any  # an object, or "module:attr" resolved on first use
    owner: str
    description: str = ""
    value: bool = False  # a plain value (VALUE_KINDS): returned as is, never imported

    def resolve(self) -> Any:
        if isinstance(self.target, str) and not self.value:
            self.target = import_target(self.target, f"{self.name!r} from plugin {self.owner!r}")
        return self.target


class Registry:
    """Names -> components of one kind, with owners for error messages."""

    def __init__(self, kind: str):
        self.kind = kind
        self.values = kind in VALUE_KINDS
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, target: Any, *, owner: str = "user", description: str = "") -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} names must be non-empty strings, got {name!r} from {owner!r}")
        if name in self._entries:
            first = self._entries[name].owner
            raise DuplicateComponentError(
                f"{self.kind[:-1]} {name!r} is registered twice: by {first!r} and by {owner!r}"
            )
        if self.values and (not isinstance(target, str) or not target):
            raise ValueError(f"{self.kind} entries are plain names, got {target!r} for {name!r} from {owner!r}")
        self._entries[name] = Entry(name, target, owner, str(description or ""), self.values)

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownComponentError(self._unknown_message(name)) from None

    def get(self, name: str) -> Any:
        """The registered object (a class or factory), importing it if lazy."""
        return self.entry(name).resolve()

    def build(self, name: str, **kwargs: Any) -> Any:
        """Call the registered factory with ``kwargs``."""
        factory: Callable[..., Any] = self.get(name)
        return factory(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def owned_by(self, owner: str) -> list[str]:
        return sorted(n for n, e in self._entries.items() if e.owner == owner)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def _unknown_message(self, name: str) -> str:
        known = self.names()
        close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
        msg = f"unknown {self.kind[:-1]} {name!r}"
        if close:
            msg += f"; did you mean {', '.join(repr(c) for c in close)}?"
        msg += f" Known {self.kind}: {name_list(known) if known else '(none)'}."
        return msg

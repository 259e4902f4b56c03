"""The plugin manager: built-ins and entry-point plugins, loaded into one registry per kind.

Environment:
  EARTHMIND_PLUGINS        comma-separated entry-point plugin names to load; nothing else
                           from the ``earthmind`` group is imported (empty: load none).
                           Built-ins always load.
  EARTHMIND_BLOCK_PLUGINS  comma-separated plugin names never loaded (built-ins included).

A plugin that raises while importing or registering is reported (a warning and a row with
its error in :func:`plugin_infos`); what it registered is withdrawn and everything else works.
"""
from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable

import pluggy

from . import hookspecs
from .registry import KINDS, Registry

ENTRY_POINT_GROUP = "earthmind"
ALLOW_ENV = "EARTHMIND_PLUGINS"
BLOCK_ENV = "EARTHMIND_BLOCK_PLUGINS"

#: Built-in plugins: (plugin name, module). They register through the same hooks.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("core.sensors", "earthmind_sdk.sensors.plugin"),
    ("core.model", "earthmind_sdk.model.plugin"),
    ("core.fusion", "earthmind_sdk.model.fusion.plugin"),
    ("core.tasks", "earthmind_sdk.tasks.plugin"),
    ("core.eval", "earthmind_sdk.eval.plugin"),
    ("core.train", "earthmind_sdk.train.plugin"),
    ("core.text", "earthmind_sdk.text.plugin"),
    ("core.jobs", "earthmind_sdk.jobs.plugin"),
)


class PluginLoadWarning(UserWarning):
    """A plugin failed to import or register; the rest keeps working."""


@dataclass
class PluginInfo:
    name: str
    distribution: str | None
    version: str | None
    hooks: list[str] = field(default_factory=list)
    components: dict[str, list[str]] = field(default_factory=dict)
    descriptions: dict[str, dict[str, str]] = field(default_factory=dict)  # kind -> name -> one line
    error: str | None = None
    builtin: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "hooks": list(self.hooks),
            "components": {k: list(v) for k, v in self.components.items()},
            "descriptions": {k: dict(v) for k, v in self.descriptions.items()},
            "error": self.error,
        }


class PluginSystem:
    """Loads plugins once and owns the registries they fill."""

    def __init__(self, entry_points: Iterable[md.EntryPoint] | None = None,
                 builtins: Iterable[tuple[str, str]] = BUILTIN_PLUGINS):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registries = {kind: Registry(kind) for kind in KINDS}
        self.infos: dict[str, PluginInfo] = {}
        self._entry_points = entry_points
        self._builtins = tuple(builtins)
        self._loaded = False

    # -- loading -----------------------------------------------------------------------
    def load(self) -> "PluginSystem":
        if self._loaded:
            return self
        self._loaded = True
        blocked = _env_names(BLOCK_ENV) or set()
        allowed = _env_names(ALLOW_ENV)
        core_version = _version("earthmind-sdk")
        for name, module in self._builtins:
            if name in blocked:
                continue
            info = PluginInfo(name, "earthmind-sdk", core_version, builtin=True)
            self._load_one(info, lambda module=module: importlib.import_module(module))
        for ep in self._iter_entry_points():
            if ep.name in blocked or (allowed is not None and ep.name not in allowed):
                continue
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                ep.name,
                dist.metadata["Name"] if dist is not None else None,
                dist.version if dist is not None else None,
            )
            self._load_one(info, ep.load)
        return self

    def register_plugin(self, name: str, plugin: object, *, distribution: str | None = None,
                        version: str | None = None) -> PluginInfo:
        """Register an in-process plugin object (tests, notebooks) as if installed."""
        self.load()
        info = PluginInfo(name, distribution, version)
        self._load_one(info, lambda: plugin)
        return info

    def unregister_plugin(self, name: str) -> None:
        info = self.infos.pop(name, None)
        if info is not None:
            for kind, names in info.components.items():
                for n in names:
                    self.registries[kind].unregister(n)
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)

    def _iter_entry_points(self) -> list[md.EntryPoint]:
        if self._entry_points is not None:
            return list(self._entry_points)
        return list(md.entry_points(group=ENTRY_POINT_GROUP))

    def _load_one(self, info: PluginInfo, importer) -> None:
        if info.name in self.infos:
            info.error = f"plugin name {info.name!r} is already taken by {self.infos[info.name].distribution!r}"
            self.infos[info.name + f" ({info.distribution})"] = info
            warnings.warn(f"earthmind plugin {info.name!r}: {info.error}", PluginLoadWarning, stacklevel=3)
            return
        self.infos[info.name] = info
        try:
            plugin = importer()
            self.pm.register(plugin, name=info.name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - sys.exit() or any raise at import is reported, not raised
            self._fail(info, f"import failed: {type(exc).__name__}: {exc}")
            return
        info.hooks = sorted(
            impl_hook for impl_hook in (f"register_{k}" for k in KINDS)
            if any(i.plugin_name == info.name for i in getattr(self.pm.hook, impl_hook).get_hookimpls())
        )
        staged: list[tuple[str, str, Any, str]] = []
        try:
            for kind in KINDS:
                hook = getattr(self.pm.hook, f"register_{kind}")
                for impl in hook.get_hookimpls():
                    if impl.plugin_name != info.name:
                        continue

                    def register(name, target, description="", _kind=kind):
                        staged.append((_kind, name, target, description))

                    impl.function(register=register)
            done: list[tuple[str, str]] = []
            try:
                for kind, name, target, description in staged:
                    self.registries[kind].register(name, target, owner=info.name, description=description)
                    done.append((kind, name))
            except Exception:
                for kind, name in done:
                    self.registries[kind].unregister(name)
                raise
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - a hook calling sys.exit() is isolated too
            self.pm.unregister(name=info.name)
            self._fail(info, f"registration failed: {type(exc).__name__}: {exc}")
            return
        for kind, name, _, _ in staged:
            info.components.setdefault(kind, []).append(name)
            info.descriptions.setdefault(kind, {})[name] = self.registries[kind].entry(name).description

    def _fail(self, info: PluginInfo, message: str) -> None:
        info.error = message
        warnings.warn(f"earthmind plugin {info.name!r} ({info.distribution}) {message}",
                      PluginLoadWarning, stacklevel=4)

    # -- queries -----------------------------------------------------------------------
    def registry(self, kind: str) -> Registry:
        self.load()
        if kind not in self.registries:
            raise KeyError(f"unknown component kind {kind!r}; kinds are {', '.join(KINDS)}")
        return self.registries[kind]

    def plugin_infos(self) -> list[PluginInfo]:
        self.load()
        return list(self.infos.values())


def _env_names(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


_SYSTEM: PluginSystem | None = None


def system() -> PluginSystem:
    """The process-wide plugin system, loaded on first use."""
    global _SYSTEM
    if _SYSTEM is None:
        _SYSTEM = PluginSystem()
    return _SYSTEM.load()


def registry(kind: str) -> Registry:
    """The registry for one component kind, e.g. ``registry("sensors")``."""
    return system().registry(kind)


def plugin_infos() -> list[PluginInfo]:
    return system().plugin_infos()

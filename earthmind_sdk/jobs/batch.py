"""Many scenes in one run: scenes from a folder, a glob, a CSV of pairs or a STAC
ItemCollection, each processed by a job (``map``, ``infer``), one JSON line per scene.

A scene that fails (unreadable file, pair that does not align, ...) gets one line on stderr
and one ``"status": "failed"`` record, and the run goes on. Records are appended as scenes
finish, so a rerun into the same folder skips the scenes already done (failed ones are tried
again). Under torchrun the scenes are split across the processes by whole batches
(:mod:`.shard`); at the end the records file holds one record per scene, in input order.

Scene inputs are named by role, as the command-line flags: ``image`` (optical), ``sar``, ``ms``.
"""
from __future__ import annotations

import csv
import glob as _glob
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ..errors import EarthMindError

ROLES = ("image", "sar", "ms")
RASTER_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".jp2", ".vrt")


@dataclass
class Scene:
    """One scene of a batch: an id (unique in the batch) and its inputs, role -> path or URL."""

    id: str
    inputs: dict[str, str] = field(default_factory=dict)


class SceneListError(EarthMindError):
    """A scene list (folder, glob, CSV, STAC) that cannot be read as one."""


def _is_url(s: str) -> bool:
    return "://" in s or s.startswith("/vsi")


def _unique(scenes: list[Scene], where: str) -> list[Scene]:
    seen: dict[str, int] = {}
    out = []
    for s in scenes:
        n = seen.get(s.id, 0)
        seen[s.id] = n + 1
        out.append(s if n == 0 else Scene(f"{s.id}_{n + 1}", s.inputs))
    if not out:
        raise SceneListError(f"{where}: no scenes found")
    return out


def scenes_from(source: "str | Path", *, assets: Optional[dict[str, str]] = None) -> list[Scene]:
    """The scenes of ``source``: a folder (every raster in it, sorted), a glob pattern, a CSV
    with a header naming ``image``/``sar``/``ms`` columns (and optionally ``id``; relative paths
    are relative to the CSV), or a STAC ItemCollection JSON (``assets`` maps role -> asset key;
    default ``image`` = the ``visual`` asset or the item's first GeoTIFF)."""
    s = str(source)
    p = Path(s)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in RASTER_SUFFIXES)
        return _unique([Scene(f.stem, {"image": str(f)}) for f in files], f"{p} (folder)")
    if any(ch in s for ch in "*?["):
        files = sorted(f for f in _glob.glob(s, recursive=True) if Path(f).is_file())
        return _unique([Scene(Path(f).stem, {"image": f}) for f in files], f"{s} (glob)")
    if not p.is_file():
        raise SceneListError(f"{s}: no such folder or file, and not a glob pattern")
    if p.suffix.lower() == ".csv":
        return _from_csv(p)
    if p.suffix.lower() in (".json", ".geojson"):
        return _from_stac(p, assets or {})
    raise SceneListError(f"{s}: a scene list must be a folder, a glob, a .csv or a STAC ItemCollection .json")


def _from_csv(path: Path) -> list[Scene]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        unknown = [c for c in cols if c not in (*ROLES, "id")]
        if "image" not in cols and "sar" not in cols and "ms" not in cols or unknown:
            raise SceneListError(f"{path}:1: the header must name columns among id, {', '.join(ROLES)}"
                                 + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
        scenes = []
        for line, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            inputs = {r: row[r] if _is_url(row[r]) or Path(row[r]).is_absolute() else str(path.parent / row[r])
                      for r in ROLES if row.get(r)}
            if not inputs:
                raise SceneListError(f"{path}:{line}: no input path in this row")
            first = next(iter(inputs.values()))
            scenes.append(Scene(row.get("id") or Path(first).stem, inputs))
    return _unique(scenes, str(path))


def _from_stac(path: Path, assets: dict[str, str]) -> list[Scene]:
    try:
        import pystac
    except ImportError:
        raise SceneListError("reading STAC needs the 'map' extra (pystac): pip install 'earthmind-sdk[map]'") from None
    try:
        items = pystac.ItemCollection.from_file(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure is one line about this file
        raise SceneListError(f"{path}: not a STAC ItemCollection ({type(exc).__name__}: {exc})") from None
    scenes = []
    for item in items:
        inputs = {}
        wanted = dict(assets) or {"image": _default_asset(item)}
        for role, key in wanted.items():
            if role not in ROLES:
                raise SceneListError(f"{path}: asset role {role!r} is not one of {', '.join(ROLES)}")
            if key is None or key not in item.assets:
                raise SceneListError(f"{path}: item {item.id} has no asset {key!r}; it has {', '.join(item.assets)}")
            href = item.assets[key].get_absolute_href() or item.assets[key].href
            inputs[role] = href if _is_url(href) or Path(href).is_absolute() else str(path.parent / href)
        scenes.append(Scene(item.id, inputs))
    return _unique(scenes, str(path))


def _default_asset(item) -> Optional[str]:
    if "visual" in item.assets:
        return "visual"
    for key, asset in item.assets.items():
        if (asset.media_type or "").startswith("image/tiff") or Path(asset.href).suffix.lower() in (".tif", ".tiff"):
            return key
    return None


def _failure(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, EarthMindError) else f"{type(exc).__name__}: {exc}"


def run_batch(scenes: Sequence[Scene], process: Callable[[list[Scene]], list[dict[str, Any]]], stream, *,
              batch_size: int = 1, desc: str = "scenes", progress: Any = None) -> dict[str, Any]:
    """Process ``scenes`` (skipping those ``stream`` already holds as ``ok``) in batches of
    ``batch_size``, writing one record per scene to ``stream`` (a
    :class:`~.shard.ShardedStream`: under torchrun each rank takes its share of the batches and
    rank 0 merges the records, one per scene in input order).

    ``process`` answers a batch with one JSON-able dict per scene. When a batch raises, its
    scenes are retried one at a time, so one bad input fails only its own record.
    Returns ``{"scenes", "ok", "failed", "resumed"}`` for the whole run (other ranks: None).
    """
    from .progress import Progress
    from .shard import plan_batches

    world = stream.world
    keys = [s.id for s in scenes]
    ok_before = stream.done_ids("ok") & set(keys)
    batches = plan_batches(keys, batch_size, ok_before, world)

    def one(scene: Scene) -> dict[str, Any] | BaseException:
        try:
            return process([scene])[0]
        except Exception as exc:  # noqa: BLE001 - reported per scene, the run goes on
            return exc

    with Progress(len(scenes), desc, progress=progress if world.main else False, unit="scene",
                  initial=len(ok_before)) as bar:
        for batch in batches:
            chunk = [scenes[i] for i in batch]
            try:
                results: list[Any] = list(process(chunk))
            except Exception as exc:  # noqa: BLE001
                results = [exc] if len(chunk) == 1 else [one(s) for s in chunk]
            rows = []
            for scene, res in zip(chunk, results):
                if isinstance(res, BaseException):
                    print(f"{desc}: {scene.id}: failed: {_failure(res)}", file=sys.stderr)  # even when quiet
                    rows.append({"id": scene.id, "status": "failed", "inputs": scene.inputs, "error": _failure(res)})
                else:
                    rows.append({"id": scene.id, "status": "ok", "inputs": scene.inputs, **res})
            stream.write(rows)
            stream.advance(bar, len(chunk))
        merged = stream.merge(keys, on_wait=lambda: stream.advance(bar, 0))
    if merged is None:
        return None
    ok = sum(r.get("status") == "ok" for r in merged)
    return {"scenes": len(scenes), "ok": ok, "failed": len(merged) - ok, "resumed": len(ok_before)}

"""Mask -> object polygons with score and area, written as GeoPackage and GeoJSON.

The mask is polygonised block by block (memory follows the block, not the scene) in *pixel*
coordinates, where block edges are exact integers: pieces of one object cut by a block edge
share their edge exactly and are unioned back into one polygon, with their pixel counts and
probability sums added. Only at the end are polygons put on the raster's grid (its affine
transform), so coordinates match the mask GeoTIFF exactly.

Needs the ``map`` extra (shapely, pyogrio): ``pip install earthmind-sdk[map]``.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import EarthMindError


def _need():
    try:
        import pyogrio  # noqa: F401
        import shapely  # noqa: F401
    except ImportError as exc:
        raise EarthMindError(f"earthmind map needs the 'map' extra ({exc.name} is missing): "
                             "pip install 'earthmind-sdk[map]'") from None


@dataclass
class MapObject:
    """One connected object: its polygon in pixel coordinates, pixel count and probability sum."""

    geometry: Any
    pixels: int
    prob_sum: float

    @property
    def score(self) -> float:
        return self.prob_sum / self.pixels if self.pixels else 0.0


def objects_from_mask(mask_path: Path, prob_path: Path, *, block: int = 512) -> list[MapObject]:
    """Objects (4-connected pixels == 1) of a single-band mask GeoTIFF, each scored with the
    mean of ``prob_path`` over its pixels."""
    _need()
    import rasterio
    import shapely
    from rasterio import Affine
    from rasterio.features import rasterize, shapes
    from rasterio.windows import Window
    from shapely.geometry import shape

    whole: list[MapObject] = []
    pieces: list[MapObject] = []
    with rasterio.open(mask_path) as msrc, rasterio.open(prob_path) as psrc:
        H, W = msrc.height, msrc.width
        for r0 in range(0, H, block):
            for c0 in range(0, W, block):
                win = Window(c0, r0, min(block, W - c0), min(block, H - r0))
                m = msrc.read(1, window=win) == 1
                if not m.any():
                    continue
                prob = np.nan_to_num(psrc.read(1, window=win).astype(np.float64))
                to_px = Affine.translation(c0, r0)
                geoms = [shape(g) for g, _ in shapes(m.astype(np.uint8), mask=m, transform=to_px, connectivity=4)]
                labels = rasterize([(g, k + 1) for k, g in enumerate(geoms)], out_shape=m.shape, transform=to_px,
                                   dtype="int32")
                count = np.bincount(labels.ravel(), minlength=len(geoms) + 1)
                total = np.bincount(labels.ravel(), weights=prob.ravel(), minlength=len(geoms) + 1)
                edge = set()
                if r0 > 0:
                    edge.update(np.unique(labels[0]))
                if r0 + m.shape[0] < H:
                    edge.update(np.unique(labels[-1]))
                if c0 > 0:
                    edge.update(np.unique(labels[:, 0]))
                if c0 + m.shape[1] < W:
                    edge.update(np.unique(labels[:, -1]))
                for k, g in enumerate(geoms, start=1):
                    obj = MapObject(g, int(count[k]), float(total[k]))
                    (pieces if k in edge else whole).append(obj)
    if pieces:
        merged = shapely.get_parts(shapely.union_all([p.geometry for p in pieces]))
        tree = shapely.STRtree(merged)
        stats = np.zeros((len(merged), 2))
        for p in pieces:
            hit = tree.query(p.geometry.representative_point(), predicate="intersects")
            stats[hit[0]] += (p.pixels, p.prob_sum)
        whole.extend(MapObject(g, int(n), float(s)) for g, (n, s) in zip(merged, stats))
    whole.sort(key=lambda o: (o.geometry.bounds[1], o.geometry.bounds[0]))
    return whole


def _pixel_area_m2(transform, crs: Optional[str], y_px: float) -> Optional[float]:
    """Ground area of one pixel in m²: exact for metre grids; for degree grids a spherical
    approximation at the object's latitude; None without georeferencing."""
    if transform is None or crs is None:
        return None
    from rasterio.crs import CRS

    a, b, c, d, e, f = transform
    px = abs(a * e - b * d)
    c_obj = CRS.from_user_input(crs)
    if c_obj.is_geographic:
        lat = math.radians(f + e * y_px)
        deg = 6371008.8 * math.pi / 180.0
        return px * deg * deg * math.cos(lat)
    units = (c_obj.linear_units or "").lower()
    factor = {"metre": 1.0, "meter": 1.0, "m": 1.0, "foot": 0.3048, "us survey foot": 1200 / 3937}.get(units)
    return px * factor * factor if factor else None


def write_objects(objects: Sequence[MapObject], base: Path, *, crs: Optional[str], transform) -> dict[str, str]:
    """``<base>.gpkg`` (raster CRS) and ``<base>.geojson`` (WGS 84), one feature per object with
    ``id``, ``score`` (mean probability), ``pixels`` and ``area_m2``."""
    fields: dict[str, list] = {"id": [], "score": [], "pixels": [], "area_m2": []}
    for k, o in enumerate(objects, start=1):
        area = _pixel_area_m2(transform, crs, o.geometry.centroid.y)
        fields["id"].append(k)
        fields["score"].append(round(o.score, 6))
        fields["pixels"].append(o.pixels)
        fields["area_m2"].append(float("nan") if area is None else o.pixels * area)
    files = write_features([o.geometry for o in objects], fields, base, crs=crs, transform=transform)
    return files


def write_features(geoms_px: Sequence[Any], fields: dict[str, list], base: Path, *, crs: Optional[str],
                   transform) -> dict[str, str]:
    """Polygons given in pixel coordinates, put on the raster grid, to GeoPackage and GeoJSON
    (GeoJSON in WGS 84 as RFC 7946 asks; both in pixel coordinates when there is no CRS)."""
    _need()
    import shapely
    from shapely.affinity import affine_transform

    if transform is not None:
        a, b, c, d, e, f = transform
        geoms = [affine_transform(g, [a, b, d, e, c, f]) for g in geoms_px]
    else:
        geoms = list(geoms_px)
    out = {}
    gpkg = Path(f"{base}.gpkg")
    _write(gpkg, geoms, fields, crs, "GPKG")
    out[f"{base.name.rsplit('_', 1)[-1]}_gpkg"] = str(gpkg)
    if crs is not None:
        from rasterio.warp import transform_geom

        geoms = [shapely.geometry.shape(transform_geom(crs, "EPSG:4326", shapely.geometry.mapping(g)))
                 for g in geoms]
    gj = Path(f"{base}.geojson")
    _write(gj, geoms, fields, "EPSG:4326" if crs is not None else None, "GeoJSON")
    out[f"{base.name.rsplit('_', 1)[-1]}_geojson"] = str(gj)
    return out


def _write(path: Path, geoms: list, fields: dict[str, list], crs: Optional[str], driver: str) -> None:
    import pyogrio.raw
    import shapely

    from ..jobs import atomic_path

    names = list(fields)
    data = [np.asarray(fields[n], dtype=object if fields[n] and isinstance(fields[n][0], str) else None)
            for n in names]
    data = [d if d.size else np.asarray([], dtype=float if n in ("score", "area_m2") else
                                       (object if n in ("answer", "value") else np.int64))
            for d, n in zip(data, names)]
    wkb = np.array([shapely.to_wkb(shapely.geometry.MultiPolygon([g]) if g.geom_type == "Polygon" else g)
                    for g in geoms], dtype=object)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*'crs' was not provided")  # pixel coordinates, on purpose
        pyogrio.raw.write(tmp, wkb, data, names, geometry_type="MultiPolygon", crs=crs, driver=driver,
                          layer=path.stem)

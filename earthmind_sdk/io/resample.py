"""Put a raster on another grid (CRS, transform, size) with rasterio.warp.

Pixels outside the source footprint become nodata (NaN for float output), so callers can
mark them invalid instead of seeing zeros that look like data.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..contracts import Raster
from ..errors import RasterError
from .raster import replace_data

RESAMPLING = ("nearest", "bilinear", "cubic", "average", "mode")


def _resampling(name: str):
    from rasterio.enums import Resampling

    if name not in RESAMPLING:
        raise RasterError(f"unknown resampling {name!r}; choose one of {', '.join(RESAMPLING)}")
    return getattr(Resampling, name)


def reproject_to(raster: Raster, crs: str, transform, shape: tuple[int, int], *,
                 resampling: str = "bilinear") -> Raster:
    """``raster`` warped onto the grid (``crs``, ``transform``, ``shape``=(H, W)), as float32.

    Source nodata and non-finite pixels are excluded from the interpolation; destination
    pixels without source data are NaN and the result's ``nodata`` is NaN.
    """
    from rasterio import Affine
    from rasterio.warp import reproject

    if not raster.georeferenced:
        raise RasterError(f"{raster.source}: cannot reproject a raster without CRS and transform")
    src = raster.data.astype(np.float32, copy=True)
    bad = ~np.isfinite(src)
    if raster.nodata is not None and np.isfinite(raster.nodata):
        bad |= raster.data == raster.nodata
    src[bad] = np.nan
    h, w = int(shape[0]), int(shape[1])
    dst = np.full((src.shape[0], h, w), np.nan, dtype=np.float32)
    for b in range(src.shape[0]):
        reproject(source=src[b], destination=dst[b], src_transform=Affine(*raster.transform),
                  src_crs=raster.crs, src_nodata=np.nan, dst_transform=Affine(*transform),
                  dst_crs=crs, dst_nodata=np.nan, resampling=_resampling(resampling))
    meta = dict(raster.meta)
    meta["resampled_from"] = {"crs": raster.crs, "transform": raster.transform,
                              "shape": (raster.height, raster.width), "resampling": resampling}
    return replace_data(raster, dst, crs=crs, transform=tuple(transform)[:6], nodata=float("nan"), meta=meta)


def resample_like(raster: Raster, reference: Raster, *, resampling: str = "bilinear") -> Raster:
    """``raster`` on ``reference``'s grid (both must be georeferenced)."""
    if not reference.georeferenced:
        raise RasterError(f"{reference.source}: the reference grid has no CRS and transform")
    return reproject_to(raster, reference.crs, reference.transform, (reference.height, reference.width),
                        resampling=resampling)


def resize(raster: Raster, shape: tuple[int, int], *, resampling: str = "bilinear") -> Raster:
    """Resize to (H, W) keeping the footprint: the transform is rescaled when there is one."""
    from rasterio import Affine

    h, w = int(shape[0]), int(shape[1])
    if h < 1 or w < 1:
        raise RasterError(f"{raster.source}: cannot resize to {shape}")
    sx, sy = raster.width / w, raster.height / h
    if raster.georeferenced:
        dst_t = Affine(*raster.transform) @ Affine.scale(sx, sy)
        return reproject_to(raster, raster.crs, tuple(dst_t)[:6], (h, w), resampling=resampling)
    # No georeferencing: warp in a stand-in pixel CRS, then drop it again.
    # (GDAL drops a grid whose origin is exactly 0, 0: put it at a positive offset.)
    x0, y0 = 1000.0, 1000.0 + raster.height
    stand_in = replace_data(raster, raster.data, crs="EPSG:3857", transform=(1.0, 0.0, x0, 0.0, -1.0, y0))
    out = reproject_to(stand_in, "EPSG:3857", (sx, 0.0, x0, 0.0, -sy, y0), (h, w), resampling=resampling)
    out.meta.pop("resampled_from", None)
    return replace_data(out, out.data, crs=None, transform=None)


def footprint(raster: Raster, crs: Optional[str] = None) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of ``raster``, in ``crs`` when given."""
    from rasterio import Affine
    from rasterio.transform import array_bounds
    from rasterio.warp import transform_bounds

    t = Affine(*raster.transform)
    west, south, east, north = array_bounds(raster.height, raster.width, t)
    if crs is not None and crs != raster.crs:
        return tuple(transform_bounds(raster.crs, crs, west, south, east, north, densify_pts=21))
    return (west, south, east, north)

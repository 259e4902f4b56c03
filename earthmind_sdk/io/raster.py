"""Read and write rasters with their georeferencing, through rasterio (GDAL).

Why rasterio: its wheels bundle GDAL, so one maintained reader covers GeoTIFF/COG (any
compression: LZW, DEFLATE, ZSTD, JPEG), PNG, JPEG and JPEG 2000 (Sentinel-2 SAFE bands),
keeps CRS, affine transform, nodata, band descriptions and tags, and gives reprojection
(``rasterio.warp``) for aligning pairs. tifffile + imagecodecs decodes TIFF pixels well but
leaves GeoKeys raw (no CRS object, no reprojection), so it would need a second library anyway.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..contracts import Raster
from ..errors import RasterError, name_list

PathLike = Union[str, "os.PathLike[str]"]

#: Suffixes written as GeoTIFF; anything else goes through GDAL's driver for the suffix.
_DRIVERS = {".tif": "GTiff", ".tiff": "GTiff", ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def _rasterio():
    import rasterio  # local: listing plugins must not pay for GDAL

    return rasterio


def read_raster(path: PathLike, *, bands: Optional[Sequence[Union[int, str]]] = None,
                band_names: Optional[Sequence[str]] = None) -> Raster:
    """Read ``path`` (GeoTIFF/COG, PNG, JPEG, JP2, anything GDAL opens) into a :class:`Raster`.

    ``bands`` picks bands by 1-based index or by name (band descriptions); ``band_names``
    overrides the names stored in the file. The pixels keep their stored dtype; CRS,
    transform, nodata, per-band scales/offsets, units and tags go on the raster.
    """
    rasterio = _rasterio()
    path = Path(path)
    if not path.exists():
        raise RasterError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                names = _names_in_file(src)
                indexes = _pick_bands(path, names, bands)
                data, crs, transform, nodata, meta = _read_from(src, indexes)
    except rasterio.errors.RasterioIOError as exc:
        raise RasterError(f"{path}: cannot be read as a raster ({' '.join(str(exc).split())[:200]})") from None
    if meta["driver"] in ("PNG", "JPEG"):
        _check_complete(path)
    picked = tuple(names[i - 1] for i in indexes)
    if band_names is not None:
        if len(band_names) != data.shape[0]:
            raise RasterError(f"{path}: {len(band_names)} band names given for {data.shape[0]} bands")
        picked = tuple(band_names)
    return Raster(data=data, band_names=picked, crs=crs, transform=transform, nodata=nodata,
                  source=str(path), meta=meta)


def _read_from(src, indexes: list[int], window=None):
    """Pixels (all, or one rasterio ``window``), CRS, transform, nodata and meta of an open dataset."""
    data = src.read(indexes, window=window)
    georef = src.crs is not None and not src.transform.is_identity
    meta: dict[str, Any] = {
        "driver": src.driver,
        "dtype": src.dtypes[0],
        "tags": dict(src.tags()),
        "band_tags": [dict(src.tags(i)) for i in indexes],
        "scales": [src.scales[i - 1] for i in indexes],
        "offsets": [src.offsets[i - 1] for i in indexes],
        "units": [src.units[i - 1] for i in indexes],
        "colorinterp": [src.colorinterp[i - 1].name for i in indexes],
    }
    crs = src.crs.to_string() if georef else None
    t = src.window_transform(window) if window is not None else src.transform
    transform = tuple(t)[:6] if georef else None
    if georef:
        meta["res"] = (abs(transform[0]), abs(transform[4]))
    return data, crs, transform, src.nodata, meta


def read_window(src, window, *, source: str) -> Raster:
    """One rasterio ``window`` of an open dataset as a :class:`Raster` on that window's grid,
    with the same bands, names and meta as :func:`read_raster` gives for the whole file."""
    names = _names_in_file(src)
    data, crs, transform, nodata, meta = _read_from(src, list(range(1, len(names) + 1)), window)
    return Raster(data=data, band_names=names, crs=crs, transform=transform, nodata=nodata,
                  source=source, meta=meta)


def _check_complete(path: Path) -> None:
    """GDAL returns the decoded part of a truncated PNG/JPEG without an error; Pillow decodes the
    whole file and says when it ends early."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise RasterError(f"{path}: truncated or corrupt image ({exc})") from None


def _names_in_file(src) -> tuple[str, ...]:
    names = []
    for i, desc in enumerate(src.descriptions, start=1):
        if desc:
            names.append(desc)
        else:
            ci = src.colorinterp[i - 1].name
            names.append(ci if ci in ("red", "green", "blue", "alpha", "gray") else f"band{i}")
    return tuple(names)


def _pick_bands(path: Path, names: tuple[str, ...], bands) -> list[int]:
    if bands is None:
        return list(range(1, len(names) + 1))
    out = []
    for b in bands:
        if isinstance(b, str):
            if b not in names:
                raise RasterError(f"{path}: no band named {b!r}; the file has {name_list(names)}")
            out.append(names.index(b) + 1)
        else:
            if not 1 <= int(b) <= len(names):
                raise RasterError(f"{path}: band index {b} out of range 1..{len(names)}")
            out.append(int(b))
    return out


def as_raster(source: Union[PathLike, np.ndarray, Raster], *,
              band_names: Optional[Sequence[str]] = None) -> Raster:
    """A :class:`Raster` from a path, an array ((H, W) or (bands, H, W)) or a raster."""
    if isinstance(source, Raster):
        raster = source
        if band_names is not None:
            raster = _renamed(raster, band_names)
        _check_shape(raster.data, raster.source or "raster")
        return raster
    if isinstance(source, np.ndarray):
        data = source[None] if source.ndim == 2 else source
        _check_shape(data, "array")
        names = tuple(band_names) if band_names is not None else tuple(f"band{i}" for i in range(1, data.shape[0] + 1))
        if len(names) != data.shape[0]:
            raise RasterError(f"array: {len(names)} band names given for {data.shape[0]} bands")
        return Raster(data=data, band_names=names, source="array", meta={"dtype": data.dtype.name})
    if isinstance(source, (str, os.PathLike)):
        return read_raster(source, band_names=band_names)
    raise RasterError(f"cannot read a raster from {type(source).__name__}; give a path, an array or a Raster")


def _renamed(raster: Raster, band_names: Sequence[str]) -> Raster:
    if len(band_names) != raster.data.shape[0]:
        raise RasterError(f"{raster.source}: {len(band_names)} band names given for {raster.data.shape[0]} bands")
    return replace_data(raster, raster.data, band_names=tuple(band_names))


def _check_shape(data: np.ndarray, where: str) -> None:
    if not isinstance(data, np.ndarray) or data.ndim != 3:
        raise RasterError(f"{where}: expected (bands, height, width) data, got shape {getattr(data, 'shape', None)}")
    if min(data.shape) < 1:
        raise RasterError(f"{where}: empty raster of shape {data.shape}")
    if data.dtype.kind not in "biuf":
        raise RasterError(f"{where}: unsupported pixel type {data.dtype} (need bool, integer or float)")


def replace_data(raster: Raster, data: np.ndarray, **changes: Any) -> Raster:
    """A copy of ``raster`` with new pixels (and any other field changed), meta copied."""
    fields = dict(data=data, band_names=raster.band_names, crs=raster.crs, transform=raster.transform,
                  nodata=raster.nodata, source=raster.source, meta=dict(raster.meta))
    fields.update(changes)
    return Raster(**fields)


def write_raster(path: PathLike, raster: Raster, *, compress: str = "deflate",
                 tags: Optional[dict[str, str]] = None, cog: bool = False) -> Path:
    """Write ``raster`` to ``path`` keeping CRS, transform, nodata and band names.

    GeoTIFF for ``.tif``/``.tiff`` (``cog=True`` writes a Cloud-Optimised GeoTIFF); PNG and
    JPEG take 8-bit (or 16-bit PNG) data and drop the georeferencing, which they cannot hold.
    """
    rasterio = _rasterio()
    path = Path(path)
    data = raster.data
    _check_shape(data, str(path))
    if data.dtype == bool:
        data = data.astype(np.uint8)
    driver = "COG" if cog else _DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise RasterError(f"{path}: unknown raster suffix {path.suffix!r}; use .tif, .png or .jpg")
    profile: dict[str, Any] = dict(driver="GTiff" if driver == "COG" else driver, count=data.shape[0],
                                   height=data.shape[1], width=data.shape[2], dtype=data.dtype.name)
    if profile["driver"] == "GTiff":
        profile["compress"] = compress
        if raster.georeferenced:
            profile["crs"] = raster.crs
            profile["transform"] = rasterio.Affine(*raster.transform)
        if raster.nodata is not None:
            profile["nodata"] = raster.nodata
    from .atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), atomic_path(path) as tmp:  # no reader ever sees half a raster
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        try:
            if driver == "COG":
                _write_cog(tmp, data, raster, profile, tags)
            else:
                with rasterio.open(tmp, "w", **profile) as dst:
                    dst.write(data)
                    if profile["driver"] == "GTiff":
                        _describe(dst, raster, tags)
        finally:
            Path(str(tmp) + ".aux.xml").unlink(missing_ok=True)  # GDAL sidecar of the temporary name
    return path


def _describe(dst, raster: Raster, tags: Optional[dict[str, str]]) -> None:
    for i, name in enumerate(raster.band_names[: dst.count], start=1):
        dst.set_band_description(i, str(name))
    if tags:
        dst.update_tags(**{k: str(v) for k, v in tags.items()})


def _write_cog(path: Path, data: np.ndarray, raster: Raster, profile: dict, tags) -> None:
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy as rio_copy

    with MemoryFile() as mem:
        with mem.open(**profile) as tmp:
            tmp.write(data)
            _describe(tmp, raster, tags)
        with mem.open() as tmp:
            rio_copy(tmp, path, driver="COG", compress=profile.get("compress", "deflate"))

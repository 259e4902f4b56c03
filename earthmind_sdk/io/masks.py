"""Masks and overlays back to disk with the source's georeferencing.

A mask predicted on a georeferenced raster is written as a GeoTIFF on the same grid (CRS,
transform), so a GIS puts it exactly where the pixels came from; without georeferencing it
is a PNG. Beside it goes an overlay PNG (mask tinted over the image) for people.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np

from ..contracts import Raster, SensorImage
from ..errors import RasterError
from .raster import write_raster


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _binary(mask: Any, threshold: float, where: str) -> np.ndarray:
    m = _numpy(mask)
    m = np.squeeze(m) if m.ndim > 2 else m
    if m.ndim != 2:
        raise RasterError(f"{where}: a mask must be (H, W), got shape {m.shape}")
    if m.dtype == bool:
        return m
    if m.dtype.kind in "iu":
        return m != 0
    if m.dtype.kind == "f":
        if not np.isfinite(m).all():
            raise RasterError(f"{where}: the mask holds NaN or inf")
        return m > threshold
    raise RasterError(f"{where}: unsupported mask type {m.dtype}")


def render_rgb(raster: Raster) -> np.ndarray:
    """A quick (H, W, 3) uint8 view of a raster: first three bands (or grey), 2-98 % stretch."""
    data = raster.data.astype(np.float64)
    bands = data[:3] if data.shape[0] >= 3 else np.repeat(data[:1], 3, axis=0)
    valid = np.isfinite(bands).all(axis=0)
    if raster.nodata is not None and np.isfinite(raster.nodata):
        valid &= ~(raster.data[: bands.shape[0]] == raster.nodata).any(axis=0) if data.shape[0] >= 3 \
            else raster.data[0] != raster.nodata
    out = np.zeros(bands.shape, dtype=np.float64)
    for i, b in enumerate(bands):
        v = b[valid]
        if v.size:
            lo, hi = np.percentile(v, [2, 98])
            out[i] = np.clip((b - lo) / max(hi - lo, 1e-12), 0, 1)
    out[:, ~valid] = 0
    return (np.moveaxis(out, 0, -1) * 255 + 0.5).astype(np.uint8)


def _as_rgb8(image: Any, shape: tuple[int, int]) -> np.ndarray:
    img = _numpy(image)
    if img.ndim == 4:
        img = img[0]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    elif img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = np.moveaxis(img, 0, -1)
    elif img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[1:] == tuple(shape):
        img = np.moveaxis(img, 0, -1)
    if img.ndim != 3 or img.shape[:2] != tuple(shape):
        raise RasterError(f"overlay image of shape {img.shape} does not match the mask {shape}")
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    if img.dtype == np.uint8:
        return img[..., :3]
    img = np.nan_to_num(img.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    if img.max() > 1.0:
        img = img / 255.0
    return (np.clip(img[..., :3], 0, 1) * 255 + 0.5).astype(np.uint8)


def overlay_rgb(image: Any, mask: np.ndarray, *, color=(255, 40, 40), alpha: float = 0.45) -> np.ndarray:
    """(H, W, 3) uint8: ``image`` with ``mask`` tinted in ``color`` and its outline drawn."""
    base = _as_rgb8(image, mask.shape).astype(np.float64)
    tint = np.asarray(color, dtype=np.float64)
    base[mask] = (1 - alpha) * base[mask] + alpha * tint
    edge = mask & ~_eroded(mask)
    base[edge] = tint
    return base.astype(np.uint8)


def _eroded(m: np.ndarray) -> np.ndarray:
    p = np.pad(m, 1, constant_values=False)
    return p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]


def write_mask(mask: Any, path: Union[str, "os.PathLike[str]"],
               source: Optional[Union[Raster, SensorImage]] = None, *,
               image: Any = None, overlay: bool = True, threshold: float = 0.5,
               color: tuple[int, int, int] = (255, 40, 40), alpha: float = 0.45) -> dict[str, Path]:
    """Write an (H, W) mask and, by default, an overlay PNG; return ``{"mask": ..., "overlay": ...}``.

    ``mask``: bool, integer (non-zero = inside) or float probabilities (``> threshold``), numpy
    or torch. ``source``: the raster (or the SensorImage, whose ``raster`` is used) the mask
    was predicted on; its size must equal the mask's. When it is georeferenced the mask goes to
    ``<path stem>.tif`` (uint8 0/1, same CRS and transform), otherwise to ``<path stem>.png``
    (0/255). The overlay goes to ``<path stem>_overlay.png``, drawn on ``image`` or, by default,
    on the SensorImage's first frame or a stretched view of the raster.
    """
    path = Path(path)
    raster = source.raster if isinstance(source, SensorImage) else source
    where = str(path)
    m = _binary(mask, threshold, where)
    if raster is not None and (raster.height, raster.width) != m.shape:
        raise RasterError(f"{where}: mask of shape {m.shape} does not match the reference raster "
                          f"{raster.source} of shape {(raster.height, raster.width)}")
    out: dict[str, Path] = {}
    if raster is not None and raster.georeferenced:
        mask_raster = Raster(data=m[None].astype(np.uint8), band_names=("mask",), crs=raster.crs,
                             transform=raster.transform, nodata=None, source=raster.source)
        out["mask"] = write_raster(path.with_suffix(".tif"), mask_raster,
                                   tags={"SOURCE_RASTER": raster.source or "", "VALUES": "1 inside, 0 outside"})
    else:
        png = Raster(data=(m[None].astype(np.uint8) * 255), band_names=("mask",))
        out["mask"] = write_raster(path.with_suffix(".png"), png)
    if overlay:
        if image is None and isinstance(source, SensorImage):
            image = source.frames[0]
        if image is None and raster is not None:
            image = render_rgb(raster)
        if image is None:
            image = np.full(m.shape + (3,), 96, dtype=np.uint8)
        rgb = overlay_rgb(image, m, color=color, alpha=alpha)
        out["overlay"] = write_raster(path.with_name(path.stem + "_overlay.png"),
                                      Raster(data=np.ascontiguousarray(np.moveaxis(rgb, -1, 0))))
    return out


def write_masks(result: Any, out_dir: Path, *, stem: str,
                record: Optional[Callable[..., Any]] = None) -> list[dict[str, Path]]:
    """Each mask of an inference :class:`~earthmind_sdk.contracts.Result` as GeoTIFF on the source
    grid (PNG when the input had no georeferencing) + overlay, named ``<stem>_mask<k>``; each file
    written atomically and handed to ``record`` (a job's ``RunFolder.record``) when given."""
    if not result.masks:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    source = next(iter(result.rasters.values()), None)
    written = []
    for k, mask in enumerate(result.masks):
        paths = write_mask(mask, out_dir / f"{stem}_mask{k}", source=source)
        if record is not None:
            record(*paths.values())
        written.append(paths)
    return written

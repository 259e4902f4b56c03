"""Pairs of sensors (SAR + optical, SAR + multispectral) put on one grid, or refused.

EarthMind's paired mode reads two images of one scene token by token, so the pixels must
line up. Rules of :func:`align_pair`:

- both georeferenced, same CRS, transform and size: the secondary is returned as is;
- both georeferenced and different: the secondary is resampled onto the primary's grid when
  their footprints overlap by at least ``min_overlap`` of the primary's area; pixels the
  secondary does not cover become NaN (invalid downstream);
- neither georeferenced: accepted when the sizes are equal (the pair is assumed
  co-registered, as EarthMind-Bench PNGs are); resized only when ``allow_resize=True``;
- one georeferenced, one not: accepted when the sizes are equal (the secondary takes the
  primary's grid), otherwise refused.
Everything else raises :class:`~earthmind_sdk.errors.AlignmentError` naming both files.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np

from ..contracts import Raster
from ..errors import AlignmentError

if TYPE_CHECKING:  # pragma: no cover
    from ..contracts import SensorImage
    from .base import Sensor, Source


def _name(r: Raster) -> str:
    return r.source or "array"


def _same_grid(a: Raster, b: Raster, tol: float = 1e-6) -> bool:
    from rasterio.crs import CRS

    if (a.height, a.width) != (b.height, b.width):
        return False
    if CRS.from_user_input(a.crs) != CRS.from_user_input(b.crs):
        return False
    ta, tb = np.asarray(a.transform, float), np.asarray(b.transform, float)
    scale = max(abs(ta[0]), abs(ta[4]), 1e-12)
    return bool(np.all(np.abs(ta - tb) <= tol * max(scale, 1.0)))


def overlap_fraction(primary: Raster, secondary: Raster) -> float:
    """Share of the primary's footprint covered by the secondary's (0..1)."""
    from ..io.resample import footprint

    try:
        pw, ps, pe, pn = footprint(primary)
        sw, ss, se, sn = footprint(secondary, primary.crs)
    except Exception as exc:  # noqa: BLE001 - any CRS failure is an alignment failure
        raise AlignmentError(
            f"cannot relate the grids of {_name(primary)} ({primary.crs}) and {_name(secondary)} "
            f"({secondary.crs}): {exc}"
        ) from exc
    iw = max(0.0, min(pe, se) - max(pw, sw))
    ih = max(0.0, min(pn, sn) - max(ps, ss))
    area = (pe - pw) * (pn - ps)
    return float(iw * ih / area) if area > 0 else 0.0


def align_pair(primary: Raster, secondary: Raster, *, resampling: str = "bilinear",
               min_overlap: float = 0.5, allow_resize: bool = False) -> Raster:
    """``secondary`` on ``primary``'s grid (see the module docstring), or AlignmentError."""
    p, s = _name(primary), _name(secondary)
    if primary.georeferenced and secondary.georeferenced:
        if _same_grid(primary, secondary):
            return secondary
        frac = overlap_fraction(primary, secondary)
        if frac <= 0.0:
            raise AlignmentError(f"{s} does not overlap {p}: their footprints are disjoint "
                                 f"(CRS {secondary.crs} vs {primary.crs}); they are not a pair")
        if frac < min_overlap:
            raise AlignmentError(f"{s} covers only {frac:.0%} of {p} (at least {min_overlap:.0%} needed); "
                                 f"crop both to the shared area or lower the threshold (--min-overlap on the "
                                 f"command line, Pipeline(..., min_overlap=...) in Python)")
        from ..io.resample import resample_like

        out = resample_like(secondary, primary, resampling=resampling)
        out.meta["aligned_to"] = p
        out.meta["overlap"] = frac
        return out
    same_size = (primary.height, primary.width) == (secondary.height, secondary.width)
    if same_size:
        from ..io.raster import replace_data

        out = replace_data(secondary, secondary.data, crs=primary.crs, transform=primary.transform)
        out.meta["aligned_to"] = p
        out.meta["alignment"] = "assumed co-registered: same size, georeferencing missing on one or both"
        return out
    if not primary.georeferenced and not secondary.georeferenced and allow_resize:
        from ..io.resample import resize

        out = resize(secondary, (primary.height, primary.width), resampling=resampling)
        out.meta["aligned_to"] = p
        out.meta["alignment"] = "resized without georeferencing (allow_resize=True)"
        return out
    which = (f"{p} is {'' if primary.georeferenced else 'not '}georeferenced and "
             f"{s} is {'' if secondary.georeferenced else 'not '}georeferenced")
    raise AlignmentError(
        f"cannot align {s} ({secondary.height}x{secondary.width}) to {p} ({primary.height}x{primary.width}): "
        f"{which}, and their sizes differ"
        + ("; pass allow_resize=True to stretch one onto the other" if not (primary.georeferenced or secondary.georeferenced) else "")
    )


def load_pair(primary: "Sensor", primary_source: "Source", secondary: "Sensor",
              secondary_source: "Source", **align_kwargs) -> "tuple[SensorImage, SensorImage]":
    """Read both, put the secondary on the primary's grid, prepare both: two SensorImages.

    SAR is the primary in EarthMind's paired mode (it is also the image SAM2 segments).
    """
    a = primary.read(primary_source)
    b = secondary.read(secondary_source)
    b = align_pair(a, b, **align_kwargs)
    return primary.prepare(a), secondary.prepare(b)

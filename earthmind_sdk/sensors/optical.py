"""The built-in optical sensor: PNG, JPEG, GeoTIFF/COG, 8- or 16-bit, 1 to 4 bands.

1 band is grey (replicated to three channels), 2 bands grey + alpha, 3 bands RGB, 4 bands
RGB + alpha (when the fourth is the alpha band) or RGB + an extra band that is ignored (e.g.
RGBN). Bands named (or colour-interpreted) red, green and blue are used in that order
wherever they are; otherwise the first three are taken as R, G, B. ``rgb=("B4", "B3", "B2")`` picks the three bands by name from any raster.
Scaling (``stretch``): ``"auto"`` divides 8-bit data by 255, keeps float data already in
[0, 1], and gives everything else a per-band 2-98 percentile stretch over the valid pixels.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..contracts import Band, Raster, SensorImage
from ..errors import RasterError
from .base import Sensor
from .scaling import as_float, band_index, linear_scale, percentile_stretch, require_valid, valid_mask

STRETCHES = ("auto", "percentile", "dtype", "none")


class OpticalSensor(Sensor):
    """RGB (or grey) imagery, as the EarthMind encoder was trained on."""

    name = "optical"
    family = "optical"
    bands = (
        Band("red", wavelength_nm=None, description="red channel of an RGB image"),
        Band("green", description="green channel of an RGB image"),
        Band("blue", description="blue channel of an RGB image"),
    )

    def __init__(self, rgb: Optional[Sequence[str]] = None, stretch: str = "auto",
                 percentiles: Sequence[float] = (2.0, 98.0), band_names: Optional[Sequence[str]] = None):
        super().__init__(band_names=band_names)
        if stretch not in STRETCHES:
            raise RasterError(f"optical: unknown stretch {stretch!r}; choose one of {', '.join(STRETCHES)}")
        if rgb is not None and len(rgb) not in (1, 3):
            raise RasterError(f"optical: rgb must name 1 or 3 bands, got {list(rgb)}")
        lo, hi = (float(p) for p in percentiles)
        if not 0 <= lo < hi <= 100:
            raise RasterError(f"optical: percentiles must satisfy 0 <= low < high <= 100, got {percentiles}")
        self.rgb = tuple(rgb) if rgb is not None else None
        self.stretch = stretch
        self.percentiles = (lo, hi)

    def validate(self, raster: Raster) -> Raster:
        raster = super().validate(raster)
        n = raster.data.shape[0]
        if self.rgb is not None:
            band_index(raster, self.rgb, self.name)
        elif n > 4:
            raise RasterError(
                f"{raster.source or 'array'}: the optical sensor takes 1 to 4 bands, this raster has {n} "
                f"({', '.join(raster.band_names)}); pick three with rgb=(...) or use a multispectral sensor"
            )
        elif n == 2 and not _is_alpha(raster, 1):
            raise RasterError(
                f"{raster.source or 'array'}: 2 bands ({', '.join(raster.band_names)}) are read as grey + alpha, "
                f"but band 2 is not an alpha band; pick bands with rgb=(...)"
            )
        return raster

    def prepare(self, raster: Raster) -> SensorImage:
        raster = self.validate(raster)
        data = raster.data
        valid = valid_mask(data, raster.nodata)
        n = data.shape[0]
        named = _named_rgb(raster)
        if self.rgb is not None:
            idx = band_index(raster, self.rgb, self.name)
            composite = "+".join(self.rgb)
        elif named is not None and n > 1:
            idx, composite = named, "rgb"
        elif n == 1 or (n == 2 and _is_alpha(raster, 1)):
            idx, composite = [0], "grey"
        else:
            idx, composite = [0, 1, 2], "rgb"
        alpha = next((i for i in range(n) if i not in idx and _is_alpha(raster, i)), None)
        if alpha is not None:
            valid &= data[alpha] != 0
        require_valid(raster, valid, self.name)
        picked = as_float(data[idx])
        scaled = np.stack([self._scale(b, data.dtype, valid) for b in picked])
        if scaled.shape[0] == 1:
            scaled = np.repeat(scaled, 3, axis=0)
        return self._image(raster, scaled[None], valid, composite)

    def _scale(self, band: np.ndarray, dtype: np.dtype, valid: np.ndarray) -> np.ndarray:
        mode = self.stretch
        if mode == "auto":
            if dtype == np.uint8 or dtype == bool:
                mode = "dtype"
            elif dtype.kind == "f" and valid.any() and band[valid].min() >= 0 and band[valid].max() <= 1:
                mode = "none"
            else:
                mode = "percentile"
        if mode == "percentile":
            return percentile_stretch(band, valid, *self.percentiles)
        if mode == "dtype":
            if dtype == bool:
                return linear_scale(band, 0, 1)
            if dtype.kind in "iu":
                info = np.iinfo(dtype)
                return linear_scale(band, max(info.min, 0), info.max)
            return linear_scale(band, 0.0, 1.0)
        return linear_scale(band, 0.0, 1.0)  # "none": values already in [0, 1]


def _named_rgb(raster: Raster) -> Optional[list[int]]:
    """Indices of bands named (or colour-interpreted) red, green, blue, in that order."""
    lower = [n.lower() for n in raster.band_names]
    ci = raster.meta.get("colorinterp") or []
    out = []
    for colour in ("red", "green", "blue"):
        if colour in lower:
            out.append(lower.index(colour))
        elif colour in ci:
            out.append(ci.index(colour))
        else:
            return None
    return out


def _is_alpha(raster: Raster, i: int) -> bool:
    names = raster.band_names
    if i < len(names) and names[i].lower() == "alpha":
        return True
    ci = raster.meta.get("colorinterp") or []
    return i < len(ci) and ci[i] == "alpha"

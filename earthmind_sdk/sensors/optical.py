"""The built-in optical sensor: PNG, JPEG, GeoTIFF/COG, 8- or 16-bit, 1 to 4 bands.

1 band is grey (replicated to three channels), 2 bands grey + alpha, 3 bands RGB, 4 bands
RGB + alpha (when the fourth is the alpha band) or RGB + an extra band that is ignored (e.g.
RGBN, said in a one-line warning). Bands named red/green/blue, colour-interpreted, or named
by a mission convention (Sentinel-2 ``B02``..``B04``, Landsat ``B2``..``B4``, ``SR_B4``, TM
``B1``..``B3``: :mod:`.bandnames`) give true colour from any number of bands (see
:mod:`.optical_bands`); ``rgb=("B4", "B3", "B2")`` picks the three bands by name.
Scaling (``stretch``): ``"auto"`` divides 8-bit data by 255, keeps float data already in
[0, 1], and gives everything else a per-band 2-98 percentile stretch over the valid pixels.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..contracts import Band, Raster, SensorImage
from ..errors import RasterError
from .base import Sensor
from .optical_bands import check_layout, is_alpha, select_bands
from .scaling import as_float, linear_scale, percentile_stretch, require_valid, valid_mask

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
        check_layout(raster, self.rgb, self.name)
        return raster

    def prepare(self, raster: Raster) -> SensorImage:
        raster = self.validate(raster)
        data = raster.data
        valid = valid_mask(data, raster.nodata)
        n = data.shape[0]
        chosen = select_bands(raster, self.rgb, self.name)
        idx, composite = chosen.indices, chosen.composite
        alpha = next((i for i in range(n) if i not in idx and is_alpha(raster, i)), None)
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

"""SAR sensors: Sentinel-1 GRD (VV/VH or HH/HV, single or dual polarisation) and generic SAR.

Pipeline of :meth:`SARSensor.prepare`: units (declared or detected, see :mod:`.units`) ->
linear power -> optional speckle filter (:mod:`.speckle`) -> dB -> clip to a dB range per
polarisation -> [0, 1] -> the composite -> three channels.

Composites (``composite=``):
  ``grey``        the co-polarised band (VV or HH) in dB, replicated to three channels: what
                  the EarthMind authors fed (an 8-bit grey PNG) but without the 8-bit rounding;
  ``vv_vh_ratio`` R = co-pol dB, G = cross-pol dB, B = co/cross ratio (dB difference) over
                  ``ratio_db``; needs both polarisations (VV+VH or HH+HV).
An 8-bit input (``units="display"``, e.g. the authors' PNGs) is passed through as it is.
Masks: nodata, NaN/inf and non-positive power are invalid; with ``border_noise_db`` set,
pixels darker than it (on the co-pol band) that are connected to the image border are
invalid too (GRD thermal-noise strips at the swath edges).
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from earthmind_sdk.contracts import Band, Raster, SensorImage
from earthmind_sdk.errors import RasterError, name_list
from earthmind_sdk.io.raster import replace_data
from earthmind_sdk.sensors.base import Sensor, is_generic
from earthmind_sdk.sensors.scaling import linear_scale, require_valid, valid_mask

from . import speckle
from .units import UNITS, detect_units, to_db, to_power

COMPOSITES = {
    "grey": "co-pol dB replicated to 3 channels (the authors' grey SAR image)",
    "vv_vh_ratio": "R co-pol dB, G cross-pol dB, B co/cross ratio in dB",
}
CO_POL = ("VV", "HH")
CROSS_POL = ("VH", "HV")
DEFAULT_CLIP_DB = {"VV": (-25.0, 0.0), "HH": (-25.0, 0.0), "VH": (-32.0, -5.0), "HV": (-32.0, -5.0)}
GENERIC_CLIP_DB = (-25.0, 0.0)

ClipSpec = Union[None, Sequence[float], Mapping[str, Sequence[float]]]
_DEFAULT = "default"  # border_noise_db: the sensor's own default (None switches masking off)


class SARSensor(Sensor):
    """Generic single-band SAR (or one band picked with ``band=``); also 8-bit SAR images."""

    name = "sar"
    family = "sar"
    bands = (Band("backscatter", description="one SAR channel (any polarisation, any units)"),)
    default_looks = 1.0
    default_border_noise_db: Optional[float] = None

    def __init__(self, composite: str = "grey", units: str = "auto", speckle_filter: Optional[str] = None,
                 looks: Optional[float] = None, window: int = 7, clip_db: ClipSpec = None,
                 ratio_db: Sequence[float] = (0.0, 15.0), border_noise_db: Union[float, None, str] = _DEFAULT,
                 band: Optional[str] = None, band_names: Optional[Sequence[str]] = None):
        super().__init__(band_names=band_names)
        if composite not in COMPOSITES:
            raise RasterError(f"{self.name}: unknown composite {composite!r}; choose one of "
                              + ", ".join(f"{k} ({v})" for k, v in COMPOSITES.items()))
        if units not in UNITS:
            raise RasterError(f"{self.name}: unknown units {units!r}; choose one of {', '.join(UNITS)}")
        if speckle_filter not in (None, "none", *speckle.FILTERS):
            raise RasterError(f"{self.name}: unknown speckle_filter {speckle_filter!r}; "
                              f"choose one of none, {', '.join(speckle.FILTERS)}")
        self.composite = composite
        self.units = units
        self.speckle_filter = None if speckle_filter in (None, "none") else speckle_filter
        self.looks = float(looks) if looks is not None else self.default_looks
        if self.looks <= 0:
            raise RasterError(f"{self.name}: looks must be > 0, got {looks}")
        if window < 3 or window % 2 == 0:
            raise RasterError(f"{self.name}: window must be odd and >= 3, got {window}")
        self.window = int(window)
        if isinstance(clip_db, Mapping):
            clip_db = {str(k).upper(): _range(v, f"clip_db[{k!r}]", self.name) for k, v in clip_db.items()}
        elif clip_db is not None:
            clip_db = _range(clip_db, "clip_db", self.name)
        self.clip_db = clip_db
        self.ratio_db = _range(ratio_db, "ratio_db", self.name)
        self.border_noise_db = self.default_border_noise_db if border_noise_db == _DEFAULT else border_noise_db
        if self.border_noise_db is not None and not np.isfinite(float(self.border_noise_db)):
            raise RasterError(f"{self.name}: border_noise_db must be a finite dB value or None")
        self.band_choice = band

    # -- reading ---------------------------------------------------------------------------
    def validate(self, raster: Raster) -> Raster:
        raster = super().validate(raster)
        where = raster.source or "array"
        n = raster.data.shape[0]
        if self.band_choice is not None:
            if self.band_choice not in raster.band_names:
                raise RasterError(f"{where}: no band {self.band_choice!r}; bands are {name_list(raster.band_names)}")
            return raster
        if n == 1 or (n == 3 and raster.data.dtype == np.uint8 and self.units in ("auto", "display")):
            return raster
        raise RasterError(f"{where}: the generic SAR sensor takes one band (or an 8-bit 3-channel SAR image), "
                          f"this raster has {n} ({name_list(raster.band_names)}); pick one with band=... "
                          f"or use the sentinel1 sensor for dual polarisation")

    def _channels(self, raster: Raster) -> list[int]:
        if self.band_choice is not None:
            return [raster.band_names.index(self.band_choice)]
        return list(range(raster.data.shape[0]))

    def _pols(self, raster: Raster, idx: list[int]) -> list[str]:
        return [raster.band_names[i].upper() for i in idx]

    # -- preparing -------------------------------------------------------------------------
    def prepare(self, raster: Raster) -> SensorImage:
        raster = self.validate(raster)
        where = raster.source or "array"
        idx = self._channels(raster)
        data = raster.data[idx]
        valid = valid_mask(data, raster.nodata)
        units = self.units if self.units != "auto" else detect_units(replace_data(raster, data), valid)
        if units == "display":
            return self._display(raster, data, valid)
        power = to_power(data, units)
        with np.errstate(invalid="ignore"):
            valid &= np.isfinite(power).all(axis=0) & (power > 0).all(axis=0)
        require_valid(raster, valid, self.name)
        if self.border_noise_db is not None:  # on the raw values: filtering would smear the strips
            valid &= ~border_noise(to_db(power[0]), valid, self.border_noise_db)
            require_valid(raster, valid, self.name)
        if self.speckle_filter:
            power = np.stack([self._filter(p, valid) for p in power])
        db = to_db(power)
        pols = self._pols(raster, idx)
        if self.composite == "grey":
            grey = linear_scale(db[0], *self._clip(pols[0], where))
            frames = np.stack([grey, grey, grey])
        else:
            co, cross = self._co_cross(pols, where)
            frames = np.stack([
                linear_scale(db[co], *self._clip(pols[co], where)),
                linear_scale(db[cross], *self._clip(pols[cross], where)),
                linear_scale(db[co] - db[cross], *self.ratio_db),
            ])
        kept = replace_data(raster, raster.data)
        kept.meta.update(sar_units=units, speckle_filter=self.speckle_filter or "none", polarisations=pols)
        return self._image(kept, frames[None], valid, self.composite)

    def _display(self, raster: Raster, data: np.ndarray, valid: np.ndarray) -> SensorImage:
        if self.composite != "grey":
            raise RasterError(f"{raster.source or 'array'}: an 8-bit SAR image is already a composite; "
                              f"composite={self.composite!r} needs calibrated polarisation bands")
        require_valid(raster, valid, self.name)
        x = data.astype(np.float64) / 255.0 if data.dtype != bool else data.astype(np.float64)
        frames = np.repeat(x, 3, axis=0) if x.shape[0] == 1 else x[:3]
        kept = replace_data(raster, raster.data)
        kept.meta.update(sar_units="display")
        return self._image(kept, frames[None], valid, "display")

    def _filter(self, p: np.ndarray, valid: np.ndarray) -> np.ndarray:
        filled = np.where(valid, p, np.median(p[valid]))
        return speckle.apply(self.speckle_filter, filled, looks=self.looks, size=self.window)

    def _clip(self, pol: str, where: str) -> tuple[float, float]:
        spec = self.clip_db
        if spec is None:
            return DEFAULT_CLIP_DB.get(pol, GENERIC_CLIP_DB)
        if isinstance(spec, Mapping):
            return spec.get(pol, DEFAULT_CLIP_DB.get(pol, GENERIC_CLIP_DB))
        return spec

    def _co_cross(self, pols: list[str], where: str) -> tuple[int, int]:
        co = next((i for i, p in enumerate(pols) if p in CO_POL), None)
        cross = next((i for i, p in enumerate(pols) if p in CROSS_POL), None)
        if co is None or cross is None:
            raise RasterError(f"{where}: composite {self.composite!r} needs a co-pol (VV/HH) and a cross-pol "
                              f"(VH/HV) band; the raster has {', '.join(pols)}")
        return co, cross


class Sentinel1Sensor(SARSensor):
    """Sentinel-1 GRD: VV and/or VH (or HH/HV), 10 m, nodata 0, border noise masked."""

    name = "sentinel1"
    bands = (
        Band("VV", gsd_m=10.0, description="co-polarised backscatter, vertical transmit / vertical receive"),
        Band("VH", gsd_m=10.0, description="cross-polarised backscatter, vertical transmit / horizontal receive"),
    )
    default_looks = 4.4  # equivalent number of looks, IW GRD high resolution
    default_border_noise_db = -35.0
    POLS = ("VV", "VH", "HH", "HV")

    def read(self, source):
        """Also a ``{"VV": path, "VH": path}`` mapping or a folder holding one file per
        polarisation (``*-vv-*.tif[f]``/``*_VV.tif``, e.g. a SAFE ``measurement`` folder)."""
        import os
        from pathlib import Path

        if isinstance(source, Mapping):
            return self.validate(_stack_pols({str(k).upper(): Path(v) for k, v in source.items()}))
        if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
            return self.validate(_stack_pols(_pol_files(Path(source))))
        return super().read(source)

    def validate(self, raster: Raster) -> Raster:
        raster = Sensor.validate(self, raster)
        where = raster.source or "array"
        n = raster.data.shape[0]
        names = tuple(b.upper() for b in raster.band_names)
        if is_generic(raster.band_names) and self.band_names is None:
            if n == 1:
                names = ("VV",)
            elif n == 2:
                names = ("VV", "VH")
            else:
                raise RasterError(f"{where}: Sentinel-1 takes 1 or 2 polarisation bands, this raster has {n} "
                                  f"unnamed bands; name them with band_names=(...)")
            raster = replace_data(raster, raster.data, band_names=names)
        has_pair = any(all(p in names for p in pair) for pair in (("VV", "VH"), ("HH", "HV")))
        if n > 2 and not has_pair:
            raise RasterError(f"{where}: Sentinel-1 takes 1 or 2 polarisation bands (or a stack holding VV+VH "
                              f"or HH+HV), got {name_list(raster.band_names)}")
        if n <= 2 and any(b not in self.POLS for b in names):
            raise RasterError(f"{where}: Sentinel-1 bands must be polarisations {', '.join(self.POLS)}; "
                              f"got {name_list(raster.band_names)}")
        return replace_data(raster, raster.data, band_names=names) if names != raster.band_names else raster

    def _channels(self, raster: Raster) -> list[int]:
        names = raster.band_names
        if self.band_choice is not None:
            if self.band_choice.upper() not in names:
                raise RasterError(f"{raster.source or 'array'}: no band {self.band_choice!r}; bands are {name_list(names)}")
            return [names.index(self.band_choice.upper())]
        for pair in (("VV", "VH"), ("HH", "HV")):
            if all(p in names for p in pair):
                return [names.index(pair[0]), names.index(pair[1])]
        return [i for i, b in enumerate(names) if b in self.POLS][:1]


def _pol_files(folder) -> dict:
    import re

    found = {}
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() not in (".tif", ".tiff"):
            continue
        m = re.search(r"(?:^|[-_])(vv|vh|hh|hv)(?:[-_.]|$)", p.stem, re.IGNORECASE)
        if m and m.group(1).upper() not in found:
            found[m.group(1).upper()] = p
    if not found:
        raise RasterError(f"{folder}: no per-polarisation files (*-vv-*.tiff, *_VH.tif, ...) found")
    return found


def _stack_pols(files: Mapping[str, Any]) -> Raster:
    from earthmind_sdk.io.raster import read_raster

    order = [p for p in ("VV", "VH", "HH", "HV") if p in files]
    unknown = sorted(set(files) - set(order))
    if unknown:
        raise RasterError(f"unknown polarisation(s) {', '.join(unknown)}; use VV, VH, HH, HV")
    rasters = [read_raster(files[p]) for p in order]
    first = rasters[0]
    for p, r in zip(order, rasters):
        if r.data.shape[0] != 1:
            raise RasterError(f"{r.source}: polarisation {p} file must hold one band, it holds {r.data.shape[0]}")
        if (r.height, r.width, r.crs, r.transform) != (first.height, first.width, first.crs, first.transform):
            raise RasterError(f"{r.source} ({p}) is not on the grid of {first.source} ({order[0]}): "
                              f"{r.height}x{r.width} {r.crs} vs {first.height}x{first.width} {first.crs}")
    data = np.concatenate([r.data for r in rasters])
    meta = dict(first.meta)
    meta["band_files"] = {p: str(files[p]) for p in order}
    return Raster(data=data, band_names=tuple(order), crs=first.crs, transform=first.transform,
                  nodata=first.nodata, source=", ".join(str(files[p]) for p in order), meta=meta)


def border_noise(db: np.ndarray, valid: np.ndarray, threshold_db: float) -> np.ndarray:
    """(H, W) bool: pixels below ``threshold_db`` (or invalid) connected to the image border,
    excluding invalid pixels themselves (those are masked already)."""
    from scipy.ndimage import label

    dark = (db < threshold_db) | ~valid
    labels, n = label(dark)
    if n == 0:
        return np.zeros_like(dark)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    edge = edge[edge > 0]
    return np.isin(labels, edge) & valid


def _range(r: Sequence[float], what: str, sensor: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in r)
    except (TypeError, ValueError):
        raise RasterError(f"{sensor}: {what} must be (low, high), got {r!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise RasterError(f"{sensor}: {what} must be finite with low < high, got {r!r}")
    return lo, hi

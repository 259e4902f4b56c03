"""SAR value units: declared or detected, and conversion to decibels.

Units: ``"power"`` (linear intensity, e.g. calibrated sigma0/gamma0), ``"amplitude"``
(sqrt of power, e.g. Sentinel-1 GRD digital numbers), ``"db"`` (10 log10 power) and
``"display"`` (an 8-bit image already scaled for viewing, like the authors' SAR PNGs).

Detection (``units="auto"``), first rule that applies:
1. a ``UNITS``/``units`` tag in the file (dataset or band), e.g. ``linear_power``, ``dB``;
2. 8-bit data -> ``display``;
3. other integer data -> ``amplitude`` (GRD DN);
4. float data with a negative valid value -> ``db`` (power and amplitude are never negative);
5. other float data -> ``power``.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from earthmind_sdk.contracts import Raster
from earthmind_sdk.errors import RasterError

UNITS = ("auto", "power", "amplitude", "db", "display")

_ALIASES = {
    "power": "power", "linear_power": "power", "linear": "power", "intensity": "power",
    "sigma0": "power", "gamma0": "power", "beta0": "power",
    "amplitude": "amplitude", "linear_amplitude": "amplitude", "dn": "amplitude", "magnitude": "amplitude",
    "db": "db", "decibel": "db", "decibels": "db", "sigma0_db": "db",
    "display": "display", "8bit": "display",
}


def declared_units(raster: Raster) -> Optional[str]:
    """Units a file states in its tags, normalised, or None."""
    candidates = []
    tags = raster.meta.get("tags") or {}
    for key in ("UNITS", "units", "Units"):
        if key in tags:
            candidates.append(tags[key])
    for bt in raster.meta.get("band_tags") or []:
        for key in ("UNITS", "units"):
            if key in bt:
                candidates.append(bt[key])
    candidates += [u for u in (raster.meta.get("units") or []) if u]
    for c in candidates:
        norm = _ALIASES.get(str(c).strip().lower().replace(" ", "_"))
        if norm:
            return norm
    return None


def detect_units(raster: Raster, valid: np.ndarray) -> str:
    """The units of ``raster`` by the rules in the module docstring."""
    declared = declared_units(raster)
    if declared:
        return declared
    dt = raster.data.dtype
    if dt == np.uint8 or dt == bool:
        return "display"
    if dt.kind in "iu":
        return "amplitude"
    values = raster.data[:, valid]
    if values.size and float(values.min()) < 0:
        return "db"
    return "power"


def to_power(data: np.ndarray, units: str) -> np.ndarray:
    """Linear power (float64) from ``units``; non-positive input stays non-positive (invalid)."""
    x = data.astype(np.float64)
    if units == "power":
        return x
    if units == "amplitude":
        with np.errstate(over="ignore", invalid="ignore"):
            return np.where(x > 0, x * x, 0.0)  # overflow -> inf -> marked invalid by the caller
    if units == "db":
        with np.errstate(over="ignore"):
            return np.power(10.0, np.clip(x, -300.0, 300.0) / 10.0)
    raise RasterError(f"cannot convert SAR units {units!r} to power")


def to_db(power: np.ndarray, floor: float = 1e-10) -> np.ndarray:
    """10 log10(power), with power floored at ``floor`` so zeros give a finite value."""
    return 10.0 * np.log10(np.maximum(power, floor))

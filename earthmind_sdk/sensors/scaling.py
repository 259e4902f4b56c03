"""Numeric helpers every sensor shares: validity masks, stretches, frames for the encoder.

All work in float64 on (bands, H, W) numpy arrays and never let NaN or inf through: invalid
pixels are tracked in a (H, W) mask and set to 0 in the frames.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..contracts import Raster
from ..errors import RasterError, name_list


def valid_mask(data: np.ndarray, nodata: Optional[float] = None) -> np.ndarray:
    """(H, W) bool: True where every band is finite and none equals ``nodata``."""
    if data.dtype.kind == "f":
        valid = np.isfinite(data).all(axis=0)
    else:
        valid = np.ones(data.shape[1:], dtype=bool)
    if nodata is not None:
        if np.isnan(nodata):
            pass  # NaN nodata is already excluded by the finiteness check
        else:
            valid &= ~(data == nodata).any(axis=0)
    return valid


def as_float(data: np.ndarray) -> np.ndarray:
    """float64 copy; bool becomes 0/1. Values beyond float64 cannot occur in supported dtypes."""
    return data.astype(np.float64, copy=True)


def percentile_stretch(band: np.ndarray, valid: np.ndarray, lo: float = 2.0, hi: float = 98.0) -> np.ndarray:
    """``band`` mapped so its ``lo``..``hi`` percentiles over valid pixels span [0, 1], clipped."""
    v = band[valid]
    if v.size == 0:
        return np.zeros_like(band, dtype=np.float64)
    p_lo, p_hi = np.percentile(v, [lo, hi])
    return linear_scale(band, p_lo, p_hi)


def linear_scale(band: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``(band - lo) / (hi - lo)`` clipped to [0, 1]; a flat range maps to 0 (or 1 above ``lo``)."""
    span = float(hi) - float(lo)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        if not np.isfinite(span) or span <= 0:
            out = (band > lo).astype(np.float64)
        else:
            out = (band - lo) / span
    return np.clip(np.nan_to_num(out, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)


def require_valid(raster: Raster, valid: np.ndarray, sensor: str) -> None:
    if not valid.any():
        raise RasterError(f"{raster.source or 'array'}: sensor {sensor!r} found no valid pixel "
                          f"(all nodata={raster.nodata!r}, NaN or inf)")


def to_frames(frames: np.ndarray, valid: np.ndarray):
    """float32 torch (F, 3, H, W) in [0, 1] with invalid pixels 0, and the (H, W) bool mask."""
    import torch

    if frames.ndim != 4 or frames.shape[1] != 3:
        raise RasterError(f"internal: frames must be (F, 3, H, W), got {frames.shape}")
    f = np.clip(np.nan_to_num(frames, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    f[:, :, ~valid] = 0.0
    return torch.from_numpy(np.ascontiguousarray(f, dtype=np.float32)), torch.from_numpy(valid.copy())


def band_index(raster: Raster, names: Sequence[str], sensor: str) -> list[int]:
    """Positions of ``names`` in the raster, or an error naming the file and the missing bands."""
    missing = [n for n in names if n not in raster.band_names]
    if missing:
        raise RasterError(
            f"{raster.source or 'array'}: sensor {sensor!r} needs band(s) {name_list(missing)}; "
            f"the raster has {name_list(raster.band_names) or '(unnamed bands)'}"
        )
    return [raster.band_names.index(n) for n in names]

"""The Sensor contract: read a raster with its metadata, prepare encoder-ready frames.

A sensor is a class registered under the ``sensors`` kind; recipes build it with keyword
arguments (``registry("sensors").build("sentinel1", composite="vv_vh_ratio")``). Subclasses
declare ``name``, ``family`` and ``bands`` as data and implement :meth:`Sensor.prepare`;
:meth:`Sensor.read` and :meth:`Sensor.load` come for free. ``prepare`` never returns NaN,
inf or values outside [0, 1]: it either produces a valid :class:`SensorImage` or raises
:class:`~earthmind_sdk.errors.RasterError` saying what and where.
"""
from __future__ import annotations

import os
from typing import Any, ClassVar, Optional, Sequence, Union

import numpy as np

from ..contracts import Band, Raster, SensorImage
from ..errors import RasterError
from .scaling import to_frames

Source = Union[str, "os.PathLike[str]", np.ndarray, Raster]


class Sensor:
    """Base class of every sensor. Subclasses set the class attributes and ``prepare``."""

    name: ClassVar[str] = "sensor"
    family: ClassVar[str] = "optical"        # optical | sar | multispectral: what it stands for
    bands: tuple[Band, ...] = ()
    #: accepted band counts of an unnamed input (array or file without band descriptions)
    band_counts: ClassVar[tuple[int, ...]] = ()

    def __init__(self, band_names: Optional[Sequence[str]] = None, **kwargs: Any):
        if kwargs:
            raise TypeError(f"sensor {self.name!r} got unknown argument(s) {', '.join(sorted(kwargs))}")
        self.band_names = tuple(band_names) if band_names is not None else None

    # -- the contract ---------------------------------------------------------------------
    def read(self, source: Source) -> Raster:
        """A raster from a path, array or Raster, its bands named and checked for this sensor."""
        from ..io.raster import as_raster

        raster = as_raster(source, band_names=self.band_names)
        return self.validate(raster)

    def prepare(self, raster: Raster) -> SensorImage:  # pragma: no cover - abstract
        raise NotImplementedError

    def load(self, source: Source) -> SensorImage:
        """``prepare(read(source))``."""
        return self.prepare(self.read(source))

    # -- helpers for subclasses -----------------------------------------------------------
    def validate(self, raster: Raster) -> Raster:
        """Check shape and band count; name unnamed bands after :attr:`bands` when counts match."""
        where = raster.source or "array"
        if raster.data.ndim != 3 or min(raster.data.shape) < 1:
            raise RasterError(f"{where}: sensor {self.name!r} needs (bands, H, W) data, got {raster.data.shape}")
        if raster.data.dtype.kind not in "biuf":
            raise RasterError(f"{where}: sensor {self.name!r} cannot read pixels of type {raster.data.dtype}")
        return raster

    def band(self, name: str) -> Band:
        for b in self.bands:
            if b.name == name:
                return b
        raise KeyError(f"sensor {self.name!r} has no band {name!r}; it has {', '.join(b.name for b in self.bands)}")

    def _image(self, raster: Raster, frames: np.ndarray, valid: np.ndarray, composite: str) -> SensorImage:
        if frames.shape[-2:] != (raster.height, raster.width):
            raise RasterError(f"internal: frames {frames.shape} do not match raster {raster.shape}")
        t, v = to_frames(frames, valid)
        return SensorImage(frames=t, sensor=self.name, valid=v, raster=raster, composite=composite)

    def describe(self) -> dict[str, Any]:
        """Band metadata as plain data (for ``earthmind plugins`` and docs)."""
        return {
            "name": self.name,
            "family": self.family,
            "bands": [{"name": b.name, "wavelength_nm": b.wavelength_nm, "gsd_m": b.gsd_m,
                       "description": b.description} for b in self.bands],
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def is_placeholder(name: str, i: int) -> bool:
    """True for the name the reader gives band ``i`` (0-based) of a file that names nothing:
    ``band{i+1}``, or ``gray`` (GDAL's default colour interpretation of a first band)."""
    return name == f"band{i + 1}" or (i == 0 and name == "gray")


def is_generic(names: Sequence[str]) -> bool:
    """True when band names are placeholders (``band1``…, ``gray`` first), i.e. the file did not name them."""
    return all(is_placeholder(n, i) for i, n in enumerate(names))

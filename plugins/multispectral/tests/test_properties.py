"""Multispectral sensors fed hostile rasters, named or not: valid frames or a clear error."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from earthmind_multispectral.bands import LANDSAT_NAMES, S2_NAMES
from earthmind_sdk.plugins import registry
from earthmind_sdk.sensors.testing import check_sensor_on, rasters

CASES = [
    ("sentinel2", {"grouping": "v1"}, S2_NAMES),
    ("sentinel2", {"grouping": "v2", "processing_baseline": "04.00"}, S2_NAMES),
    ("sentinel2", {"grouping": "rgbn"}, ("B02", "B03", "B04", "B08")),
    ("landsat8", {"grouping": "v2"}, LANDSAT_NAMES),
    ("landsat9", {}, None),
    ("sentinel2", {"missing": "skip"}, None),
]


@pytest.mark.parametrize("name, kwargs, names", CASES)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_multispectral_sensors_survive_hostile_rasters(name, kwargs, names, data):
    raster = data.draw(rasters(band_names=names))
    check_sensor_on(registry("sensors").build(name, **kwargs), raster)

"""SAR sensors, in every configuration, fed hostile rasters: valid frames or a clear error."""
from hypothesis import HealthCheck, given, settings
import pytest

from earthmind_sdk.plugins import registry
from earthmind_sdk.sensors.testing import check_sensor_on, rasters

CONFIGS = [
    ("sentinel1", {}),
    ("sentinel1", {"composite": "vv_vh_ratio", "speckle_filter": "lee"}),
    ("sentinel1", {"speckle_filter": "refined_lee", "units": "amplitude"}),
    ("sar", {"units": "db"}),
]


@pytest.mark.parametrize("name, kwargs", CONFIGS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raster=rasters(max_bands=3))
def test_sar_sensors_survive_hostile_rasters(name, kwargs, raster):
    check_sensor_on(registry("sensors").build(name, **kwargs), raster)


@settings(max_examples=30, deadline=None)
@given(raster=rasters(band_names=("VV", "VH")))
def test_dual_pol_named_rasters(raster):
    check_sensor_on(registry("sensors").build("sentinel1", composite="vv_vh_ratio"), raster)

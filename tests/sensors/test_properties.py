"""Every registered sensor (built-in and installed plugins), fed hostile rasters, returns
valid encoder input or a clear RasterError: never NaN, out-of-range frames or a crash."""
import pytest
from hypothesis import HealthCheck, given, settings

from earthmind_sdk.plugins import registry
from earthmind_sdk.sensors.testing import check_sensor_on, rasters

SENSORS = registry("sensors").names()


@pytest.mark.parametrize("name", SENSORS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raster=rasters())
def test_sensor_survives_hostile_rasters(name, raster):
    sensor = registry("sensors").build(name)
    check_sensor_on(sensor, raster)


def test_the_builtin_optical_sensor_is_registered():
    assert "optical" in SENSORS

"""Built-in components of this package area, registered through the plugin hooks."""
from earthmind_sdk.hookspecs import hookimpl


@hookimpl
def register_sensors(register):
    register("optical", "earthmind_sdk.sensors.optical:OpticalSensor",
             description="RGB/grey PNG, JPEG, GeoTIFF/COG (8/16-bit, 1-4 bands), georeferencing kept")

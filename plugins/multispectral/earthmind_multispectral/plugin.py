"""Entry point of earthmind-multispectral: registers its sensors (lazily, by "module:Class")."""
from earthmind_sdk.hookspecs import hookimpl


@hookimpl
def register_sensors(register):
    register("sentinel2", "earthmind_multispectral.sensors:Sentinel2Sensor",
             description="Sentinel-2 L1C/L2A, 13 bands to the 10 m grid; groupings v1, v2, truecolor, rgbn")
    register("landsat8", "earthmind_multispectral.sensors:LandsatOLISensor",
             description="Landsat 8 OLI/TIRS, Collection 2 L1/L2 scaling; groupings truecolor, v2")
    register("landsat9", "earthmind_multispectral.sensors:Landsat9Sensor",
             description="Landsat 9 OLI-2/TIRS-2, as landsat8")

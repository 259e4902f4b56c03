"""Entry point of earthmind-sar: registers its sensors (lazily, by "module:Class")."""
from earthmind_sdk.hookspecs import hookimpl


@hookimpl
def register_sensors(register):
    register("sentinel1", "earthmind_sar.sensors:Sentinel1Sensor",
             description="Sentinel-1 GRD VV/VH (or HH/HV): power, amplitude or dB; Lee/refined Lee; grey or vv_vh_ratio")
    register("sar", "earthmind_sar.sensors:SARSensor",
             description="generic single-band SAR (power, amplitude, dB) or an 8-bit SAR image")

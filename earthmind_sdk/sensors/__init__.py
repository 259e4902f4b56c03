"""Sensors: the Sensor contract, the built-in optical sensor, pair alignment.

Kept import-light (no torch, no GDAL) because ``earthmind plugins`` imports
``earthmind_sdk.sensors.plugin`` through this package; import the submodules directly:
``from earthmind_sdk.sensors.base import Sensor``, ``from earthmind_sdk.sensors.pairs import align_pair``.
"""

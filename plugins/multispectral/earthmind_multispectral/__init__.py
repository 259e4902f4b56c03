"""earthmind-multispectral: Sentinel-2 and Landsat 8/9 sensors for earthmind-sdk.

Registered through the ``earthmind`` entry-point group (see ``plugin.py``).
"""
__version__ = "0.1.0"

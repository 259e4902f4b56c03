"""earthmind-sar: SAR sensors (Sentinel-1 GRD, generic SAR) for earthmind-sdk.

Registered through the ``earthmind`` entry-point group (see ``plugin.py``); importing this
package imports nothing heavy.
"""
__version__ = "0.1.0"

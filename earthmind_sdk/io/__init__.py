"""Raster input and output: reading with georeferencing, resampling, masks and overlays."""
from .masks import overlay_rgb, render_rgb, write_mask, write_masks
from .raster import as_raster, read_raster, replace_data, write_raster
from .resample import footprint, reproject_to, resample_like, resize

__all__ = [
    "as_raster",
    "footprint",
    "overlay_rgb",
    "read_raster",
    "render_rgb",
    "replace_data",
    "reproject_to",
    "resample_like",
    "resize",
    "write_mask",
    "write_masks",
    "write_raster",
]

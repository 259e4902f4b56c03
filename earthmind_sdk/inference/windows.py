"""A scene read window by window at native resolution, for mapping rasters of any size.

Why windows: a Sentinel-2 tile is 10,980 x 10,980 pixels; squeezing it into a dozen model
tiles throws away most of its resolution, and reading it whole does not fit in memory for
large scenes. :class:`WindowPlan` lays overlapping windows over the output grid (every
window has the same size, the last ones snapped to the scene edge), :class:`SceneReader`
reads one window at a time from the output-grid raster and, for a pair, reads the other
sensor through a warped VRT onto the same grid (GDAL reprojects only that window), and
:func:`blend_weights` gives each window's pixels weights that fall towards its borders, so
probabilities from overlapping windows are averaged smoothly across seams.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ..contracts import Raster
from ..errors import AlignmentError, RasterError


@dataclass(frozen=True)
class Window:
    """One window of the output grid: its number in the plan and its pixel offsets and size."""

    index: int
    row_off: int
    col_off: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.row_off, self.row_off + self.height), slice(self.col_off, self.col_off + self.width)

    def rasterio(self):
        from rasterio.windows import Window as RioWindow

        return RioWindow(self.col_off, self.row_off, self.width, self.height)


def _offsets(length: int, size: int, stride: int) -> list[int]:
    if length <= size:
        return [0]
    offs = list(range(0, length - size, stride))
    offs.append(length - size)  # snapped to the edge: every window has the full size
    return offs


@dataclass(frozen=True)
class WindowPlan:
    """Overlapping ``size`` x ``size`` windows covering a ``height`` x ``width`` grid, row-major.

    ``overlap`` pixels are shared by neighbouring windows (stride ``size - overlap``); a
    scene smaller than ``size`` is one window of the scene's size.
    """

    height: int
    width: int
    size: int
    overlap: int

    def __post_init__(self):
        if self.size < 1:
            raise RasterError(f"window size must be at least 1 pixel, got {self.size}")
        if not 0 <= self.overlap < self.size:
            raise RasterError(f"window overlap must be in 0..{self.size - 1} for windows of {self.size} px, "
                              f"got {self.overlap}")

    @property
    def row_offsets(self) -> list[int]:
        return _offsets(self.height, self.size, self.size - self.overlap)

    @property
    def col_offsets(self) -> list[int]:
        return _offsets(self.width, self.size, self.size - self.overlap)

    def __len__(self) -> int:
        return len(self.row_offsets) * len(self.col_offsets)

    def __iter__(self) -> Iterator[Window]:
        h, w = min(self.size, self.height), min(self.size, self.width)
        cols = self.col_offsets
        for r, row in enumerate(self.row_offsets):
            for c, col in enumerate(cols):
                yield Window(r * len(cols) + c, row, col, h, w)

    def touching(self, row0: int, row1: int, col0: int, col1: int) -> list[Window]:
        """The windows that overlap the pixel block rows [row0, row1) x cols [col0, col1)."""
        h, w = min(self.size, self.height), min(self.size, self.width)
        rows, cols = np.asarray(self.row_offsets), np.asarray(self.col_offsets)
        rs = np.nonzero((rows < row1) & (rows + h > row0))[0]
        cs = np.nonzero((cols < col1) & (cols + w > col0))[0]
        return [Window(int(r) * len(cols) + int(c), int(rows[r]), int(cols[c]), h, w) for r in rs for c in cs]


def blend_weights(height: int, width: int, overlap: int) -> np.ndarray:
    """(height, width) float32 weights, 1 inside, falling linearly over the ``overlap`` pixels
    next to each border (never to 0, so a pixel seen by one window keeps its value)."""
    def ramp(n: int) -> np.ndarray:
        d = np.minimum(np.arange(n), np.arange(n)[::-1]).astype(np.float32)
        return np.minimum(1.0, (d + 1.0) / (overlap + 1.0)) if overlap > 0 else np.ones(n, np.float32)

    return np.outer(ramp(height), ramp(width)).astype(np.float32)


@dataclass
class SceneWindow:
    """What a predictor gets for one window: the window and, per sensor, its pixels as a
    :class:`~earthmind_sdk.contracts.Raster` on the window's part of the output grid."""

    window: Window
    images: dict[str, Raster] = field(default_factory=dict)


class SceneReader:
    """Reads the windows of a scene (one raster, or a pair) on the grid of ``primary``.

    ``images`` maps sensor name -> path; ``primary`` names the sensor whose raster is the
    output grid (the others are warped onto it, window by window). Use as a context manager.
    """

    def __init__(self, images: dict[str, str], primary: str, *, resampling: str = "bilinear",
                 min_overlap: float = 0.5):
        if primary not in images:
            raise RasterError(f"the output-grid sensor {primary!r} has no image; given: {', '.join(images)}")
        self.paths = {k: str(v) for k, v in images.items()}
        self.primary = primary
        self.resampling = resampling
        self.min_overlap = min_overlap
        self._open: dict[str, object] = {}

    def __enter__(self) -> "SceneReader":
        import rasterio
        from rasterio.vrt import WarpedVRT

        from ..io.resample import _resampling

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                for name, path in self.paths.items():
                    if not Path(path).exists():
                        raise RasterError(f"{path}: no such file")
                    self._open[name] = rasterio.open(path)
        except rasterio.errors.RasterioIOError as exc:
            self.close()
            raise RasterError(f"cannot be read as a raster ({exc})") from exc
        src = self._open[self.primary]
        self.height, self.width = src.height, src.width
        self.georeferenced = src.crs is not None and not src.transform.is_identity
        self.crs = src.crs.to_string() if self.georeferenced else None
        self.transform = tuple(src.transform)[:6] if self.georeferenced else None
        self._warped: dict[str, object] = {}
        for name, other in self._open.items():
            if name == self.primary:
                continue
            try:
                self._check_pair(src, other)
                if self._same_grid(src, other):
                    continue
                self._warped[name] = WarpedVRT(
                    other, crs=src.crs, transform=src.transform, width=src.width, height=src.height,
                    resampling=_resampling(self.resampling), src_nodata=other.nodata, nodata=np.nan,
                    dtype="float32")
            except BaseException:
                self.close()
                raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for ds in [*getattr(self, "_warped", {}).values(), *self._open.values()]:
            ds.close()
        self._open, self._warped = {}, {}

    # -- grid checks ---------------------------------------------------------------------------
    @staticmethod
    def _same_grid(a, b) -> bool:
        return (a.height, a.width) == (b.height, b.width) and a.crs == b.crs and \
            np.allclose(tuple(a.transform)[:6], tuple(b.transform)[:6], rtol=0, atol=1e-9)

    def _check_pair(self, a, b) -> None:
        """Refuse pairs :func:`~earthmind_sdk.sensors.pairs.align_pair` would refuse, before any
        window is read (footprints compared without reading pixels)."""
        from ..sensors.pairs import overlap_fraction

        def shell(ds) -> Raster:  # a Raster of the right size that holds no pixels
            georef = ds.crs is not None and not ds.transform.is_identity
            return Raster(data=np.broadcast_to(np.zeros((1, 1, 1), np.uint8), (1, ds.height, ds.width)),
                          crs=ds.crs.to_string() if georef else None,
                          transform=tuple(ds.transform)[:6] if georef else None, source=ds.name)

        pa, pb = shell(a), shell(b)
        if pa.georeferenced and pb.georeferenced:
            frac = overlap_fraction(pa, pb)
            if frac < self.min_overlap:
                raise AlignmentError(f"{b.name} covers {frac:.0%} of {a.name} (at least {self.min_overlap:.0%} "
                                     f"needed); crop both to the shared area or lower the threshold "
                                     f"(--min-overlap on the command line)")
        elif (a.height, a.width) != (b.height, b.width):
            raise AlignmentError(f"cannot align {b.name} ({b.height}x{b.width}) to {a.name} ({a.height}x{a.width}): "
                                 "one or both lack georeferencing and their sizes differ")

    # -- reading -------------------------------------------------------------------------------
    def plan(self, size: int, overlap: int) -> WindowPlan:
        return WindowPlan(self.height, self.width, size, overlap)

    def window_transform(self, window: Window) -> Optional[tuple[float, ...]]:
        if self.transform is None:
            return None
        from rasterio import Affine

        t = Affine(*self.transform) @ Affine.translation(window.col_off, window.row_off)
        return tuple(t)[:6]

    def is_empty(self, window: Window) -> bool:
        """True when every pixel of the window is nodata (or NaN) in the output-grid raster."""
        src = self._open[self.primary]
        masks = src.read_masks(window=window.rasterio())
        if not masks.any():
            return True
        if src.dtypes[0].startswith("float"):
            data = src.read(window=window.rasterio())
            return bool(np.isnan(data).all())
        return False

    def read(self, window: Window) -> SceneWindow:
        """Every sensor's pixels for ``window``, on the output grid."""
        from ..io.raster import read_window

        out = SceneWindow(window)
        for name, ds in self._open.items():
            if name in self._warped:
                raster = read_window(self._warped[name], window.rasterio(), source=ds.name)
                raster.meta["resampled_from"] = {"crs": ds.crs.to_string() if ds.crs else None,
                                                 "transform": tuple(ds.transform)[:6],
                                                 "shape": (ds.height, ds.width), "resampling": self.resampling}
                raster.meta["dtype"] = ds.dtypes[0]
            else:
                raster = read_window(ds, window.rasterio(), source=ds.name)
                if name != self.primary and self.transform is not None:  # same grid, or assumed co-registered
                    raster.crs, raster.transform = self.crs, self.window_transform(window)
            out.images[name] = raster
        return out

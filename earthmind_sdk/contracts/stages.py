"""The typed hand-offs between pipeline stages (see the architecture section of the README).

sensor rasters -> :class:`SensorImage` (frames in [0, 1]) -> encoder tokens ->
:class:`TokenSet` per sensor -> fusion -> :class:`FusionOutput` -> language model.
Kept free of heavy imports at module level so sensors can be listed without torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch


@dataclass
class Band:
    """One band of a sensor, as data (TorchGeo-style band metadata)."""

    name: str
    wavelength_nm: Optional[float] = None  # centre wavelength; None for SAR polarisations
    gsd_m: Optional[float] = None          # native ground sampling distance
    scale: float = 1.0                     # physical = stored * scale + offset
    offset: float = 0.0
    description: str = ""


@dataclass
class Raster:
    """A band-stack with its georeferencing, as read from a file or given as an array.

    ``data`` is (bands, height, width). ``transform`` is the 6-term affine in rasterio
    order (a, b, c, d, e, f); ``crs`` is a string rasterio understands (EPSG code or WKT).
    """

    data: "np.ndarray"
    band_names: tuple[str, ...] = ()
    crs: Optional[str] = None
    transform: Optional[tuple[float, float, float, float, float, float]] = None
    nodata: Optional[float] = None
    source: Optional[str] = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.data.shape)  # type: ignore[return-value]

    @property
    def height(self) -> int:
        return int(self.data.shape[-2])

    @property
    def width(self) -> int:
        return int(self.data.shape[-1])

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None and self.transform is not None


@dataclass
class SensorImage:
    """What a sensor hands the encoder: 3-channel frames in [0, 1] plus what to keep.

    ``frames`` is a float32 tensor (F, 3, H, W): one frame for optical/SAR, several for
    multispectral band groups. ``valid`` is (H, W) bool (False at nodata / border noise).
    ``raster`` is the source, kept so masks can be written back with its georeferencing.
    """

    frames: "torch.Tensor"
    sensor: str
    valid: Optional["torch.Tensor"] = None
    raster: Optional[Raster] = None
    composite: str = ""


@dataclass
class TokenSet:
    """Vision tokens of one sensor: (batch, tokens, dim), their grid, and their origin."""

    tokens: "torch.Tensor"
    sensor: str
    grid: Optional[tuple[int, int]] = None  # (rows, cols) of one tile's token grid
    mask: Optional["torch.Tensor"] = None   # (batch, tokens) bool, False where padding


@dataclass
class FusionOutput:
    """Fused tokens and how much each sensor contributed to each of them.

    ``tokens``: (batch, M, dim) for the language model. ``weights``: (batch, M), the weight
    behind each output token (used for pruning). ``sensor_weights``: sensor -> (batch, N)
    per-input-token weights, for users who ask which sensor the model leaned on.
    ``source_index``: (batch, M) long, position of each output token in the unpruned
    fused sequence of ``unpruned_length`` tokens (None, or the identity, when nothing was pruned): what
    region prompts and the SAP target, laid out on the unpruned sequence, are gathered at.
    """

    tokens: "torch.Tensor"
    weights: "torch.Tensor"
    sensor_weights: dict[str, "torch.Tensor"] = field(default_factory=dict)
    source_index: Optional["torch.Tensor"] = None
    unpruned_length: Optional[int] = None

    @property
    def full_length(self) -> int:
        """Tokens of the fused sequence before any pruning."""
        return int(self.tokens.shape[1]) if self.unpruned_length is None else int(self.unpruned_length)

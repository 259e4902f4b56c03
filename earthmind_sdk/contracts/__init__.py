"""The core contracts every layer shares (see the architecture section of the README).

- :mod:`.stages`: the typed hand-offs between pipeline stages: :class:`Band`, :class:`Raster`,
  :class:`SensorImage`, :class:`TokenSet`, :class:`FusionOutput`.
- :mod:`.sample`: a request and its answer: :class:`Sample`, :class:`Result`, and
  :class:`Record` (a sample with its target, for training and evaluation).

Plain dataclasses with no heavy imports at module level, so sensors can be listed without torch.
"""
from .sample import Record, Result, Sample
from .stages import Band, FusionOutput, Raster, SensorImage, TokenSet

__all__ = ["Band", "Raster", "SensorImage", "TokenSet", "FusionOutput", "Sample", "Result", "Record"]

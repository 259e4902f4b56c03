"""What one request holds (:class:`Sample`), what comes back for it (:class:`Result`), and a
sample with its target (:class:`Record`): shared by inference, evaluation and training."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


@dataclass
class Sample:
    """One question about one scene.

    ``images`` maps a sensor name (as the model spec lists it, e.g. ``optical``, ``sar``) to a
    path, a (bands, H, W) array, a :class:`~earthmind_sdk.contracts.Raster` or a prepared
    :class:`~earthmind_sdk.contracts.SensorImage`. ``task`` names a registered task (its
    prompt builder and answer parser); ``task_args`` carries its fields (labels, options).
    ``regions`` are (H, W) masks or (x0, y0, x1, y1) boxes in input pixels, for ``<vp>`` prompts.
    ``history`` is a list of earlier (question, answer) turns. ``sensors`` picks, per input, a
    sensor other than the input's default and its options: ``{"sar": "sentinel1"}`` or
    ``{"sar": {"name": "sentinel1", "args": {"composite": "vv_vh_ratio"}}}``
    (:mod:`earthmind_sdk.sensors.choice`).
    """

    images: dict[str, Any]
    prompt: str
    task: Optional[str] = None
    task_args: dict[str, Any] = field(default_factory=dict)
    regions: list[Any] = field(default_factory=list)
    history: list[tuple[str, str]] = field(default_factory=list)
    id: Optional[str] = None
    sensors: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    """Per sample: the answer text, its parsed value, one mask per ``[SEG]``, fusion weights."""

    answer: str
    parsed: Any
    masks: list[Any] = field(default_factory=list)          # numpy bool arrays (H, W), input size
    mask_scores: list[float] = field(default_factory=list)  # mean sigmoid inside each mask
    mask_probs: list[Any] = field(default_factory=list)     # float32 (H, W) sigmoid behind each mask
    fusion_weights: dict[str, Any] = field(default_factory=dict)  # sensor -> (N,) numpy
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage (batch-shared)
    prompt: str = ""
    id: Optional[str] = None
    history: list[tuple[str, str]] = field(default_factory=list)
    rasters: dict[str, Any] = field(default_factory=dict)  # sensor -> source Raster (georeferencing)
    composites: dict[str, str] = field(default_factory=dict)  # input -> bands/composite its sensor used

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "answer": self.answer,
            "parsed": self.parsed.to_json() if hasattr(self.parsed, "to_json") else self.parsed,
            "n_masks": len(self.masks),
            "mask_scores": self.mask_scores,
            "fusion_weights": {k: [float(x) for x in v] for k, v in self.fusion_weights.items()},
            "timings": self.timings,
            "composites": dict(self.composites),
        }


@dataclass
class Record:
    """A sample with its target: the answer and, for segmentation, one (H, W) bool mask per
    ``[SEG]`` in it. Training data and benchmarks both yield records. ``focus``, for a closed
    question, is where its answer lies (the objects it asks about), when the data knows it: a
    training target for where the answer looks (``train.sap_focus``). ``needs`` names the sensors
    the answer cannot be given without (an object under thick cloud needs SAR): sensor dropout
    in training never removes them, since the answer would then be a guess to learn."""

    sample: Sample
    answer: str
    masks: list["np.ndarray"] = field(default_factory=list)  # (H, W) bool, one per [SEG]
    meta: dict = field(default_factory=dict)  # e.g. a benchmark's task type, kept for reports
    focus: "np.ndarray | None" = None  # (H, W) bool
    needs: tuple[str, ...] = ()

"""Visual grounding with boxes (RSVG, VRSBench grounding, DIOR-RSVG), scored by Acc@0.5.

Boxes are read from the formats models of this family print, and returned as
(x0, y0, x1, y1) in [0, 1] of the image size:

* InternVL: ``<box>[[x0, y0, x1, y1]]</box>`` on a 0-1000 grid;
* GeoChat-style: ``{<x0><y0><x1><y1>|<angle>}`` on a 0-100 grid;
* plain ``[x0, y0, x1, y1]``: taken as fractions when all are <= 1, otherwise as pixels of the
  image whose ``width`` and ``height`` are given in the fields (without them: unparsed).

EarthMind itself answers grounding questions with ``[SEG]``; its masks become boxes with
:func:`earthmind_sdk.eval.metrics.mask_to_box`.
"""
from __future__ import annotations

import re
from typing import Any, Optional

from .base import Parsed, Task

_NUM = r"\s*(-?\d+(?:\.\d+)?)\s*"
_INTERNVL = re.compile(r"<box>\s*\[\[" + ",".join([_NUM] * 4) + r"\]\]\s*</box>")
_GEOCHAT = re.compile(r"\{\s*<(\d+)>\s*<(\d+)>\s*<(\d+)>\s*<(\d+)>\s*(?:\|\s*<-?\d+>\s*)?\}")
_PLAIN = re.compile(r"\[" + ",".join([_NUM] * 4) + r"\]")


def parse_boxes(text: Optional[str], width: Optional[float] = None, height: Optional[float] = None) -> Optional[list]:
    t = text or ""
    for pattern, scale in ((_INTERNVL, 1000.0), (_GEOCHAT, 100.0)):
        found = pattern.findall(t)
        if found:
            return [_ordered([float(v) / scale for v in b]) for b in found]
    found = [[float(v) for v in b] for b in _PLAIN.findall(t)]
    if not found:
        return None
    if all(0 <= v <= 1 for b in found for v in b):
        return [_ordered(b) for b in found]
    if not (width and height):
        return None
    return [_ordered([b[0] / width, b[1] / height, b[2] / width, b[3] / height]) for b in found]


def _ordered(b: list[float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (min(max(v, 0.0), 1.0) for v in b)
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


class VisualGrounding(Task):
    """The value is the list of boxes found (fractions of the image), None when there is none."""

    name = "visual_grounding"
    kind = "boxes"
    metrics = ("acc_at_iou",)

    expression_template = "Please provide the bounding box coordinate of the region this sentence describes: {expression}"

    def parse(self, text: str, **fields: Any) -> Parsed:
        return Parsed(parse_boxes(text, fields.get("width"), fields.get("height")), text or "", self.kind)

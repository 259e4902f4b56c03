"""Scene classification against a label list (AID, UCM, NWPU, BigEarthNet-style): value = label."""
from __future__ import annotations

from typing import Any, Sequence

from .answers import parse_label
from .base import Parsed, Task, require


class SceneClassification(Task):
    """The value is the label exactly as given in ``labels`` ("dense_residential" for an answer
    "Dense residential area."); two labels named, or none, is unparsed."""

    name = "scene_classification"
    kind = "label"

    def build_prompt(self, question: str = "", **fields: Any) -> str:
        labels: Sequence[str] = require(fields, "labels", self.name)
        q = (question or "").strip() or "Classify the scene."
        shown = ", ".join(str(lab).replace("_", " ") for lab in labels)
        return f"{q}\nChoose one of: {shown}. Answer with one word or phrase."

    def parse(self, text: str, **fields: Any) -> Parsed:
        labels: Sequence[str] = require(fields, "labels", self.name)
        return Parsed(parse_label(text, labels), text or "", self.kind)

"""Free-text and pixel-level answers: captions, region captions, segmentation, grounded answers."""
from __future__ import annotations

import re
from typing import Any

from ..text.tokenizer import P_END, P_START, SEG
from .base import Parsed, Task, clean


class Captioning(Task):
    name = "captioning"
    metric = "caption"

    def build_prompt(self, question: str, **fields: Any) -> str:
        return question.strip() or "Please describe the image in detail."

    def parse(self, text: str, **fields: Any) -> Parsed:
        return Parsed(clean(text.replace(SEG, "")) or None, text, "text")


class RegionCaptioning(Captioning):
    """Describe a region given as ``<vp>`` tokens (Sample.regions); region1 is the first."""

    name = "region_captioning"

    def build_prompt(self, question: str, **fields: Any) -> str:
        return question.strip() or "Can you provide me with a detailed description of region1?"


class ReferringSegmentation(Task):
    """The value is the number of masks the answer asked for ([SEG] tokens)."""

    name = "referring_segmentation"
    metric = "iou"
    kind = "masks"

    def build_prompt(self, question: str, **fields: Any) -> str:
        expr = fields.get("expression")
        if expr:
            return f"Please segment {expr.strip().rstrip('.')}."
        return question.strip()

    def parse(self, text: str, **fields: Any) -> Parsed:
        n = text.count(SEG)
        return Parsed(n if n else None, text, self.kind)


class GroundedConversation(Task):
    """Answers like "<p>a harbor</p> [SEG] next to <p>two ships</p> [SEG]": phrase per mask."""

    name = "grounded_conversation"
    metric = "iou"
    kind = "grounded"

    def build_prompt(self, question: str, **fields: Any) -> str:
        return question.strip() or ("Please give me a brief description of the image. "
                                    "Please respond with interleaved segmentation masks for the corresponding parts.")

    def parse(self, text: str, **fields: Any) -> Parsed:
        pat = re.escape(P_START) + r"(.*?)" + re.escape(P_END) + r"\s*(" + re.escape(SEG) + r")?"
        phrases = [(m.group(1).strip(), bool(m.group(2))) for m in re.finditer(pat, text)]
        grounded = [p for p, has_seg in phrases if has_seg]
        n_seg = text.count(SEG)
        value = {"caption": clean(text.replace(SEG, "")), "phrases": grounded, "n_masks": n_seg}
        if not phrases and not n_seg:
            value = None
        return Parsed(value, text, self.kind)

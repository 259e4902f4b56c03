"""Image and region captioning: the value is the caption without template tokens."""
from __future__ import annotations

import re
from typing import Any

from .answers import clean
from .base import Parsed, Task

_PREAMBLE = re.compile(r"^(?:(?:sure|certainly|of course|okay|ok)\s*[,.!]+)?[\s,.;:!]*", re.I)


class Captioning(Task):
    name = "captioning"
    metrics = ("bleu4", "rouge_l", "cider")

    def build_prompt(self, question: str = "", **fields: Any) -> str:
        return (question or "").strip() or "Please describe the image in detail."

    def parse(self, text: str, **fields: Any) -> Parsed:
        caption = _PREAMBLE.sub("", clean(text))
        return Parsed(caption or None, text or "", self.kind)


class RegionCaptioning(Captioning):
    """Describe a region given as ``<vp>`` tokens (the sample's ``regions``); ``region`` picks
    which (1-based, as the prompt's "region1, region2 ..." names them)."""

    name = "region_captioning"

    def build_prompt(self, question: str = "", **fields: Any) -> str:
        k = int(fields.get("region", 1))
        return (question or "").strip() or f"Can you provide me with a detailed description of region{k}?"

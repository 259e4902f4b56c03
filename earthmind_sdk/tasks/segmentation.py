"""Pixel-level answers: referring segmentation (one ``[SEG]`` per mask) and grounded
conversation ("<p>a harbor</p> [SEG] with <p>two ships</p> [SEG]": one phrase per mask)."""
from __future__ import annotations

import re
from typing import Any

from ..text.tokens import P_END, P_START, SEG
from .answers import clean
from .base import Parsed, Task

_PHRASE = re.compile(re.escape(P_START) + r"(.*?)" + re.escape(P_END) + r"\s*(" + re.escape(SEG) + r")?", re.S)


class ReferringSegmentation(Task):
    """The value is the number of masks the answer asks for (``[SEG]`` tokens); none -> unparsed."""

    name = "referring_segmentation"
    kind = "masks"
    metrics = ("mask_iou",)

    expression_template = "Please segment {expression}."

    def parse(self, text: str, **fields: Any) -> Parsed:
        n = (text or "").count(SEG)
        return Parsed(n if n else None, text or "", self.kind)


class GroundedConversation(Task):
    """The value is ``{caption, phrases, n_masks}``: ``phrases`` are the ``<p>...</p>`` followed
    by ``[SEG]`` (the k-th phrase belongs to the k-th mask when every ``[SEG]`` follows a
    phrase; ``aligned`` says whether that holds)."""

    name = "grounded_conversation"
    kind = "grounded"
    metrics = ("mask_iou", "bleu4", "rouge_l", "cider")  # masks where the record has them, and the text

    def build_prompt(self, question: str = "", **fields: Any) -> str:
        return (question or "").strip() or ("Please give me a brief description of the image. Please respond "
                                            "with interleaved segmentation masks for the corresponding parts.")

    def parse(self, text: str, **fields: Any) -> Parsed:
        text = text or ""
        found = [(m.group(1).strip(), bool(m.group(2))) for m in _PHRASE.finditer(text)]
        grounded = [p for p, has_seg in found if has_seg]
        n_seg = text.count(SEG)
        if not found and not n_seg:
            return Parsed(None, text, self.kind)
        value = {"caption": clean(text), "phrases": grounded, "n_masks": n_seg, "aligned": len(grounded) == n_seg}
        return Parsed(value, text, self.kind)

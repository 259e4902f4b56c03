"""Prompt layout: image placeholders, region prompts, multi-turn history, the chat template.

The image goes first in the first turn, as in the released code: ``<img>`` + ``<IMG_CONTEXT>``
x n + ``</img>`` + "\\n" + question. Regions (``<vp>``) follow the image:
"There are N part regions in the picture: region1<vp>...</vp>, region2<vp>...</vp>.\\n".
"""
from __future__ import annotations

from typing import Sequence

from .template import get_template
from .tokenizer import IMG_CONTEXT, IMG_END, IMG_START, VP_END, VP_START


def image_placeholder(n_tokens: int) -> str:
    return f"{IMG_START}{IMG_CONTEXT * n_tokens}{IMG_END}"


def region_text(counts: Sequence[int]) -> str:
    if not counts:
        return ""
    parts = [f"region{i + 1}{VP_START}{IMG_CONTEXT * n}{VP_END}" for i, n in enumerate(counts)]
    return f"There are {len(counts)} part regions in the picture: {', '.join(parts)}.\n"


class PromptBuilder:
    def __init__(self, template: str = "phi3_chat", system: str = ""):
        self.template = get_template(template)
        self.system = system

    @property
    def stop_words(self) -> tuple[str, ...]:
        return self.template.stop_words or (self.template.suffix,)

    def build(self, *, question: str, n_image_tokens: int, history: Sequence[tuple[str, str]] = (),
              region_token_counts: Sequence[int] = ()) -> str:
        """The whole prompt up to where the answer starts; the image sits in the first turn."""
        t = self.template
        visual = image_placeholder(n_image_tokens) + "\n" + region_text(region_token_counts)
        text = t.system.format(system=self.system) if self.system and t.system else ""
        turns = list(history) + [(question, None)]
        for i, (q, a) in enumerate(turns):
            text += t.instruction.format(input=(visual + q) if i == 0 else q)
            if a is not None:
                text += a + t.suffix + t.sep
        return text

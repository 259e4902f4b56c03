"""Prompt layout: image placeholders, region prompts, multi-turn history, the chat template.

As in the released ``predict_forward``: the question may hold ``<image>``, which is replaced by
the image tokens (``<img>`` + ``<IMG_CONTEXT>`` x n + ``</img>``, one block per frame, blocks
joined by "\\n") followed by the region prompt when there are regions
("\\nThere are N part regions in the picture: region1<vp>...</vp>, region2<vp>...</vp>.\\n").
EarthMind-Bench writes ``"<image>" + question + "\\n" + options``. A question without
``<image>`` gets the image where the authors' training data put it (their VQA and referring
datasets build the first human turn as ``"<image>\\n" + question`` and strip it): the image
first, a newline, then the stripped question (the image alone for an empty question). Their
demo code (``predict_forward``) instead places no image at all when ``<image>`` is missing.
The image sits in the first turn only; earlier turns are closed with the template's suffix and
separator.
"""
from __future__ import annotations

import numbers
from typing import Sequence, Union

from ..errors import EarthMindError
from .template import Template, get_template
from .tokens import IMAGE_PLACEHOLDER, IMG_CONTEXT, IMG_END, IMG_START, VP_END, VP_START

TokenCounts = Union[int, Sequence[int]]


def image_placeholder(n_tokens: TokenCounts) -> str:
    """``<img>`` + n x ``<IMG_CONTEXT>`` + ``</img>``; a list gives one block per frame/image
    (joined by "\\n"). Paired sensors fused into one token set are one block of their fused count."""
    counts = [n_tokens] if isinstance(n_tokens, numbers.Integral) else list(n_tokens)
    if not counts or any(int(n) < 1 for n in counts):
        raise EarthMindError(f"image placeholder needs at least one token per image, got {n_tokens!r}")
    return "\n".join(f"{IMG_START}{IMG_CONTEXT * int(n)}{IMG_END}" for n in counts)


def region_text(counts: Sequence[int]) -> str:
    """The released region prompt, with one ``<IMG_CONTEXT>`` per token under each region mask."""
    counts = list(counts)
    if not counts:
        return ""
    if any(int(n) < 1 for n in counts):
        empty = [f"region{i + 1}" for i, n in enumerate(counts) if int(n) < 1]
        raise EarthMindError(f"{', '.join(empty)} cover no image token; a region must touch at least one")
    parts = [f"region{i + 1}{VP_START}{IMG_CONTEXT * int(n)}{VP_END}" for i, n in enumerate(counts)]
    return f"\nThere are {len(counts)} part regions in the picture: {', '.join(parts)}.\n"


def with_image(question: str, visual: str) -> str:
    """Put the image (and region) text where ``<image>`` is, or first followed by a newline."""
    n = question.count(IMAGE_PLACEHOLDER)
    if n > 1:
        raise EarthMindError(f"the question holds {n} '<image>' placeholders; one image set takes one: {question[:80]!r}")
    if n == 1:
        return question.replace(IMAGE_PLACEHOLDER, visual)
    question = question.strip()
    return f"{visual}\n{question}" if question else visual


class PromptBuilder:
    def __init__(self, template: Union[str, Template] = "phi3_chat", system: str = ""):
        self.template = template if isinstance(template, Template) else get_template(template)
        self.system = system

    @property
    def stop_words(self) -> tuple[str, ...]:
        return self.template.stop_words or ((self.template.suffix,) if self.template.suffix else ())

    def build(self, *, question: str, n_image_tokens: TokenCounts | None,
              history: Sequence[tuple[str, str]] = (), region_token_counts: Sequence[int] = ()) -> str:
        """The whole prompt up to where the answer starts. ``n_image_tokens`` None or 0 means
        a text-only prompt (any ``<image>`` is dropped)."""
        t = self.template
        text_only = n_image_tokens is None or n_image_tokens == 0
        if text_only and len(region_token_counts):
            raise EarthMindError("region prompts need an image")
        visual = "" if text_only else image_placeholder(n_image_tokens) + region_text(region_token_counts)
        text = t.system.format(system=self.system) if self.system and t.system else ""
        turns = [(str(q), a) for q, a in history] + [(str(question), None)]
        for i, (q, a) in enumerate(turns):
            if i == 0:
                q = q.replace(IMAGE_PLACEHOLDER, "") if text_only else with_image(q, visual)
            else:
                q = q.replace(IMAGE_PLACEHOLDER, "")
            text += t.format_turn(q, round=i + 1)
            if a is not None:
                text += a + t.suffix + t.sep
        return text


def build_prompt(question: str, n_image_tokens: TokenCounts | None, *, template: str = "phi3_chat",
                 history: Sequence[tuple[str, str]] = (), region_token_counts: Sequence[int] = (),
                 system: str = "") -> str:
    """One-call form of :meth:`PromptBuilder.build`."""
    return PromptBuilder(template, system).build(question=question, n_image_tokens=n_image_tokens,
                                                 history=history, region_token_counts=region_token_counts)

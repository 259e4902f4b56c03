"""LLaVA-style conversation JSON: the format of the mixture's VQA, caption and paired parts.

A JSON list (or JSON lines) of::

    {"id": "...", "image": "scene.png",
     "conversations": [{"from": "human", "value": "<image>\\nWhat is ...?"}, {"from": "gpt", "value": "..."},
                       {"from": "human", "value": "And ...?"}, {"from": "gpt", "value": "..."}]}

Turns alternate human / gpt, starting with human. ``<image>`` stays where the first question
puts it (the image tokens replace it there); a question without it gets the image first, as
LLaVA does; ``<image>`` in a later turn is moved to the first question. ``turns="all"`` makes
one record per answer (each with the earlier turns as history, so every answer is trained on);
``"last"`` one record per conversation. Optional ``"masks"``: mask image files (relative to
``image_dir``), one per ``[SEG]`` in the answers, in order.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from ...contracts import Record, Sample
from ...errors import DataError
from ...text.tokens import IMAGE_PLACEHOLDER
from ..data import SEG
from .base import IndexedRecords
from .common import collect_entries, need_dict, read_rows, text_length

HUMAN = ("human", "user")
ASSISTANT = ("gpt", "assistant")


def conversation_turns(where: str, conv: Any) -> list[tuple[str, str]]:
    """Validated (question, answer) pairs with ``<image>`` in the first question only."""
    if not isinstance(conv, list) or len(conv) < 2:
        raise DataError(f"{where}: 'conversations' must be a list of at least one human and one gpt turn")
    if len(conv) % 2:
        raise DataError(f"{where}: 'conversations' has {len(conv)} turns; human and gpt turns must pair up")
    pairs = []
    for k in range(0, len(conv), 2):
        q, a = conv[k], conv[k + 1]
        for j, (turn, allowed) in enumerate(((q, HUMAN), (a, ASSISTANT))):
            if not isinstance(turn, dict) or turn.get("from") not in allowed or not isinstance(turn.get("value"), str):
                raise DataError(f"{where}: turn {k + j} must be {{'from': {allowed[0]!r}, 'value': text}}")
        if IMAGE_PLACEHOLDER in a["value"]:
            raise DataError(f"{where}: turn {k + 1} (an answer) holds '<image>'")
        pairs.append((q["value"], a["value"]))
    n_image = sum(q.count(IMAGE_PLACEHOLDER) for q, _ in pairs)
    if n_image > 1:
        raise DataError(f"{where}: {n_image} '<image>' placeholders; one image set takes one")
    if n_image and IMAGE_PLACEHOLDER not in pairs[0][0]:
        pairs = [(q.replace(IMAGE_PLACEHOLDER, "").strip(), a) for q, a in pairs]
        pairs[0] = (IMAGE_PLACEHOLDER + "\n" + pairs[0][0], pairs[0][1])
    return pairs


def expand(pairs: list[tuple[str, str]], turns: str) -> list[tuple[list[tuple[str, str]], str, str]]:
    """(history, question, answer) per trained answer."""
    picked = range(len(pairs)) if turns == "all" else [len(pairs) - 1]
    return [(pairs[:k], pairs[k][0], pairs[k][1]) for k in picked]


class LlavaConversations(IndexedRecords):
    """Conversations about one image each; ``image`` is relative to ``image_dir``."""

    def __init__(self, annotations: str, image_dir: str, sensor: str = "optical", turns: str = "all",
                 task: str = "vqa", on_error: str = "fail", limit: Optional[int] = None):
        path = Path(annotations)
        self.image_dir = Path(image_dir)
        self.sensor, self.task = sensor, task
        if turns not in ("all", "last"):
            raise DataError(f"{path}: turns must be 'all' or 'last', got {turns!r}")
        self.entries, self.lengths = collect_entries(
            read_rows(path, "conversation"), path, on_error, lambda where, row: self._entries(where, row, turns),
            lambda e: text_length(*(t for qa in e[2] for t in qa), e[3], e[4]), limit, "conversations")

    def images_of(self, where: str, row: dict) -> dict[str, str]:
        name = row.get("image")
        if isinstance(name, list) and len(name) == 1:
            name = name[0]
        if not isinstance(name, str) or not name.strip():
            raise DataError(f"{where}: 'image' must name one image file, found {name!r}")
        path = self.image_dir / name
        if not path.is_file():
            raise DataError(f"{where}: image {path} not found")
        return {self.sensor: str(path)}

    def _entries(self, where: str, row: Any, turns: str):
        row = need_dict(where, row)
        images = self.images_of(where, row)
        pairs = conversation_turns(where, row.get("conversations"))
        masks = row.get("masks", [])
        if not isinstance(masks, list) or not all(isinstance(m, str) for m in masks):
            raise DataError(f"{where}: 'masks' must be a list of mask file names")
        n_seg = [a.count(SEG) for _, a in pairs]
        if sum(n_seg) != len(masks):
            raise DataError(f"{where}: the answers hold {sum(n_seg)} {SEG} but {len(masks)} mask(s) are given")
        for m in masks:
            if not (self.image_dir / m).is_file():
                raise DataError(f"{where}: mask {self.image_dir / m} not found")
        starts = [sum(n_seg[:k]) for k in range(len(pairs))]
        ident = str(row.get("id", where))
        return [(where, images, history, q, a, f"{ident}#t{len(history)}",
                 [str(self.image_dir / m) for m in masks[starts[len(history)]:starts[len(history)] + a.count(SEG)]])
                for history, q, a in expand(pairs, turns)]

    def build(self, entry) -> Record:
        where, images, history, question, answer, rid, masks = entry
        sample = Sample(images=dict(images), prompt=question, task=self.task, history=list(history), id=rid)
        return Record(sample, answer, [read_mask(m, where) for m in masks],
                      meta={"source": where.split(" [")[0].rsplit(":", 1)[0]})


def read_mask(path: str, where: str):
    """A mask image (PNG / TIFF, any non-zero pixel is inside) as (H, W) bool."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as im:
            mask = np.asarray(im)
    except OSError as exc:
        raise DataError(f"{where}: mask {path} cannot be read ({exc})") from None
    return mask.any(-1) if mask.ndim == 3 else mask > 0



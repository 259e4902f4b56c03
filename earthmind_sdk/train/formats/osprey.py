"""Osprey-style region captions: object masks given to the model as ``<vp>`` region prompts.

A JSON list of::

    {"file_name": "scene.png", "height": 512, "width": 512,
     "annotations": [{"segmentation": <COCO polygons or RLE>, ...}, ...],
     "conversations": [{"from": "human", "value": "<image>\\nWhat is <region1> used for?"},
                       {"from": "gpt", "value": "..."}, ...]}

The k-th annotation is ``region<k>``; the prompt lists every region once ("There are N part
regions in the picture: region1<vp>...</vp>, ...") and the questions name them as text
(``<region1>`` and Osprey's ``<mask><pos>`` markers become ``region1`` / nothing).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

from ...contracts import Record, Sample
from ...errors import DataError
from .base import IndexedRecords
from .coco import decode_segmentation
from .common import collect_entries, need_dict, need_str, read_rows, text_length
from .llava import conversation_turns, expand

_REGION = re.compile(r"<region(\d+)>")


def _plain(text: str) -> str:
    return _REGION.sub(r"region\1", text.replace("<mask><pos>", "")).replace("  ", " ")


class OspreyRegions(IndexedRecords):
    def __init__(self, annotations: str, image_dir: str, sensor: str = "optical", turns: str = "all",
                 on_error: str = "fail", limit: Optional[int] = None):
        path = Path(annotations)
        self.image_dir = Path(image_dir)
        self.sensor = sensor
        self.entries, self.lengths = collect_entries(
            read_rows(path, "region caption"), path, on_error, lambda where, row: self._entries(where, row, turns),
            lambda e: text_length(*(t for qa in e[3] for t in qa), e[4], e[5]), limit, "region captions")

    def _entries(self, where: str, row: Any, turns: str):
        row = need_dict(where, row)
        image = self.image_dir / need_str(where, row, "file_name")
        if not image.is_file():
            raise DataError(f"{where}: image {image} not found")
        h, w = row.get("height"), row.get("width")
        if not (isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0):
            raise DataError(f"{where}: 'height' and 'width' must be positive integers")
        anns = row.get("annotations")
        if not isinstance(anns, list) or not anns:
            raise DataError(f"{where}: 'annotations' must list at least one region")
        segs = []
        for k, a in enumerate(anns):
            if not isinstance(a, dict) or not isinstance(a.get("segmentation"), (list, dict)):
                raise DataError(f"{where}: annotation {k} has no segmentation")
            segs.append(a["segmentation"])
        pairs = [(_plain(q), _plain(a)) for q, a in conversation_turns(where, row.get("conversations"))]
        named = {int(n) for q, _ in pairs for n in re.findall(r"region(\d+)", q)}
        if named and max(named) > len(segs):
            raise DataError(f"{where}: a question names region{max(named)} but {len(segs)} region(s) are annotated")
        ident = str(row.get("id", where))
        return [(where, str(image), (segs, h, w), history, q, a, f"{ident}#t{len(history)}")
                for history, q, a in expand(pairs, turns)]

    def build(self, entry) -> Record:
        where, image, (segs, h, w), history, question, answer, rid = entry
        regions = [decode_segmentation(s, h, w, f"{where} region{k + 1}") for k, s in enumerate(segs)]
        sample = Sample(images={self.sensor: image}, prompt=question, task="region_captioning",
                        regions=regions, history=list(history), id=rid)
        return Record(sample, answer, meta={"source": "osprey"})

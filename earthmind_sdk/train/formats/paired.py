"""The authors' paired SAR + optical folders, laid out as their released benchmark is::

    <root>/img/<split>/sar/img/<stem>.png   <root>/img/<split>/rgb/img/<stem>.png

with LLaVA-style conversations (see :mod:`.llava`) whose ``image`` names the pair (any
extension; the stem picks both files). SAR is listed first: in paired mode it is the primary
image and the one SAM2 segments. Optional ``masks`` are relative to ``<root>``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from ...errors import DataError
from .llava import LlavaConversations


class PairedConversations(LlavaConversations):
    def __init__(self, root: str, annotations: str, split: str = "train", sar_sensor: str = "sar",
                 optical_sensor: str = "optical", turns: str = "all", task: str = "vqa",
                 on_error: str = "fail", limit: Optional[int] = None):
        self.root = Path(root)
        self.split, self.sar_sensor, self.optical_sensor = split, sar_sensor, optical_sensor
        path = Path(annotations) if Path(annotations).is_absolute() else self.root / annotations
        super().__init__(str(path), str(self.root), turns=turns, task=task, on_error=on_error, limit=limit)

    def images_of(self, where: str, row: dict) -> dict[str, str]:
        name = row.get("image")
        if not isinstance(name, str) or not name.strip():
            raise DataError(f"{where}: 'image' must name the pair's file, found {name!r}")
        stem = Path(name).stem
        out = {}
        for folder, sensor in (("sar", self.sar_sensor), ("rgb", self.optical_sensor)):
            path = self.root / "img" / self.split / folder / "img" / f"{stem}.png"
            if not path.is_file():
                raise DataError(f"{where}: {folder} image {path} not found")
            out[sensor] = str(path)
        return out

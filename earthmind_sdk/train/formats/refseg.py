"""Referring segmentation as the remote-sensing benchmarks ship it; for training and evaluation.

* **RRSIS-D** (RefCOCO style, as RMSIN distributes it)::

      <root>/rrsisd/refs(unc).p          list of {ref_id, ann_id, image_id, split, sentences: [{raw, sent}]}
      <root>/rrsisd/instances.json       {images: [{id, file_name, height, width}], annotations: [{id, segmentation}]}
      <root>/images/rrsisd/JPEGImages/   the images

  The pickle is read with a restricted unpickler (plain data only, see :mod:`.coco`).
* **RefSegRS** (as its Hugging Face release ships)::

      <root>/images/<id>.tif   <root>/masks/<id>.tif   <root>/output_phrase_<split>.txt  ("<id> <phrase>" per line)

Each expression is one record: ``"Please segment <expression>."`` answered ``"Sure, [SEG]."``
with its mask, so :func:`~earthmind_sdk.eval.records.evaluate_records` scores gIoU and cIoU.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ...contracts import Record, Sample
from ...errors import DataError
from .base import IndexedRecords
from .coco import decode_segmentation, load_plain_pickle
from .common import collect_entries, text_length
from .llava import read_mask

ANSWER = "Sure, [SEG]."
TASK = "referring_segmentation"


def _record(image: str, expression: str, mask: np.ndarray, sensor: str, rid: str, source: str) -> Record:
    sample = Sample(images={sensor: image}, prompt="", task=TASK, task_args={"expression": expression}, id=rid)
    return Record(sample, ANSWER, [mask], meta={"task_type": TASK, "source": source})


class RRSISD(IndexedRecords):
    """RRSIS-D expressions of one ``split`` (train, val, test); ``sentences="first"`` keeps one
    expression per object (as some evaluations do), ``"all"`` every expression."""

    def __init__(self, root: str, split: str = "train", refs: str = "rrsisd/refs(unc).p",
                 instances: str = "rrsisd/instances.json", images: str = "images/rrsisd/JPEGImages",
                 sentences: str = "all", sensor: str = "optical", on_error: str = "fail",
                 limit: Optional[int] = None):
        from ...eval.bench import read_json

        self.root = Path(root)
        self.sensor = sensor
        refs_path, inst_path, self.image_dir = self.root / refs, self.root / instances, self.root / images
        if sentences not in ("all", "first"):
            raise DataError(f"RRSIS-D: sentences must be 'all' or 'first', got {sentences!r}")
        inst = read_json(inst_path, "RRSIS-D instances file")
        if not isinstance(inst, dict) or not isinstance(inst.get("images"), list) \
                or not isinstance(inst.get("annotations"), list):
            raise DataError(f"{inst_path}: expected {{'images': [...], 'annotations': [...]}}")
        images = {im.get("id"): im for im in inst["images"] if isinstance(im, dict)}
        anns = {a.get("id"): a for a in inst["annotations"] if isinstance(a, dict)}
        refs_data = load_plain_pickle(refs_path)
        if not isinstance(refs_data, list):
            raise DataError(f"{refs_path}: expected a list of refs, found {type(refs_data).__name__}")
        rows = ((f"{refs_path} [{i}]", (i, ref)) for i, ref in enumerate(refs_data)
                if not (isinstance(ref, dict) and ref.get("split") != split))
        self.entries, self.lengths = collect_entries(
            rows, refs_path, on_error, lambda where, r: self._entries(where, r[0], r[1], images, anns, sentences),
            lambda e: text_length(e[3]), limit, f"{split!r} expressions")

    def _entries(self, where, i, ref, images, anns, sentences):
        if not isinstance(ref, dict):
            raise DataError(f"{where}: expected a ref object, found {type(ref).__name__}")
        ann = anns.get(ref.get("ann_id"))
        if ann is None:
            raise DataError(f"{where}: ann_id {ref.get('ann_id')!r} is not in the instances file")
        image = images.get(ref.get("image_id", ann.get("image_id")))
        if image is None or not isinstance(image.get("file_name"), str):
            raise DataError(f"{where}: image_id {ref.get('image_id')!r} is not in the instances file")
        h, w = image.get("height"), image.get("width")
        if not (isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0):
            raise DataError(f"{where}: image {image['file_name']} has no positive integer height/width")
        if not isinstance(ann.get("segmentation"), (list, dict)):
            raise DataError(f"{where}: annotation {ann.get('id')!r} has no segmentation")
        path = self.image_dir / image["file_name"]
        if not path.is_file():
            raise DataError(f"{where}: image {path} not found")
        sents = ref.get("sentences")
        if not isinstance(sents, list) or not sents:
            raise DataError(f"{where}: no sentences")
        out = []
        for k, s in enumerate(sents[:1] if sentences == "first" else sents):
            text = s.get("sent") or s.get("raw") if isinstance(s, dict) else None
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{where}: sentence {k} has no 'sent' or 'raw' text")
            out.append((f"{where} sentence {k}", str(path), (ann["segmentation"], h, w), text.strip(),
                        f"ref{ref.get('ref_id', i)}-s{k}"))
        return out

    def build(self, entry) -> Record:
        where, image, (seg, h, w), text, rid = entry
        return _record(image, text, decode_segmentation(seg, h, w, where), self.sensor, rid, "rrsisd")


class RefSegRS(IndexedRecords):
    """RefSegRS phrases of one ``split`` (train, val, test)."""

    def __init__(self, root: str, split: str = "train", images: str = "images", masks: str = "masks",
                 suffix: str = ".tif", sensor: str = "optical", on_error: str = "fail",
                 limit: Optional[int] = None):
        self.root = Path(root)
        self.sensor = sensor
        phrases = self.root / f"output_phrase_{split}.txt"
        if not phrases.is_file():
            raise DataError(f"{phrases}: RefSegRS phrase file not found (splits: train, val, test)")
        rows = ((f"{phrases}:{n}", line)
                for n, line in enumerate(phrases.read_text(encoding="utf-8").splitlines(), 1) if line.strip())
        self.entries, self.lengths = collect_entries(
            rows, phrases, on_error, lambda where, line: [self._entry(where, line, images, masks, suffix)],
            lambda e: text_length(e[3]), limit, "phrases")

    def _entry(self, where, line, images, masks, suffix):
        ident, _, phrase = line.strip().partition(" ")
        if not ident.isdigit() or not phrase.strip():
            raise DataError(f"{where}: expected '<image id> <phrase>', found {line.strip()!r}")
        image, mask = self.root / images / f"{ident}{suffix}", self.root / masks / f"{ident}{suffix}"
        for p in (image, mask):
            if not p.is_file():
                raise DataError(f"{where}: {p} not found")
        return where, str(image), str(mask), phrase.strip(), f"{ident}-{where.rsplit(':', 1)[-1]}"

    def build(self, entry) -> Record:
        where, image, mask_path, text, rid = entry
        return _record(image, text, read_mask(mask_path, where), self.sensor, rid, "refsegrs")

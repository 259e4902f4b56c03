"""Readers for public Earth-observation benchmarks, as evaluation records.

* :class:`VQAFile` - question files of the VRSBench / GeoChat-Bench / RSVQA kind: a JSON list
  or JSON lines of questions (``question``/``text``, ``image_id``/``image``, ``ground_truth``/
  ``answer``, ``type``/``category``, ``question_id``/``id``), answers inline or in an RSVQA
  answers file (``{"answers": [{question_id, answer, active}]}``). The released EarthMind
  evaluation prompt is ``"<image>" + question + "Answer the question using a single word or
  phrase."``; the default ``suffix`` keeps it. Scored per ``type`` by parsed-answer accuracy,
  with ``exact_match`` (lower case, spaces and dots removed, as the released scripts compare).
* :class:`ClassificationFolder` - scene classification folders (AID, UCM, NWPU-RESISC45,
  WHU-RS19): ``<root>/<class name>/<image>``; the label list is the folder names.

Every entry problem is reported with the file and the entry's index or line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Optional

from ..contracts import Record, Sample
from ..errors import EarthMindError
from ..jobs.jsonl import json_rows
from ..text.tokens import IMAGE_PLACEHOLDER
from .bench import read_json

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
VQA_SUFFIX = "Answer the question using a single word or phrase."


def _first(row: dict, keys: tuple[str, ...]) -> Any:
    for k in keys:
        if k in row and row[k] is not None:
            return row[k]
    return None


def _load_rows(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, row) for a JSON list, a JSON object with a list under "questions", or JSON lines."""
    return json_rows(path, "question", list_key="questions")


class VQAFile:
    """Questions of one file (JSON list, ``{"questions": [...]}`` or JSON lines) about images in
    ``image_dir``; answers inline or from an RSVQA-style ``answers`` file. Grouped by ``type``."""

    def __init__(self, questions: str, image_dir: str, answers: Optional[str] = None, sensor: str = "optical",
                 suffix: str = VQA_SUFFIX, task: str = "vqa", limit: Optional[int] = None):
        path = Path(questions)
        self.image_dir = Path(image_dir)
        if not self.image_dir.is_dir():
            raise EarthMindError(f"{self.image_dir}: image folder not found")
        table = self._answers(Path(answers)) if answers else {}
        self.records: list[Record] = []
        for where, row in _load_rows(path):
            if limit is not None and len(self.records) >= limit:
                break
            rec = self._record(where, row, table, sensor, suffix, task)
            if rec is not None:
                self.records.append(rec)

    @staticmethod
    def _answers(path: Path) -> dict[str, str]:
        data = read_json(path, "answers file")
        rows = data.get("answers") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise EarthMindError(f"{path}: expected {{'answers': [...]}} or a list of answers")
        table = {}
        for i, a in enumerate(rows):
            if not isinstance(a, dict) or "question_id" not in a or "answer" not in a:
                raise EarthMindError(f"{path} [{i}]: an answer needs 'question_id' and 'answer'")
            if a.get("active", True):
                table[str(a["question_id"])] = str(a["answer"])
        return table

    def _record(self, where: str, row: Any, table: dict, sensor: str, suffix: str, task: str) -> Optional[Record]:
        if not isinstance(row, dict):
            raise EarthMindError(f"{where}: expected an object, found {type(row).__name__}")
        if row.get("active") is False:
            return None
        question = _first(row, ("question", "text"))
        image = _first(row, ("image_id", "image", "img_id", "file_name"))
        qid = _first(row, ("question_id", "id"))
        if not isinstance(question, str) or not question.strip():
            raise EarthMindError(f"{where}: no question text ('question' or 'text')")
        if image is None:
            raise EarthMindError(f"{where}: no image ('image_id', 'image', 'img_id' or 'file_name')")
        answer = _first(row, ("ground_truth", "answer", "gt"))
        if answer is None and qid is not None:
            answer = table.get(str(qid))
        if answer is None:
            raise EarthMindError(f"{where}: no answer ('ground_truth' / 'answer', or question_id "
                                 f"{qid!r} in the answers file)")
        image_path = self.image_dir / str(image)
        if not image_path.suffix:
            found = [image_path.with_suffix(e) for e in IMAGE_EXTENSIONS if image_path.with_suffix(e).is_file()]
            image_path = found[0] if found else image_path
        if not image_path.is_file():
            raise EarthMindError(f"{where}: image {image_path} not found")
        group = str(_first(row, ("type", "category", "question_type")) or task)
        sample = Sample(images={sensor: str(image_path)}, prompt=IMAGE_PLACEHOLDER + question.strip() + suffix,
                        task=task, id=str(qid) if qid is not None else where)
        return Record(sample, str(answer), meta={"task_type": group, "reference_text": str(answer)})

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)


class ClassificationFolder:
    """``<root>/<class>/<image>``; ``labels`` (default: the sorted folder names) are the choices."""

    def __init__(self, root: str, labels: Optional[list[str]] = None, question: str = "", sensor: str = "optical",
                 limit_per_class: Optional[int] = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise EarthMindError(f"{self.root}: classification folder not found")
        folders = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        if not folders:
            raise EarthMindError(f"{self.root}: no class folders (expected <root>/<class>/<image>)")
        self.labels = list(labels) if labels else folders
        unknown = [f for f in folders if f not in self.labels]
        if unknown:
            raise EarthMindError(f"{self.root}: folder(s) {unknown} are not in the label list {self.labels}")
        q = question or "Classify the scene."
        self.records: list[Record] = []
        for label in folders:
            files = sorted(p for p in (self.root / label).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                raise EarthMindError(f"{self.root / label}: class folder holds no image ({', '.join(IMAGE_EXTENSIONS)})")
            for f in files[:limit_per_class]:
                sample = Sample(images={sensor: str(f)}, prompt=q, task="scene_classification",
                                task_args={"labels": self.labels}, id=f"{label}/{f.name}")
                self.records.append(Record(sample, label, meta={"task_type": "scene classification"}))

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

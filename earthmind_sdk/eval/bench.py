"""EarthMind-Bench: paired SAR + optical questions from the GRSS DFC2023/DFC2025 scenes.

Annotation files are JSON lists of ``{file_name, question, candidate[], answer, task_type}``;
images live under ``<root>/img/test/{rgb,sar}/img/<stem>.png``. Multiple-choice tasks are
scored by exact match of the option letter (M-Avg = mean of per-task accuracies); open-ended
tasks, which the authors scored with GPT-4, by BLEU-4 and ROUGE-L against the reference
answer. ``modality`` picks what the model sees: ``fused`` (both), ``rgb`` or ``sar``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from ..errors import EarthMindError
from ..inference.sample import Sample
from ..train.data import Record

MCQ_TASKS = {"scene classification", "object existence", "hallucination detection", "object counting",
             "spatial relationship"}
OPEN_TASKS = {"image caption", "route planning", "disaster forecasting", "urban assessment"}
LETTERS = "ABCDEFGHIJ"


def _task_key(task_type: str) -> str:
    return " ".join(str(task_type).replace("_", " ").lower().split())


class EarthMindBench:
    """Records of one annotation file; every malformed entry is reported with file and index."""

    def __init__(self, root: str, annotations: str, modality: str = "fused",
                 sensors: tuple[str, str] = ("sar", "optical"), limit: int | None = None):
        self.root = Path(root)
        self.path = Path(annotations) if Path(annotations).is_absolute() else self.root / annotations
        if modality not in ("fused", "rgb", "sar"):
            raise EarthMindError(f"EarthMind-Bench modality {modality!r}: choose fused, rgb or sar")
        self.modality = modality
        self.sar_sensor, self.optical_sensor = sensors
        if not self.path.is_file():
            raise EarthMindError(f"{self.path}: EarthMind-Bench annotation file not found")
        try:
            entries = json.loads(self.path.read_text())
        except json.JSONDecodeError as exc:
            raise EarthMindError(f"{self.path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(entries, list):
            raise EarthMindError(f"{self.path}: expected a JSON list of questions")
        self.records = [self._record(e, i) for i, e in enumerate(entries[:limit])]

    def _record(self, e: dict, i: int) -> Record:
        where = f"{self.path} [{i}]"
        if not isinstance(e, dict):
            raise EarthMindError(f"{where}: expected an object")
        missing = [k for k in ("file_name", "question", "answer", "task_type") if k not in e]
        if missing:
            raise EarthMindError(f"{where}: missing key(s) {missing}")
        stem = Path(e["file_name"]).stem
        images = {}
        for folder, sensor, wanted in (("sar", self.sar_sensor, self.modality in ("fused", "sar")),
                                       ("rgb", self.optical_sensor, self.modality in ("fused", "rgb"))):
            if wanted:
                path = self.root / "img" / "test" / folder / "img" / f"{stem}.png"
                if not path.is_file():
                    raise EarthMindError(f"{where}: image {path} not found")
                images[sensor] = str(path)
        key = _task_key(e["task_type"])
        candidates = list(e.get("candidate") or [])
        meta = {"task_type": key, "file_name": e["file_name"]}
        if key in MCQ_TASKS or candidates:
            if not candidates:
                raise EarthMindError(f"{where}: multiple-choice task {key!r} without 'candidate' options")
            answer = _answer_letter(str(e["answer"]), candidates)
            if answer is None:
                raise EarthMindError(f"{where}: answer {e['answer']!r} is none of the candidates {candidates}")
            sample = Sample(images=images, prompt=str(e["question"]), task="multiple_choice",
                            task_args={"options": candidates}, id=f"{stem}#{i}")
            return Record(sample, answer, meta=meta)
        sample = Sample(images=images, prompt=str(e["question"]), task="captioning", id=f"{stem}#{i}")
        return Record(sample, str(e["answer"]), meta=meta)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)


def _answer_letter(answer: str, candidates: list[str]) -> str | None:
    from ..tasks.closed import split_option

    a = answer.strip()
    letters = [split_option(c)[0] or LETTERS[i] for i, c in enumerate(candidates)]
    head = a.rstrip(".").strip("() ").upper()
    if len(head) == 1 and head in letters:
        return head
    for letter, c in zip(letters, candidates):
        if a.lower() in (c.strip().lower(), split_option(c)[1].lower()):
            return letter
    return None

"""EarthMind-Bench: paired SAR + optical questions from the GRSS DFC2023/DFC2025 scenes.

Annotation files (one per task in the release) are JSON lists of
``{file_name, question, candidate[], answer, task_type}``; ``file_name`` may end in ``.json``
or ``.png``, the images being ``<root>/img/test/{rgb,sar}/img/<stem>.png``.

Prompts are the released ones: ``"<image>" + question`` and, for multiple choice,
``"\\n" + "\\n".join(candidates)`` (candidates verbatim, no added instruction). Multiple-choice
answers are scored on the parsed option letter (accuracy per task, M-Avg = mean of per-task
accuracies); the released evaluator compared raw strings, which ``exact_match`` reports too.
Open-ended tasks (caption, route planning, disaster forecasting, urban assessment), scored by
GPT-4 in the paper, get BLEU-4, ROUGE-L and CIDEr-D against the reference answer.
``modality`` picks what the model sees: ``fused`` (both), ``rgb`` or ``sar``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Sequence, Union

from ..contracts import Record, Sample
from ..errors import EarthMindError
from ..text.tokens import IMAGE_PLACEHOLDER

MCQ_TASKS = {"scene classification", "object existence", "hallucination detection", "object counting",
             "spatial relationship"}


def task_key(task_type: str) -> str:
    """"Object_Counting" / "object counting" -> "object counting"."""
    return " ".join(str(task_type).replace("_", " ").lower().split())


class EarthMindBench:
    """Records of one or more annotation files; a malformed entry is reported with file and index."""

    def __init__(self, root: str, annotations: Union[str, Sequence[str]] = "test.json", modality: str = "fused",
                 sensors: tuple[str, str] = ("sar", "optical"), limit: int | None = None):
        self.root = Path(root)
        if modality not in ("fused", "rgb", "sar"):
            raise EarthMindError(f"EarthMind-Bench modality {modality!r}: choose fused, rgb or sar")
        self.modality = modality
        self.sar_sensor, self.optical_sensor = sensors
        files = [annotations] if isinstance(annotations, (str, Path)) else list(annotations)
        if not files:
            raise EarthMindError("EarthMind-Bench: no annotation file given")
        self.records: list[Record] = []
        for f in files:
            path = Path(f) if Path(f).is_absolute() else self.root / f
            self.records += self._read(path)
            if limit is not None and len(self.records) >= limit:
                break
        if limit is not None:
            self.records = self.records[:limit]

    def _read(self, path: Path) -> list[Record]:
        entries = read_json(path, "EarthMind-Bench annotation file")
        if not isinstance(entries, list):
            raise EarthMindError(f"{path}: expected a JSON list of questions, found {type(entries).__name__}")
        return [self._record(e, path, i) for i, e in enumerate(entries)]

    def _record(self, e: dict, path: Path, i: int) -> Record:
        where = f"{path} [{i}]"
        if not isinstance(e, dict):
            raise EarthMindError(f"{where}: expected an object, found {type(e).__name__}")
        missing = [k for k in ("file_name", "question", "answer", "task_type") if k not in e]
        if missing:
            raise EarthMindError(f"{where}: missing key(s) {missing}")
        for k in ("file_name", "question", "task_type"):
            if not isinstance(e[k], str) or not e[k].strip():
                raise EarthMindError(f"{where}: {k!r} must be a non-empty string, found {e[k]!r}")
        candidates = e.get("candidate") or []
        if not isinstance(candidates, list) or not all(isinstance(c, (str, int, float)) for c in candidates):
            raise EarthMindError(f"{where}: 'candidate' must be a list of strings, found {candidates!r}")
        candidates = [str(c) for c in candidates]
        stem = Path(e["file_name"]).stem
        images = {}
        for folder, sensor, wanted in (("sar", self.sar_sensor, self.modality in ("fused", "sar")),
                                       ("rgb", self.optical_sensor, self.modality in ("fused", "rgb"))):
            if wanted:
                image = self.root / "img" / "test" / folder / "img" / f"{stem}.png"
                if not image.is_file():
                    raise EarthMindError(f"{where}: image {image} not found")
                images[sensor] = str(image)
        key = task_key(e["task_type"])
        meta = {"task_type": key, "file_name": e["file_name"], "reference_text": str(e["answer"]),
                "source": path.name}
        prompt = IMAGE_PLACEHOLDER + e["question"]
        if key in MCQ_TASKS or candidates:
            if not candidates:
                raise EarthMindError(f"{where}: multiple-choice task {key!r} without 'candidate' options")
            try:
                answer = answer_letter(str(e["answer"]), candidates)
            except ValueError as exc:
                raise EarthMindError(f"{where}: {exc}") from None
            if answer is None:
                raise EarthMindError(f"{where}: answer {e['answer']!r} is none of the candidates {candidates}")
            sample = Sample(images=images, prompt=prompt, task="multiple_choice", id=f"{stem}#{i}",
                            task_args={"options": candidates, "letters": False, "instruction": ""})
            return Record(sample, answer, meta=meta)
        sample = Sample(images=images, prompt=prompt, task="captioning", id=f"{stem}#{i}")
        return Record(sample, str(e["answer"]), meta=meta)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)


def answer_letter(answer: str, candidates: list[str]) -> str | None:
    """The reference answer as an option letter: "B", "(B)", "B.", "B. forest", "forest"."""
    from ..tasks.answers import option_letters, split_option

    letters = option_letters(candidates)
    a = answer.strip()
    head = a.rstrip(".").strip("() ").upper()
    if len(head) == 1 and head in letters:
        return head
    for letter, c in zip(letters, candidates):
        if a.lower() in (c.strip().lower(), split_option(c)[1].lower()):
            return letter
    return None


def read_json(path: Path, what: str):
    """A JSON file's content; a missing or malformed file is an error naming it (and the line)."""
    if not path.is_file():
        raise EarthMindError(f"{path}: {what} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise EarthMindError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None

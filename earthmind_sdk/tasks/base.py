"""Tasks: how a question is put to the model and how its answer is read back.

Every parser returns a :class:`Parsed`: ``value`` is the answer in the task's terms (an
option letter, a label, an int, a bool, text, a count of masks) or None when the text does
not contain one; ``raw`` keeps the model's words. A parser never guesses: an answer naming two
options, or none, is unparsed rather than wrong.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

_SPECIALS = re.compile(r"<\|[a-z_]+\|>|</?(?:img|p|vp|ref|box|quad)>|<IMG_CONTEXT>")


@dataclass
class Parsed:
    value: Any
    raw: str
    kind: str = "text"

    @property
    def ok(self) -> bool:
        return self.value is not None

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "kind": self.kind, "raw": self.raw}


class Task:
    """Base class; subclasses set ``name``, ``metric`` and override the two methods."""

    name: ClassVar[str] = "task"
    metric: ClassVar[str] = "accuracy"
    kind: ClassVar[str] = "text"

    def build_prompt(self, question: str, **fields: Any) -> str:
        return question.strip()

    def parse(self, text: str, **fields: Any) -> Parsed:
        return Parsed(clean(text) or None, text, self.kind)


def clean(text: str) -> str:
    """The answer without chat-template and placeholder tokens, whitespace collapsed."""
    collapsed = " ".join(_SPECIALS.sub(" ", text or "").split())
    return re.sub(r"\s+([.,;:!?])", r"\1", collapsed).strip()


def norm(text: str) -> str:
    """Lower case, underscores/hyphens as spaces, punctuation dropped, articles removed."""
    t = clean(text).lower().replace("_", " ").replace("-", " ")
    t = re.sub(r"[^\w\s]", " ", t)
    words = [w for w in t.split() if w not in ("a", "an", "the")]
    return " ".join(words)


def require(fields: dict[str, Any], key: str, task: str) -> Any:
    if key not in fields or not fields[key]:
        raise ValueError(f"task {task!r} needs {key!r} (e.g. task_args: {{{key}: [...]}})")
    return fields[key]


def first_match(text: str, patterns: list[str]) -> Optional[re.Match]:
    for p in patterns:
        m = re.search(p, text, flags=re.IGNORECASE)
        if m:
            return m
    return None

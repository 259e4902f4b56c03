"""Tasks: how a question is put to the model and how its answer is read back.

A task has a registry ``name``, the ``metrics`` that score it (registry names of
:mod:`earthmind_sdk.eval.plugin`; evaluation runs exactly these), ``build_prompt(question, **fields)`` and
``parse(text, **fields)``. ``fields`` are the sample's ``task_args`` (labels, options, ...).

Every parser returns a :class:`Parsed`: ``value`` is the answer in the task's terms (an
option letter, a label, an int, a bool, text, a count of masks) or None when the text does
not hold one; ``raw`` keeps the model's words. A parser never guesses: an answer naming two
options, or none, or one that is not offered, is unparsed rather than wrong.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from .answers import clean, norm  # noqa: F401 - re-exported for task plugins


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
    """Base class; subclasses set ``name``, ``kind``, ``metrics`` and override the two methods.

    ``metrics`` are what evaluation scores the task's answers with (registry names, see
    :mod:`earthmind_sdk.eval.scorers`); ``kind`` says what ``parse`` returns, and a metric may
    accept only some kinds (Acc@0.5 needs boxes). The default: closed answers compared after
    parsing, with their per-group mean (M-Avg)."""

    name: ClassVar[str] = "task"
    kind: ClassVar[str] = "text"
    metrics: ClassVar[tuple[str, ...]] = ("accuracy", "m_avg")

    @property
    def metric(self) -> str:
        """The headline metric (first of ``metrics``)."""
        return self.metrics[0]

    #: tasks about one referred object set this; ``expression=`` then fills it
    expression_template: ClassVar[Optional[str]] = None

    def build_prompt(self, question: str = "", **fields: Any) -> str:
        expr = fields.get("expression")
        if expr and self.expression_template:
            return self.expression_template.format(expression=str(expr).strip().rstrip("."))
        return (question or "").strip()

    def parse(self, text: str, **fields: Any) -> Parsed:
        return Parsed(clean(text) or None, text or "", self.kind)

    def unparsed(self, text: str | None) -> Parsed:
        return Parsed(None, text or "", self.kind)

    def __repr__(self) -> str:
        return f"<task {self.name} ({self.kind}; {', '.join(self.metrics)})>"


def require(fields: dict[str, Any], key: str, task: str) -> Any:
    """A field the task cannot work without, with an error that says where to give it."""
    if key not in fields or fields[key] is None or (hasattr(fields[key], "__len__") and len(fields[key]) == 0):
        raise ValueError(f"task {task!r} needs {key!r} (give it in the sample's task_args, e.g. "
                         f"task_args: {{{key}: [...]}})")
    return fields[key]

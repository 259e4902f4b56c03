"""Multiple choice (EarthMind-Bench MCQ, RSVQA-style option lists): the value is a letter."""
from __future__ import annotations

from typing import Any

from .answers import LETTERS, parse_option, split_option
from .base import Parsed, Task, require

DEFAULT_INSTRUCTION = "Answer with the option's letter from the given choices directly."


class MultipleChoice(Task):
    """Prompt: question, then one option per line (lettered "A. ..." unless ``letters=False``
    keeps them verbatim, as EarthMind-Bench does), then ``instruction`` ("" for none)."""

    name = "multiple_choice"
    kind = "option"
    metrics = ("accuracy", "m_avg")

    def build_prompt(self, question: str = "", **fields: Any) -> str:
        options = require(fields, "options", self.name)
        if fields.get("letters", True):
            lines = []
            for i, opt in enumerate(options):
                letter, body = split_option(opt)
                lines.append(str(opt).strip() if letter else f"{LETTERS[i]}. {body}")
        else:
            lines = [str(o).strip() for o in options]
        instruction = fields.get("instruction", DEFAULT_INSTRUCTION)
        parts = [(question or "").strip(), *lines] + ([instruction] if instruction else [])
        return "\n".join(p for p in parts if p)

    def parse(self, text: str, **fields: Any) -> Parsed:
        options = require(fields, "options", self.name)
        return Parsed(parse_option(text, options), text or "", self.kind)

"""Visual question answering: open VQA, yes/no (existence, hallucination), counting."""
from __future__ import annotations

import re
from typing import Any

from .answers import _NO, _YES, _numbers, norm, parse_number, parse_yes_no
from .base import Parsed, Task


class YesNo(Task):
    name = "yes_no"
    kind = "bool"

    def build_prompt(self, question: str = "", **fields: Any) -> str:
        suffix = fields.get("suffix", "")
        return f"{(question or '').strip()}{suffix}".strip()

    def parse(self, text: str, **fields: Any) -> Parsed:
        return Parsed(parse_yes_no(text), text or "", self.kind)


class Counting(Task):
    name = "counting"
    kind = "number"

    def build_prompt(self, question: str = "", **fields: Any) -> str:
        suffix = fields.get("suffix", "")
        return f"{(question or '').strip()}{suffix}".strip()

    def parse(self, text: str, **fields: Any) -> Parsed:
        return Parsed(parse_number(text), text or "", self.kind)


class VQA(Task):
    """Open VQA (RSVQA, VRSBench): a leading yes/no becomes "yes"/"no", a short answer holding
    one number becomes that int, anything else is normalised text (lower case, no articles or
    punctuation), so that "The River." and "river" compare equal."""

    name = "vqa"

    def build_prompt(self, question: str = "", **fields: Any) -> str:
        return f"{(question or '').strip()}{fields.get('suffix', '')}".strip()

    def parse(self, text: str, **fields: Any) -> Parsed:
        t = norm(text)
        raw = text or ""
        if not t:
            return Parsed(None, raw, "text")
        words = t.split()
        if words[0] in _YES | _NO:
            yn = parse_yes_no(text)
            if yn is not None:
                return Parsed("yes" if yn else "no", raw, "bool")
        values = {v for _, _, v in _numbers(t)}
        if len(values) == 1 and (len(words) <= 3 or re.match(r"there (is|are) ", t)):
            n = parse_number(text)
            if n is not None:
                return Parsed(n, raw, "number")
        return Parsed(t, raw, "text")

"""Closed-form answers: yes/no, numbers, multiple choice, scene classification, free VQA."""
from __future__ import annotations

import re
from typing import Any, Optional, Sequence

from .base import Parsed, Task, clean, first_match, norm, require

NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}
_YES = {"yes", "yeah", "yep", "true", "correct", "exists", "present"}
_NO = {"no", "nope", "false", "incorrect", "none", "absent"}
_UNSURE = {"sure", "unsure", "certain", "uncertain", "unclear", "know", "tell", "determine"}


def parse_yes_no(text: str) -> Optional[bool]:
    words = norm(text).split()
    if not words:
        return None
    if words[0] in _YES:
        return True
    if words[0] in _NO or words[:2] == ["there", "is"] and "no" in words[2:3]:
        return False
    if any(w in _UNSURE for w in words):
        return None
    has_yes = any(w in _YES for w in words[:6])
    has_no = any(w in _NO or w == "not" for w in words[:6])
    if has_yes != has_no:
        return has_yes
    return None


def parse_number(text: str) -> Optional[int]:
    t = norm(text)
    found = [(m.start(), int(m.group())) for m in re.finditer(r"\b\d+\b", t)]
    found += [(m.start(), NUMBER_WORDS[m.group()]) for m in
              re.finditer(r"\b(" + "|".join(NUMBER_WORDS) + r")\b", t)]
    if not found:
        if t.split()[:1] in (["no"], ["none"]):
            return 0
        return None
    values = {v for _, v in found}
    return found[0][1] if len(values) == 1 else min(found)[1]


class YesNo(Task):
    name = "yes_no"
    kind = "bool"

    def parse(self, text: str, **fields: Any) -> Parsed:
        return Parsed(parse_yes_no(text), text, self.kind)


class Counting(Task):
    name = "counting"
    kind = "number"

    def parse(self, text: str, **fields: Any) -> Parsed:
        return Parsed(parse_number(text), text, self.kind)


class VQA(Task):
    """Open VQA: yes/no and numbers are recognised, anything else is normalised text."""

    name = "vqa"

    def build_prompt(self, question: str, **fields: Any) -> str:
        suffix = fields.get("suffix", "")
        return f"{question.strip()}{suffix}"

    def parse(self, text: str, **fields: Any) -> Parsed:
        t = norm(text)
        if not t:
            return Parsed(None, text, "text")
        yn = parse_yes_no(text)
        if t.split()[0] in _YES | _NO and yn is not None:
            return Parsed("yes" if yn else "no", text, "bool")
        n = parse_number(text)
        if n is not None and len(t.split()) <= 3:
            return Parsed(n, text, "number")
        return Parsed(t, text, "text")


LETTERS = "ABCDEFGHIJ"


def split_option(option: str) -> tuple[Optional[str], str]:
    """'B. Harbor' / '(B) Harbor' / 'B) Harbor' -> ('B', 'Harbor'); 'Harbor' -> (None, 'Harbor')."""
    m = re.match(r"^\s*\(?([A-J])[.):]\s*(.*)$", option.strip())
    if m:
        return m.group(1).upper(), m.group(2).strip()
    return None, option.strip()


class MultipleChoice(Task):
    """EarthMind-Bench style: question + "\\n" + options joined by "\\n"; the value is a letter."""

    name = "multiple_choice"
    kind = "option"

    def build_prompt(self, question: str, **fields: Any) -> str:
        options = require(fields, "options", self.name)
        lines = []
        for i, opt in enumerate(options):
            letter, body = split_option(opt)
            lines.append(opt.strip() if letter else f"{LETTERS[i]}. {body}")
        instr = fields.get("instruction", "Answer with the option's letter from the given choices directly.")
        return "\n".join([question.strip(), *lines, instr]).strip()

    def parse(self, text: str, **fields: Any) -> Parsed:
        options = require(fields, "options", self.name)
        letters = [split_option(o)[0] or LETTERS[i] for i, o in enumerate(options)]
        bodies = {letters[i]: norm(split_option(o)[1]) for i, o in enumerate(options)}
        t = clean(text)
        m = first_match(t, [r"^\(?([A-J])\)?(?:[.):,\s]|$)", r"answer(?: is)?\s*[:：]?\s*\(?([A-J])\b\)?",
                            r"option\s*\(?([A-J])\b"])
        if m and m.group(1).upper() in letters:
            return Parsed(m.group(1).upper(), text, self.kind)
        named = [L for L, body in bodies.items() if body and re.search(rf"\b{re.escape(body)}\b", norm(t))]
        if len(named) == 1:
            return Parsed(named[0], text, self.kind)
        return Parsed(None, text, self.kind)


def _label_forms(label: str) -> set[str]:
    base = norm(label)
    forms = {base, base.replace(" ", "")}
    forms |= {f + "s" for f in list(forms)} | {f[:-1] for f in forms if f.endswith("s")}
    return {f for f in forms if f}


class SceneClassification(Task):
    """Against a label list; the value is the label as given in the list."""

    name = "scene_classification"
    kind = "label"

    def build_prompt(self, question: str, **fields: Any) -> str:
        labels: Sequence[str] = require(fields, "labels", self.name)
        q = question.strip() or "Classify the scene."
        return f"{q}\nChoose one of: {', '.join(labels)}. Answer with one word or phrase."

    def parse(self, text: str, **fields: Any) -> Parsed:
        labels: Sequence[str] = require(fields, "labels", self.name)
        t = norm(text)
        whole = {f: lab for lab in labels for f in _label_forms(lab)}
        if t in whole:
            return Parsed(whole[t], text, self.kind)
        hits = {}
        for lab in labels:
            for f in _label_forms(lab):
                m = re.search(rf"\b{re.escape(f)}\b", t)
                if m:
                    hits[lab] = min(hits.get(lab, m.start()), m.start())
        # a longer label containing a shorter one ("dense residential" vs "residential") wins
        names = [h for h in hits if not any(h != o and norm(h) in norm(o) for o in hits)]
        if len(names) == 1:
            return Parsed(names[0], text, self.kind)
        return Parsed(None, text, self.kind)

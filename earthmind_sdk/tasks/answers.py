"""Reading closed answers out of free model text: options, labels, numbers, yes/no.

Shared by the task families. Every reader returns None when the text does not commit to
exactly one answer (empty, hedged, naming two options, naming an option that is not offered):
an unparsed answer is scored as wrong but reported as unparsed, never turned into a guess.
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

_TEMPLATE_TOKENS = re.compile(
    r"<\|[A-Za-z_]+\|>|</?(?:img|p|vp|ref|box|quad)>|<IMG_CONTEXT>|\[SEG\]|</?s>")
_ARTICLES = {"a", "an", "the"}


def clean(text: Optional[str], keep_lines: bool = False) -> str:
    """The answer without chat-template, placeholder and ``[SEG]`` tokens, whitespace collapsed
    (line breaks kept as single newlines with ``keep_lines``)."""
    stripped = _TEMPLATE_TOKENS.sub(" ", text or "")
    if keep_lines:
        lines = (" ".join(line.split()) for line in stripped.splitlines())
        collapsed = "\n".join(line for line in lines if line)
    else:
        collapsed = " ".join(stripped.split())
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", collapsed).strip()


def norm(text: Optional[str]) -> str:
    """Lower case, ``_``/``-`` as spaces, punctuation dropped, articles removed."""
    t = clean(text).lower().replace("_", " ").replace("-", " ")
    t = re.sub(r"[^\w\s]", " ", t)
    return " ".join(w for w in t.split() if w not in _ARTICLES)


# -- yes / no ------------------------------------------------------------------------------
_YES = {"yes", "yeah", "yep", "true", "correct", "affirmative"}
_NO = {"no", "nope", "false", "incorrect", "none", "negative"}
_NEGATORS = {"no", "not", "none", "nothing", "neither", "nor", "never", "without", "cannot", "absent"}
_CONTRACTED = {"don", "doesn", "isn", "aren", "wasn", "weren", "can", "couldn", "hasn", "haven"}
_AFFIRM = {"present", "visible", "exists", "exist", "appears", "contains", "shows", "seen", "located"}
_UNSURE = ("not sure", "unsure", "cannot tell", "can t tell", "cannot determine", "can t determine",
           "unclear", "hard to say", "difficult to", "impossible to", "maybe", "possibly", "perhaps",
           "uncertain", "not certain", "don t know", "do not know", "not possible to", "cannot be determined",
           "hard to tell", "difficult to tell", "unable", "not clear")


def _negated(words: list[str]) -> bool:
    for i, w in enumerate(words):
        if w in _NEGATORS:
            return True
        if w == "t" and i and words[i - 1] in _CONTRACTED:  # "isn't" -> "isn t"
            return True
    return False


def parse_yes_no(text: Optional[str]) -> Optional[bool]:
    """True/False for "Yes.", "No, there is not.", "There is no ship", "A ship is visible"."""
    t = norm(text)
    words = t.split()
    if not words:
        return None
    if any(re.search(rf"\b{p}\b", t) for p in _UNSURE):
        return None
    if re.match(r"(yes|no) (and|or) (yes|no)\b", t):
        return None
    if words[0] in _YES:
        return True
    if words[0] in _NO:
        return False
    has_yes = any(w in _YES for w in words)
    if _negated(words):
        return None if has_yes else False
    if has_yes or any(w in _AFFIRM for w in words) or re.match(r"there (is|are)\b", t):
        return True
    return None


# -- numbers -------------------------------------------------------------------------------
_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i >= 2}
_WORD_NUMBER = re.compile(
    r"\b(?:(" + "|".join(_TENS) + r")(?:[\s-]+(" + "|".join(list(_UNITS)[1:10]) + r"))?|(" + "|".join(_UNITS)
    + r")|(a dozen|dozen|a single|single))\b")
_BOUND = re.compile(r"\b(?:more than|less than|fewer than|over|under|at least|at most|up to|between|nearly|almost)\s+"
                    r"(?:\d|(?:" + "|".join(list(_UNITS) + list(_TENS) + ["a dozen", "dozen"]) + r")\b)")
_RANGE = re.compile(r"^\s*(?:-|to|or|and|~)\s*$")


def _numbers(text: str) -> list[tuple[int, int, int]]:
    """(start, end, value) of every integer written with digits or words, in order."""
    t = text.lower()
    found = [(m.start(), m.end(), int(m.group().replace(",", "")))
             for m in re.finditer(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?![\w.])|(?<![\w.,])\d+(?!\w|\.\d|,\d)", t)]
    for m in _WORD_NUMBER.finditer(t):
        if m.group(1):
            v = _TENS[m.group(1)] + (_UNITS[m.group(2)] if m.group(2) else 0)
        elif m.group(3):
            v = _UNITS[m.group(3)]
        else:
            v = {"a dozen": 12, "dozen": 12, "a single": 1, "single": 1}[m.group(4)]
        found.append((m.start(), m.end(), v))
    return sorted(found)


def parse_number(text: Optional[str]) -> Optional[int]:
    """The count the answer commits to: "3", "Three.", "There are 12 ships", "none" -> 0.

    The first number is the answer ("3 ships and 2 planes" -> 3); a range or a bound
    ("2-3", "between 4 and 6", "more than 10") is no exact count and stays unparsed.
    """
    t = clean(text).lower()
    if not t:
        return None
    if _BOUND.search(t) or re.search(r"\b(maybe|perhaps|possibly|or so)\b", t):
        return None
    found = _numbers(t)
    if len(found) > 1:  # "in 2019 there were 5": a year is not the count
        found = [f for f in found if not (1900 <= f[2] <= 2100 and f[1] - f[0] == 4)] or found
    if not found:
        words = norm(t).split()
        if words and (words[0] in ("no", "none", "zero", "nothing") or re.search(r"\b(there (is|are) no|no \w+ (is|are))\b",
                                                                                " ".join(words))):
            return 0
        return None
    if len(found) > 1 and _RANGE.match(t[found[0][1]:found[1][0]]) and found[0][2] != found[1][2]:
        return None
    return found[0][2]


# -- options -------------------------------------------------------------------------------
LETTERS = "ABCDEFGHIJ"
_OPTION_HEAD = re.compile(r"^\s*[\(\[]?([A-J])[\)\]\.:]\s*(.*)$", re.S)


def split_option(option: str) -> tuple[Optional[str], str]:
    """'B. Harbor' / '(B) Harbor' / 'B) Harbor' / 'B: Harbor' -> ('B', 'Harbor'); 'Harbor' -> (None, 'Harbor')."""
    m = _OPTION_HEAD.match(str(option))
    if m:
        return m.group(1), m.group(2).strip()
    return None, str(option).strip()


def option_letters(options: Sequence[str]) -> list[str]:
    """The letter of each option: its own ("C. ...") or its position (A, B, ...)."""
    if len(options) > len(LETTERS):
        raise ValueError(f"at most {len(LETTERS)} options are supported, got {len(options)}")
    letters = [split_option(o)[0] or LETTERS[i] for i, o in enumerate(options)]
    if len(set(letters)) != len(letters):
        raise ValueError(f"options {list(options)} repeat a letter")
    return letters


def phrase_forms(phrase: str) -> set[str]:
    """Normalised spellings of a label or option: case, ``_``/``-``, spaces, simple plurals."""
    base = norm(phrase)
    if not base:
        return set()
    forms = {base, base.replace(" ", "")}
    for f in list(forms):
        if f.endswith("y") and not f.endswith(("ay", "ey", "oy", "uy")):
            forms.add(f[:-1] + "ies")
        elif f.endswith(("s", "x", "ch", "sh")):
            forms.add(f + "es")
        forms.add(f + "s")
        if f.endswith("ies"):
            forms.add(f[:-3] + "y")
        elif f.endswith("s") and len(f) > 3:
            forms.add(f[:-1])
    return forms


def find_phrases(text: str, phrases: dict[str, str], *, skip_negated: bool = True) -> list[str]:
    """Keys of ``phrases`` (key -> surface text) named in ``text``; a longer phrase hides a shorter
    one it contains ("dense residential" over "residential"); a phrase only named after a negation
    ("not a forest") does not count."""
    t = norm(text)
    words_at = {m.start(): i for i, m in enumerate(re.finditer(r"\S+", t))}
    words = t.split()
    spans: dict[str, tuple[int, int]] = {}
    for key, surface in phrases.items():
        for form in sorted(phrase_forms(surface), key=len, reverse=True):
            for m in re.finditer(rf"(?<!\w){re.escape(form)}(?!\w)", t):
                if skip_negated:
                    i = words_at.get(m.start(), 0)
                    if _negated(words[max(0, i - 3):i]):
                        continue
                if key not in spans or (m.end() - m.start()) > spans[key][1] - spans[key][0]:
                    spans[key] = (m.start(), m.end())
    # drop a phrase whose every mention lies inside a longer named phrase
    keep = []
    for k, (s, e) in spans.items():
        inside = any(o != k and so <= s and e <= eo and (eo - so) > (e - s) for o, (so, eo) in spans.items())
        if not inside:
            keep.append(k)
    return keep


_CUE = r"(?i:answer|option|choice|choose|select|pick|correct one)"
_LETTER_PATTERNS = [
    re.compile(r"^\s*[\(\[]?([A-Ja-j])[\)\]]?\s*[.:!]?\s*$"),                          # "B", "(b)", "B."
    re.compile(r"[\(\[]([A-Ja-j])[\)\]]"),                                            # "(B) Airport", "is (c)"
    re.compile(rf"\b{_CUE}\b\s*(?:(?i:is|would be|should be|will be|:|：))?\s*(?:(?i:option)\s*)?([A-J])(?![\w'])"),
    re.compile(rf"\b{_CUE}\b\s*(?:(?i:is|would be|should be|:|：))?\s*([a-j])\s*[.)]?\s*$"),  # "answer: b"
    re.compile(r"(?<![\w'])([A-J])(?=\s+(?i:is (?:the )?(?:correct|right|answer|best)))"),  # "C is correct"
    re.compile(r"(?i:\bis|\bbe|:)\s+([A-J])\s*[.)!]?\s*$"),                            # "It is B."
    re.compile(r"^\s*([A-J])(?=,\s)"),                                                # "B, because ..."
    re.compile(r"(?m)^\s*[\(\[]?([A-J])[\)\]\.:]\s"),                                  # options repeated, one a line
]


def _cited_letters(text: str) -> tuple[set[str], str]:
    """Letters the text cites as options, and the words after a leading "B." (for conflicts)."""
    cited: set[str] = set()
    rest = ""
    head = _OPTION_HEAD.match(text)
    if head and (head.group(1).isupper() or text.lstrip()[:1] in "([" or head.group(2) == ""):
        cited.add(head.group(1).upper())
        rest = head.group(2)
    else:
        m = re.match(r"^\s*([a-jA-J])[\.\)]\s+(.*)$", text)  # "c) Farmland", "a. harbor"
        if m:
            cited.add(m.group(1).upper())
            rest = m.group(2)
    for p in _LETTER_PATTERNS:
        cited |= {g.upper() for g in p.findall(text)}
    return cited, rest


def parse_option(text: Optional[str], options: Sequence[str]) -> Optional[str]:
    """The letter of the one option the answer picks: "B", "(B) Harbor", "The answer is B.",
    "Answer: b", the option's text alone ("Harbor"), a number or yes/no matching an option."""
    letters = option_letters(options)
    bodies = {L: split_option(o)[1] for L, o in zip(letters, options)}
    t = clean(text, keep_lines=True)
    if not t:
        return None
    cited, rest = _cited_letters(t)
    # "A harbor ..." starts with a word, not a letter: only a letter when the rest is that option
    m = re.match(r"^\s*([A-J])\s+(\S.*)$", t)
    if m and m.group(1) in letters and norm(m.group(2)).startswith(norm(bodies[m.group(1)]) or "\0"):
        cited.add(m.group(1))
        rest = m.group(2)
    if cited:
        if len(cited) != 1 or next(iter(cited)) not in letters:
            return None
        letter = next(iter(cited))
        named = find_phrases(rest, bodies) if rest else []
        if named and letter not in named:
            return None  # "(B) Harbor" where B is Airport: contradictory
        return letter
    # the option named by its text
    body_norm = {L: norm(b) for L, b in bodies.items()}
    exact = [L for L, b in body_norm.items() if b and b == norm(t)]
    if len(exact) == 1:
        return exact[0]
    if set(body_norm.values()) == {"yes", "no"}:
        yn = parse_yes_no(t)
        return None if yn is None else next(L for L, b in body_norm.items() if b == ("yes" if yn else "no"))
    if all(re.fullmatch(r"\d+", b or "") for b in body_norm.values()):
        n = parse_number(t)
        hits = [L for L, b in body_norm.items() if n is not None and int(b) == n]
        return hits[0] if len(hits) == 1 else None
    named = find_phrases(t, bodies)
    return named[0] if len(named) == 1 else None


def parse_label(text: Optional[str], labels: Sequence[str]) -> Optional[str]:
    """The one label of ``labels`` the answer names (case, plural, ``_``/``-``/space insensitive)."""
    t = norm(text)
    if not t:
        return None
    table = {lab: lab for lab in labels}
    for lab in labels:
        if t in phrase_forms(lab):
            return lab
    named = find_phrases(t, table)
    return named[0] if len(named) == 1 else None
